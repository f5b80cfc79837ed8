"""Feature tables with labels, built partition by partition of clients."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from features.arrays import index_in, isin, no_repeats, take
from features.contract import BY_INVOICE, RATES, TABLE_NAMES, Ledger
from features.io import atomic_file, read_layout
from features.labels import label_default, label_late, label_timing
from features.partitioned import BucketRejectedError, clean_bucket, shared_checks
from features.payment_behaviour import build_client_features, build_invoice_features
from features.stream import Shared

Unit = Literal["client", "invoice"]
INVOICES_PER_PARTITION = 2_000_000


def client_ledger(ledger: Ledger, client_ids: Sequence[str] | pd.Series | np.ndarray) -> Ledger:
    """The part of a ledger that belongs to some clients: what the online path loads for one client."""
    ids = pd.Index(np.asarray(client_ids, dtype=object))
    tables = {
        name: frame[isin(frame["client_id"], ids)]
        for name, frame in ledger.tables().items()
        if name not in BY_INVOICE
    }
    for name in BY_INVOICE:  # a payment or an instalment goes with its invoice
        frame = ledger.table(name)
        tables[name] = frame[isin(frame["invoice_id"], tables["invoices"]["invoice_id"])]
    return ledger.with_tables(tables)


def client_ledgers(ledger: Ledger, groups: Sequence[np.ndarray]) -> Iterator[Ledger]:
    """`client_ledger(ledger, group)` for each of some disjoint groups of client ids, the same
    tables row for row, with every table scanned once instead of once per group (the scans
    cost seconds per group on a ledger of millions of invoices)."""
    invoice_ids = ledger.invoices["invoice_id"]
    if len(groups) < 2 or not no_repeats(invoice_ids):  # a shared invoice id: one by one
        for group in groups:
            yield client_ledger(ledger, group)
        return
    ids = pd.Index(np.concatenate([np.asarray(g, dtype=object) for g in groups]))
    group_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    none = len(groups)

    def by_client(name: str) -> np.ndarray:
        return take(group_of, index_in(getattr(ledger, name)["client_id"], ids), none)

    labels = {name: by_client(name) for name in TABLE_NAMES if name not in BY_INVOICE}
    for name in BY_INVOICE:  # a payment or an instalment goes with its invoice
        labels[name] = take(
            labels["invoices"], index_in(ledger.table(name)["invoice_id"], invoice_ids), none
        )
    grouped = {}
    for name, label in labels.items():
        order = np.argsort(label, kind="stable")  # stable: table order within a group
        grouped[name] = (order, np.searchsorted(label[order], np.arange(none + 1)))
    for g in range(none):
        yield ledger.with_tables(
            {
                name: getattr(ledger, name).iloc[order[bounds[g] : bounds[g + 1]]]
                for name, (order, bounds) in grouped.items()
            }
        )


def partition_ledger(ledger: Ledger, *, partitions: int) -> Iterator[Ledger]:
    """Split a ledger into `partitions` disjoint sets of whole clients (contiguous id ranges)."""
    ids = np.sort(ledger.clients["client_id"].to_numpy(dtype=object))
    yield from client_ledgers(
        ledger, [p for p in np.array_split(ids, max(1, partitions)) if len(p)]
    )


def default_partitions(ledger: Ledger) -> int:
    return max(1, int(np.ceil(len(ledger.invoices) / INVOICES_PER_PARTITION)))


def iter_feature_table(
    ledger: Ledger,
    *,
    unit: Unit,
    as_of_dates: Sequence[object] = (),
    invoices: pd.Series | None = None,
    grace_days: int = 0,
    partitions: int | None = None,
    progress: bool = False,
) -> Iterator[pd.DataFrame]:
    """Features plus labels, one partition of clients at a time (memory stays that of a partition)."""
    n_parts = partitions or default_partitions(ledger)
    bar = tqdm(total=n_parts, desc=f"{unit} features", unit="partition", disable=not progress)
    for part in partition_ledger(ledger, partitions=n_parts):
        yield part_features(
            part, unit=unit, as_of_dates=as_of_dates, invoices=invoices, grace_days=grace_days
        )
        bar.update()
    bar.close()


def part_features(
    part: Ledger,
    *,
    unit: Unit,
    as_of_dates: Sequence[object] = (),
    invoices: pd.Series | None = None,
    grace_days: int = 0,
    issued_from: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Features plus labels of one part of the clients (within it: by as_of, then client);
    `invoices` or `issued_from`: only these invoices (invoice unit)."""
    if unit == "client":
        x = build_client_features(part, as_of_dates=as_of_dates)
        y = label_default(part, x[["client_id", "as_of"]], features=x)
        for c in ("default_12m", "censored", "defaulted_before"):
            x[c] = y[c].to_numpy()
        return x
    if invoices is not None:
        chosen = invoices[isin(invoices, part.invoices["invoice_id"])]
    elif issued_from is not None:
        chosen = part.invoices.loc[part.invoices["issued_on"] >= issued_from, "invoice_id"]
    else:
        chosen = part.invoices["invoice_id"]
    x = build_invoice_features(part, invoices=chosen)
    y = label_late(part, x["invoice_id"], grace_days=grace_days).set_index("invoice_id")
    x["late"] = x["invoice_id"].map(y["late"]).to_numpy()
    x["censored"] = x["invoice_id"].map(y["censored"]).to_numpy()
    t = label_timing(part, x["invoice_id"]).set_index("invoice_id")
    x["payment_bucket"] = x["invoice_id"].map(t["payment_bucket"]).to_numpy()
    x["timing_censored"] = x["invoice_id"].map(t["timing_censored"]).to_numpy()
    return x


def build_feature_table(ledger: Ledger, *, unit: Unit, **options: object) -> pd.DataFrame:
    """The whole feature table in memory, sorted by (as_of, client_id) for client snapshots."""
    out = pd.concat(list(iter_feature_table(ledger, unit=unit, **options)), ignore_index=True)  # type: ignore[arg-type]
    if unit == "client":
        out = out.sort_values(["as_of", "client_id"], kind="stable").reset_index(drop=True)
    return out


def write_feature_table(
    ledger: Ledger, out: Path | str, *, unit: Unit, **options: object
) -> dict[str, float]:
    """Stream the feature table to one Parquet file, a row group per partition, atomically.

    Rows come grouped by client partition (within one: by as_of, then client). Returns row count
    and label rate of the uncensored rows.
    """
    frames = iter_feature_table(ledger, unit=unit, **options)  # type: ignore[arg-type]
    return write_frames(frames, out, unit=unit)


def write_frames(
    frames: Iterable[pd.DataFrame], out: Path | str, *, unit: Unit
) -> dict[str, float]:
    """Feature frames streamed to one Parquet file in the order given, a row group each,
    atomically; returns the row count and the label rate of the uncensored rows."""
    label = "default_12m" if unit == "client" else "late"
    rows = usable = events = 0
    with atomic_file(out) as tmp:
        writer: pq.ParquetWriter | None = None
        try:
            for frame in frames:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema))
                known = ~frame["censored"].to_numpy(dtype=bool)
                rows, usable, events = (
                    rows + len(frame),
                    usable + int(known.sum()),
                    events + int(frame[label].to_numpy()[known].sum()),
                )
        finally:
            if writer is not None:
                writer.close()
    return {"rows": rows, "uncensored": usable, "rate": events / usable if usable else float("nan")}


def month_ends(start: str, end: str) -> list[pd.Timestamp]:
    """Month-end dates from `start` to `end` inclusive, the usual snapshot grid."""
    return list(pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="ME"))


def bucket_features(
    folder: Path | str, bucket: int, shared: Shared, *, unit: Unit, **options: object
) -> pd.DataFrame | None:
    """The feature table of one bucket of a partitioned ledger (refused if a row of it breaks
    the contract; None: the bucket has no clients): what the local engine and a Spark executor
    both build."""
    part = clean_bucket(folder, bucket, shared)
    if not len(part.clients):
        return None
    return part_features(part, unit=unit, **options)  # type: ignore[arg-type]


def iter_bucket_features(
    folder: Path | str, *, unit: Unit, progress: bool = False, **options: object
) -> Iterator[pd.DataFrame]:
    """A partitioned ledger's feature table bucket by bucket, in bucket order."""
    layout = read_layout(folder)
    if layout is None:
        raise ValueError(f"{folder} is not a partitioned ledger")
    shared, bad_rates = shared_checks(Path(folder))
    if len(bad_rates):
        raise BucketRejectedError(Path(folder), layout.unowned, {RATES: bad_rates})
    for bucket in tqdm(
        range(layout.buckets + 1), desc=f"{unit} features", unit="bucket", disable=not progress
    ):
        frame = bucket_features(folder, bucket, shared, unit=unit, **options)
        if frame is not None:
            yield frame
