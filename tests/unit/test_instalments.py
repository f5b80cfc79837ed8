"""Instalment schedules: the contract's rules, what is past due and since when, the aging and
late interest they drive, computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import check_ledger
from features.payment_behaviour import build_client_features
from scoring.interest import late_charges
from scoring.policy import CreditPolicy
from scoring.receivables import days_past_due, open_invoices
from tests.ledgers import make_ledger

AS_OF = pd.Timestamp("2026-01-01")


def _ledger(instalments: list[dict[str, object]] | None = None):  # type: ignore[no-untyped-def]
    """One German client, one EUR 900 invoice of 1 September on 90 days, in three instalments
    of 300 (30 September, 30 October, 29 November); 250 paid on 5 October."""
    ledger = make_ledger(
        clients=[{"client_id": "D1", "country": "DE", "onboarded_on": "2024-01-01"}],
        invoices=[
            {
                "invoice_id": "I1",
                "client_id": "D1",
                "issued_on": "2025-09-01",
                "due_on": "2025-11-30",
                "amount": 900.0,
                "paid_amount": 250.0,
            },
        ],
        payments=[{"invoice_id": "I1", "paid_on": "2025-10-05", "amount": 250.0}],
        extracted_on="2025-12-31",
    )
    rows = (
        instalments
        if instalments is not None
        else [
            {"invoice_id": "I1", "due_on": "2025-10-01", "amount": "300"},
            {"invoice_id": "I1", "due_on": "2025-10-31", "amount": "300"},
            {"invoice_id": "I1", "due_on": "2025-11-30", "amount": "300"},
        ]
    )
    raw = {n: f.astype(str).replace({"NaT": "", "nan": ""}) for n, f in ledger.tables().items()}
    raw["instalments"] = pd.DataFrame(rows)
    return check_ledger(raw, extracted_on=ledger.extracted_on)


def test_a_schedule_counts_each_instalment_from_its_own_due_date() -> None:
    ledger, violations = _ledger()
    assert violations.empty, violations
    inv = open_invoices(ledger, AS_OF).iloc[0]
    # 250 paid against the first 300: 50 of it overdue since 1 October, then 300 and 300
    assert inv["overdue_since"] == pd.Timestamp("2025-10-01")
    assert inv["overdue_in_currency"] == pytest.approx(650.0)
    assert inv["late_amount_days"] == pytest.approx(50 * 91 + 300 * 61 + 300 * 31)
    assert days_past_due(open_invoices(ledger, AS_OF), AS_OF).tolist() == [92]
    # on 15 November only the first two are due: 350 past due
    mid = open_invoices(ledger, pd.Timestamp("2025-11-15")).iloc[0]
    assert mid["overdue_in_currency"] == pytest.approx(350.0)
    charges = late_charges(
        open_invoices(ledger, AS_OF),
        np.array(["DE"], dtype=object),
        AS_OF,
        CreditPolicy.load().late_interest,
        ledger.rates,
    )
    assert charges.interest[0] == pytest.approx((50 * 91 + 300 * 61 + 300 * 31) * 0.1027 / 365)


def test_the_features_age_a_schedule_by_its_instalments() -> None:
    ledger, _ = _ledger()
    f = build_client_features(ledger, as_of_dates=["2025-11-15"]).iloc[0]
    assert f["open_balance"] == pytest.approx(650.0)
    assert f["overdue_balance"] == pytest.approx(350.0)
    assert f["aging_current"] == pytest.approx(300.0)  # the instalment still to come
    assert f["aging_31_60"] == pytest.approx(350.0)  # 45 days since 1 October
    assert f["max_open_dpd"] == 45
    without = build_client_features(
        ledger.with_tables({"instalments": ledger.instalments.head(0)}), as_of_dates=["2025-11-15"]
    ).iloc[0]
    assert without["overdue_balance"] == 0.0 and without["aging_current"] == pytest.approx(650.0)


@pytest.mark.parametrize(
    ("rows", "column", "rule"),
    [
        (
            [
                {"invoice_id": "I1", "due_on": "2025-10-01", "amount": "300"},
                {"invoice_id": "I1", "due_on": "2025-11-30", "amount": "500"},
            ],
            "amount",
            "differs from the sum of its instalments",
        ),
        (
            [
                {"invoice_id": "I1", "due_on": "2025-10-01", "amount": "450"},
                {"invoice_id": "I1", "due_on": "2025-11-15", "amount": "450"},
            ],
            "amount",
            "due_on from the last one's",
        ),
        (
            [{"invoice_id": "I9", "due_on": "2025-10-01", "amount": "900"}],
            "invoice_id",
            "refers to no invoice",
        ),
        (
            [
                {"invoice_id": "I1", "due_on": "2025-08-01", "amount": "450"},
                {"invoice_id": "I1", "due_on": "2025-11-30", "amount": "450"},
            ],
            "due_on",
            "before the invoice's issued_on",
        ),
    ],
)
def test_a_bad_schedule_is_named(rows: list[dict[str, object]], column: str, rule: str) -> None:
    _, violations = _ledger(rows)
    hit = violations[
        (violations["column"] == column) & violations["rule"].str.contains(rule, regex=False)
    ]
    assert len(hit) == 1, violations
