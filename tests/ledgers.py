"""Tiny inline ledgers for hand-computed expectations."""

from __future__ import annotations

import pandas as pd

from features.contract import Ledger, LedgerValidationError, check_ledger


def make_ledger(
    *,
    clients: list[dict[str, object]],
    invoices: list[dict[str, object]],
    payments: list[dict[str, object]] | None = None,
    financials: list[dict[str, object]] | None = None,
    insolvencies: list[dict[str, object]] | None = None,
    fx_rates: list[dict[str, object]] | None = None,
    insurer_limits: list[dict[str, object]] | None = None,
    actions: list[dict[str, object]] | None = None,
    reporting_currency: str | None = None,
    extracted_on: str = "2025-12-31",
) -> Ledger:
    """A typed, validated ledger from rows; omitted optional fields get sensible defaults."""
    base_client = {
        "name": "Client",
        "country": "DE",
        "industry": "Retail",
        "registered_capital": 50_000.0,
        "founded_on": "2010-05-01",
        "onboarded_on": "2023-01-01",
    }
    base_invoice = {
        "currency": "EUR",
        "paid_on": None,
        "paid_amount": None,
        "disputed": False,
        "written_off_on": None,
    }
    raw = {
        "clients": pd.DataFrame([{**base_client, **c} for c in clients]),
        "invoices": pd.DataFrame([{**base_invoice, **i} for i in invoices]),
    }
    if payments:
        raw["payments"] = pd.DataFrame(payments)
    if financials:
        raw["financials"] = pd.DataFrame(financials)
    if insolvencies:
        raw["insolvencies"] = pd.DataFrame(insolvencies)
    if fx_rates:
        raw["fx_rates"] = pd.DataFrame(fx_rates)
    if insurer_limits:
        raw["insurer_limits"] = pd.DataFrame([{"valid_until": None, **r} for r in insurer_limits])
    if actions:
        base = {"invoice_id": None, "amount": None, "note": None}
        raw["actions"] = pd.DataFrame([{**base, **r} for r in actions])
    raw = {
        n: f.astype(object).where(f.notna(), None).map(lambda v: "" if v is None else str(v))
        for n, f in raw.items()
    }
    ledger, violations = check_ledger(
        raw, extracted_on=pd.Timestamp(extracted_on), reporting_currency=reporting_currency
    )
    if len(violations):
        raise LedgerValidationError(violations)
    return ledger
