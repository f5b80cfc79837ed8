"""Outcome labels: default within 12 months for client snapshots, late payment for invoices.

Labels look forward from `as_of`; a row whose outcome window runs past the ledger's extraction
date is flagged `censored` and must not be trained on (its "no event" is not known to be good).
"""

from __future__ import annotations

import pandas as pd

from features.arrays import isin
from features.contract import Ledger

DEFAULT_DPD = 90
DEFAULT_HORIZON_MONTHS = 12


def default_dates(ledger: Ledger, *, dpd: int = DEFAULT_DPD) -> pd.Series:
    """Each client's first default event: an invoice reaching `dpd` days past due, a write-off
    or an insolvency. Clients that never defaulted are absent."""
    inv = ledger.invoices
    reached = inv["due_on"] + pd.Timedelta(days=dpd)
    # An invoice reaches 90 DPD unless settled before; a short settlement still counts as paid.
    unpaid_then = inv["paid_on"].isna() | (inv["paid_on"] > reached)
    hits = reached.where(unpaid_then & (reached <= ledger.extracted_on))
    events = pd.concat(
        [
            hits.groupby(inv["client_id"]).min(),
            inv["written_off_on"].groupby(inv["client_id"]).min(),
            ledger.insolvencies.groupby("client_id")["declared_on"].min(),
        ],
        axis=1,
    ).min(axis=1)
    events.index.name = "client_id"
    return events.dropna().rename("default_on")


def label_default(
    ledger: Ledger,
    snapshots: pd.DataFrame,
    *,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    dpd: int = DEFAULT_DPD,
) -> pd.DataFrame:
    """`default_12m`, `censored` and `defaulted_before` for (client_id, as_of) snapshots.

    `default_12m` is 1 when the first default event falls in (as_of, as_of + horizon]. A client
    already in default at `as_of` is flagged `defaulted_before`: no longer a prediction target.
    """
    first = snapshots["client_id"].map(default_dates(ledger, dpd=dpd))
    as_of = snapshots["as_of"]
    horizon_end = as_of + pd.DateOffset(months=horizon_months)
    out = snapshots[["client_id", "as_of"]].copy()
    out["defaulted_before"] = (first <= as_of).to_numpy()
    out["default_12m"] = ((first > as_of) & (first <= horizon_end)).astype("int8").to_numpy()
    out["censored"] = (horizon_end > ledger.extracted_on).to_numpy()
    return out


def label_late(
    ledger: Ledger, invoice_ids: pd.Series | None = None, *, grace_days: int = 0
) -> pd.DataFrame:
    """`late` for invoices: paid more than `grace_days` after the due date, or still unpaid then.

    `censored` marks open invoices whose due date plus grace had not passed by the extraction date:
    whether they will be late is not known yet.
    """
    inv = ledger.invoices
    if invoice_ids is not None:
        inv = inv[isin(inv["invoice_id"], invoice_ids)]
    deadline = inv["due_on"] + pd.Timedelta(days=grace_days)
    censored = inv["paid_on"].isna() & (deadline >= ledger.extracted_on)
    late = inv["paid_on"].isna() | (inv["paid_on"] > deadline)
    return pd.DataFrame(
        {
            "invoice_id": inv["invoice_id"].to_numpy(),
            "late": (late & ~censored).astype("int8").to_numpy(),
            "censored": censored.to_numpy(),
        }
    )
