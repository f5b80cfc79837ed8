"""Open invoices at a date and where each stands in collections: the one definition that batch
scoring, the report and the officer's page all read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.arrays import index_in
from features.contract import Ledger, is_open
from features.instalments import Schedules

STAGES = (
    (0, "not yet due"),
    (1, "reminder and grace (1-30 DPD)"),
    (2, "formal dunning letter (31-60 DPD)"),
    (3, "final notice, stop deliveries (61-90 DPD)"),
    (4, "legal action or insurer claim (90+ DPD)"),
)
STAGE_STARTS = (0, 1, 31, 61, 91)  # the first day past due of each stage


def escalation_stage(dpd: np.ndarray) -> np.ndarray:
    """0 not due, 1: 1-30, 2: 31-60, 3: 61-90, 4: over 90 days past due."""
    dpd = np.asarray(dpd)
    return np.select(
        [dpd >= STAGE_STARTS[4], dpd >= STAGE_STARTS[3], dpd >= STAGE_STARTS[2], dpd >= 1],
        [4, 3, 2, 1],
        0,
    ).astype("int8")


def open_invoices(ledger: Ledger, as_of: pd.Timestamp) -> pd.DataFrame:
    """Invoices open at `as_of` (`features.contract.is_open`), with what was still outstanding
    that day (dated payments before `as_of` deducted): `outstanding_in_currency` in the invoice's
    own currency, `outstanding` in the reporting currency at the rate known on `as_of`
    (`fx_rate`, `features.fx`), and `fx_change`, what that amount gained (or lost, negative) in
    the reporting currency since the invoice was issued; what is past due (`overdue_in_currency`,
    `overdue`), since when and its late amount-days (`features.instalments`: an instalment
    schedule counts each instalment from its own due date)."""
    inv = ledger.invoices
    is_open_now = is_open(inv["issued_on"], inv["paid_on"], inv["written_off_on"], as_of)
    out = inv.loc[
        is_open_now,
        ["invoice_id", "client_id", "issued_on", "due_on", "amount", "currency", "disputed"],
    ]
    pay = ledger.payments
    received = (
        pay.loc[pay["paid_on"] < as_of].groupby("invoice_id")["amount"].sum()
        if len(pay)
        else pd.Series(dtype="float64")
    )
    paid = out["invoice_id"].map(received).fillna(0.0).to_numpy()
    left = np.maximum(out["amount"].to_numpy() - paid, 0.0)
    day = float((as_of - EPOCH).days)
    schedules = Schedules.of(
        index_in(ledger.instalments["invoice_id"], out["invoice_id"]),
        _days(ledger.instalments["due_on"]),
        ledger.instalments["amount"].to_numpy(dtype="float64"),
    )
    since, past, amount_days = schedules.overdue(
        np.arange(len(out)), _days(out["due_on"]), left, paid, day
    )
    rate = ledger.rates.on(out["currency"], as_of) if ledger.rates.converts else 1.0
    at_issue = ledger.rates.on(out["currency"], out["issued_on"]) if ledger.rates.converts else 1.0
    out = out.assign(
        outstanding_in_currency=left,
        fx_rate=np.broadcast_to(rate, left.shape).astype("float64"),
        outstanding=left * rate,
        fx_change=left * (np.asarray(rate) - at_issue),
        overdue_since=(EPOCH + since.astype("int64").astype("timedelta64[D]")).astype(
            "datetime64[us]"
        ),
        overdue_in_currency=past,
        overdue=past * rate,
        late_amount_days=amount_days,
    )
    return out.reset_index(drop=True)


EPOCH = pd.Timestamp("1970-01-01")


def _days(dates: pd.Series) -> np.ndarray:
    return ((dates - EPOCH).dt.days).to_numpy(dtype="float64")


def days_past_due(invoices: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Signed days from each invoice's due date (with instalments: the first one not yet paid,
    `overdue_since`) to `as_of` (negative: not yet due)."""
    due = invoices["overdue_since"] if "overdue_since" in invoices else invoices["due_on"]
    return (as_of - due).dt.days.to_numpy()


def with_stage(invoices: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Open invoices with their days past due (0 while not due) and escalation stage."""
    dpd = days_past_due(invoices, as_of)
    return invoices.assign(
        days_past_due=np.maximum(dpd, 0).astype("int64"), escalation_stage=escalation_stage(dpd)
    )


def max_days_past_due(invoices: pd.DataFrame) -> pd.Series:
    """The largest days past due of each client with open invoices."""
    return invoices.groupby("client_id")["days_past_due"].max()
