"""Outcome labels: default within 12 months for client snapshots, late payment for invoices.

Labels look forward from `as_of`; a row whose outcome window runs past the ledger's extraction
date is flagged `censored` and must not be trained on (its "no event" is not known to be good).

Default has one definition, used by the labels and by every decision rule (`scoring.status`):
an invoice more than 90 days past due, a write-off or an insolvency. A client is *in default*
on a day when, by what was known before that day, it is insolvent, or an invoice is more than
90 days past due, or such a condition (or a write-off) ended less than `cure_days` before; a
default *event* is the first day a condition begins. `default_12m` is a new event within 12
months from `as_of`; a row already in default is `defaulted_before` and no prediction target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.arrays import isin
from features.contract import Ledger
from features.payment_behaviour import build_client_features

DEFAULT_DPD = 90
DEFAULT_HORIZON_MONTHS = 12
DEFAULT_CURE_DAYS = 365  # a default is cured after a year with none of its conditions


def in_default(features: pd.DataFrame, *, cure_days: float = DEFAULT_CURE_DAYS) -> np.ndarray:
    """Whether each client feature row is in default (the standing columns of
    `features.payment_behaviour`: insolvency, write-offs, 90+ days past due)."""

    def recent(name: str) -> np.ndarray:
        days = features[name].to_numpy(dtype="float64")
        return np.isfinite(days) & (days < cure_days)

    insolvent = np.isfinite(features["insolvency_days"].to_numpy(dtype="float64"))
    return insolvent | recent("writeoff_days") | recent("dpd90_days")


def default_events(ledger: Ledger, *, dpd: int = DEFAULT_DPD) -> pd.DataFrame:
    """Every default event known at extraction, as (client_id, on): an invoice unpaid on its due
    date + `dpd` (the last day it was not yet in default), a write-off, an insolvency."""
    inv = ledger.invoices
    reached = inv["due_on"] + pd.Timedelta(days=dpd)
    late = (inv["paid_on"].isna() | (inv["paid_on"] > reached)) & (reached <= ledger.extracted_on)
    written_off = inv["written_off_on"].notna()
    ins = ledger.insolvencies
    events = pd.DataFrame(
        {
            "client_id": np.concatenate(
                [
                    inv.loc[late, "client_id"].to_numpy(dtype=object),
                    inv.loc[written_off, "client_id"].to_numpy(dtype=object),
                    ins["client_id"].to_numpy(dtype=object),
                ]
            ),
            "on": np.concatenate(
                [
                    reached[late].to_numpy(dtype="datetime64[us]"),
                    inv.loc[written_off, "written_off_on"].to_numpy(dtype="datetime64[us]"),
                    ins["declared_on"].to_numpy(dtype="datetime64[us]"),
                ]
            ),
        }
    )
    return events.sort_values(["client_id", "on"], kind="stable").reset_index(drop=True)


def default_dates(ledger: Ledger, *, dpd: int = DEFAULT_DPD) -> pd.Series:
    """Each client's first default event; clients that never defaulted are absent."""
    first = default_events(ledger, dpd=dpd).groupby("client_id")["on"].min()
    first.index.name = "client_id"
    return first.rename("default_on")


def label_default(
    ledger: Ledger,
    snapshots: pd.DataFrame,
    *,
    features: pd.DataFrame | None = None,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    dpd: int = DEFAULT_DPD,
) -> pd.DataFrame:
    """`default_12m`, `censored` and `defaulted_before` for (client_id, as_of) snapshots.

    `default_12m` is 1 when a default event falls in [as_of, as_of + horizon): on or after
    `as_of` nothing was known of it yet. `defaulted_before` is `in_default` of the snapshot's
    features (`features`: their rows in the snapshots' order; built here when not given).
    """
    if features is None:
        built = build_client_features(ledger, as_of_dates=snapshots["as_of"].unique())
        features = snapshots[["client_id", "as_of"]].merge(
            built, on=["client_id", "as_of"], how="left"
        )
    events = default_events(ledger, dpd=dpd)
    as_of = snapshots["as_of"]
    horizon_end = as_of + pd.DateOffset(months=horizon_months)
    out = snapshots[["client_id", "as_of"]].copy()
    out["defaulted_before"] = in_default(features)
    out["default_12m"] = _event_between(events, snapshots["client_id"], as_of, horizon_end)
    out["censored"] = (horizon_end > ledger.extracted_on).to_numpy()
    return out


def _event_between(
    events: pd.DataFrame, clients: pd.Series, start: pd.Series, end: pd.Series
) -> np.ndarray:
    """1 where the client has an event in [start, end), as int8."""
    if events.empty or clients.empty:
        return np.zeros(len(clients), dtype="int8")
    # the first event on or after `start`, per row: merge_asof on sorted keys
    rows = pd.DataFrame(
        {"client_id": clients.to_numpy(), "start": start.to_numpy(), "end": end.to_numpy()}
    ).reset_index(names="row")
    ev = events.rename(columns={"on": "start"}).assign(first=events["on"])
    found = pd.merge_asof(
        rows.sort_values("start"),
        ev.sort_values("start"),
        on="start",
        by="client_id",
        direction="forward",
    ).sort_values("row")
    hit = found["first"].notna() & (found["first"] < found["end"])
    return hit.to_numpy().astype("int8")


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
            "late": (late & ~censored).astype("int8"),
            "censored": censored.to_numpy(),
        }
    )


# Payment timing: the days from the due date to settlement (negative: early), in buckets
# (lo, hi]; the last bucket is "not settled within 180 days of the due date" (or written off).
TIMING_EDGES = (-7, 0, 7, 15, 30, 45, 60, 90, 180)
TIMING_EARLIEST = -30  # the first bucket, (-inf, -7], is spread from 30 days before the due date
TIMING_NEVER = len(TIMING_EDGES)  # the bucket index of "not within 180 days"


def timing_bucket(days_late: np.ndarray) -> np.ndarray:
    """The bucket of each settlement's days late (NaN: never settled -> the last bucket)."""
    days = np.asarray(days_late, dtype="float64")
    bucket = np.searchsorted(np.asarray(TIMING_EDGES, dtype="float64"), days, side="left")
    return np.where(np.isfinite(days), bucket, TIMING_NEVER).astype("int8")


def label_timing(ledger: Ledger, invoice_ids: pd.Series | None = None) -> pd.DataFrame:
    """`payment_bucket` for invoices: when each was settled relative to its due date
    (`TIMING_EDGES`), and `timing_censored` for those whose last bucket (180 days after the due
    date) had not ended at extraction. Those never train, even when already settled: keeping
    the settled ones of recent months alone would teach that recent invoices are paid early."""
    inv = ledger.invoices
    if invoice_ids is not None:
        inv = inv[isin(inv["invoice_id"], invoice_ids)]
    days = (inv["paid_on"] - inv["due_on"]).dt.days.to_numpy(dtype="float64")
    late_limit = float(TIMING_EDGES[-1])
    settled_in_time = np.isfinite(days) & (days <= late_limit)
    window_ended = (inv["due_on"] + pd.Timedelta(days=late_limit) < ledger.extracted_on).to_numpy()
    return pd.DataFrame(
        {
            "invoice_id": inv["invoice_id"].to_numpy(),
            "payment_bucket": timing_bucket(np.where(settled_in_time, days, np.nan)),
            "timing_censored": ~window_ended,
        }
    )
