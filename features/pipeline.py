"""Feature tables with labels, built partition by partition of clients."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from features.catalog import FeatureSpec
from features.contract import Ledger
from features.labels import label_default, label_late
from features.payment_behaviour import (
    build_client_features,
    build_invoice_features,
    client_feature_specs,
    invoice_feature_specs,
)

Unit = Literal["client", "invoice"]
INVOICES_PER_PARTITION = 2_000_000


def feature_specs(unit: Unit) -> list[FeatureSpec]:
    """The catalog of a unit's features, in column order."""
    specs = client_feature_specs()
    return specs + invoice_feature_specs() if unit == "invoice" else specs


def client_ledger(ledger: Ledger, client_ids: Sequence[str] | pd.Series | np.ndarray) -> Ledger:
    """The part of a ledger that belongs to some clients: what the online path loads for one client."""
    ids = pd.Index(np.asarray(client_ids, dtype=object))
    invoices = ledger.invoices[ledger.invoices["client_id"].isin(ids)]
    return ledger.with_tables(
        {
            "clients": ledger.clients[ledger.clients["client_id"].isin(ids)],
            "invoices": invoices,
            "payments": ledger.payments[ledger.payments["invoice_id"].isin(invoices["invoice_id"])],
            "financials": ledger.financials[ledger.financials["client_id"].isin(ids)],
            "insolvencies": ledger.insolvencies[ledger.insolvencies["client_id"].isin(ids)],
        }
    )


def partition_ledger(ledger: Ledger, *, partitions: int) -> Iterator[Ledger]:
    """Split a ledger into `partitions` disjoint sets of whole clients (contiguous id ranges)."""
    ids = np.sort(ledger.clients["client_id"].to_numpy(dtype=object))
    for part in np.array_split(ids, max(1, partitions)):
        if len(part):
            yield client_ledger(ledger, part)


def default_partitions(ledger: Ledger) -> int:
    return max(1, int(np.ceil(len(ledger.invoices) / INVOICES_PER_PARTITION)))


def build_feature_table(
    ledger: Ledger,
    *,
    unit: Unit,
    as_of_dates: Sequence[object] = (),
    invoices: pd.Series | None = None,
    grace_days: int = 0,
    partitions: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Features plus labels for client snapshots or invoices at issue, one partition at a time."""
    n_parts = partitions or default_partitions(ledger)
    frames = []
    bar = tqdm(total=n_parts, desc=f"{unit} features", unit="partition", disable=not progress)
    for part in partition_ledger(ledger, partitions=n_parts):
        if unit == "client":
            x = build_client_features(part, as_of_dates=as_of_dates)
            y = label_default(part, x[["client_id", "as_of"]])
            frames.append(
                x.assign(
                    **{c: y[c].to_numpy() for c in ("default_12m", "censored", "defaulted_before")}
                )
            )
        else:
            chosen = (
                part.invoices["invoice_id"]
                if invoices is None
                else invoices[invoices.isin(part.invoices["invoice_id"])]
            )
            x = build_invoice_features(part, invoices=chosen)
            y = label_late(part, x["invoice_id"], grace_days=grace_days).set_index("invoice_id")
            frames.append(
                x.assign(
                    late=x["invoice_id"].map(y["late"]).to_numpy(),
                    censored=x["invoice_id"].map(y["censored"]).to_numpy(),
                )
            )
        bar.update()
    bar.close()
    out = pd.concat(frames, ignore_index=True)
    key = ["as_of", "client_id"] if unit == "client" else []
    return out.sort_values(key, kind="stable").reset_index(drop=True) if key else out


def month_ends(start: str, end: str) -> list[pd.Timestamp]:
    """Month-end dates from `start` to `end` inclusive, the usual snapshot grid."""
    return list(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="ME"))
