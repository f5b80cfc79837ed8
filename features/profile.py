"""Headline figures of a ledger, for the demo, the CLI and a credit officer's first look."""

from __future__ import annotations

import pandas as pd

from features.contract import Ledger, is_open


def profile_ledger(ledger: Ledger) -> dict[str, object]:
    """Counts, date range, payment behaviour and losses of a ledger, as plain numbers."""
    inv = ledger.invoices
    paid = inv[inv["paid_on"].notna()]
    days_late = (paid["paid_on"] - paid["due_on"]).dt.days
    open_ = is_open(
        inv["issued_on"],
        inv["paid_on"],
        inv["written_off_on"],
        ledger.extracted_on + pd.Timedelta(days=1),
    )
    # in the reporting currency at the rate known at extraction (`features.fx`)
    rate = ledger.rates.on(inv["currency"], ledger.extracted_on) if ledger.rates.converts else 1.0
    open_balance = ((inv["amount"] - inv["paid_amount"].fillna(0.0)).clip(lower=0.0) * rate)[open_]
    overdue = open_ & (inv["due_on"] < ledger.extracted_on)
    currencies = inv["currency"].value_counts()
    return {
        "clients": len(ledger.clients),
        "invoices": len(inv),
        "payments": len(ledger.payments),
        "financial statements": len(ledger.financials),
        "insolvencies": len(ledger.insolvencies),
        "first invoice": _date(inv["issued_on"].min()),
        "last invoice": _date(inv["issued_on"].max()),
        "extracted on": _date(ledger.extracted_on),
        "reporting currency": ledger.reporting_currency or "",
        "invoice currencies": ", ".join(f"{c} {n:,}" for c, n in currencies.items()),
        "invoiced amount": round(float((inv["amount"] * rate).sum()), 2),
        "paid late (share of paid invoices)": round(float((days_late > 0).mean()), 4),
        "paid >30 days late": round(float((days_late > 30).mean()), 4),
        "paid >90 days late": round(float((days_late > 90).mean()), 4),
        "disputed": round(float(inv["disputed"].mean()), 4),
        "open invoices": int(open_.sum()),
        "open balance": round(float(open_balance.sum()), 2),
        "overdue open invoices": int(overdue.sum()),
        "written-off invoices": int(inv["written_off_on"].notna().sum()),
    }


def _date(value: object) -> str:
    return "" if pd.isna(value) else pd.Timestamp(value).date().isoformat()
