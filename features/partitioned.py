"""A partitioned ledger: the layout a cluster reads from shared storage, one client bucket at a time.

`partition_folder` writes any ledger folder as Parquet datasets partitioned hive-style by a client
bucket (`invoices/bucket=3/part-0.parquet`): the clients in sorted id order, cut into `buckets`
contiguous ranges, every row of a client in its bucket and every payment and instalment in its
invoice's (the streaming reader's routing, `features.stream`), the rows of no client in a last
bucket, `fx_rates.parquet` once beside them. Rows are written as read, not yet validated, each with
its `source_row` (its position in the original file): whoever reads a bucket validates it against
the contract and names rejected rows as the original files number them. The manifest records the
buckets' client ranges (a reader checks its rows against them: a client split across buckets is
rejected, naming the bucket and rows) and the invoice rows whose id another bucket already used.

`bucket_part` reads, types and validates one bucket (what a Spark executor does with its own);
`read_parts` gives any ledger folder, plain or partitioned, part by part, and is what the local
engine reads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from features.contract import (
    BY_INVOICE,
    RATES,
    TABLE_NAMES,
    VIOLATION_COLUMNS,
    ContractConfig,
    Ledger,
    check_rates,
    coerce_table,
    flag,
)
from features.errors import InputError
from features.fx import resolve_reporting
from features.io import (
    LAYOUT,
    MANIFEST,
    SOURCE_ROW,
    Layout,
    _schema,
    arrow_to_frame,
    atomic_directory,
    atomic_file,
    bucket_files,
    bucket_folder,
    check_files,
    read_bucket_table,
    read_layout,
    read_manifest,
    read_table_file,
    reporting_currency,
    resolve_extracted_on,
    table_batches,
)
from features.stream import (
    CLIENT_TABLES,
    PART_CLIENTS,
    ROW,
    LedgerPart,
    Shared,
    _ids,
    _Spill,
    _spill_ledger,
    _to_frame,
    check_part,
    ledger_parts,
)

PART_FILE = "part-0.parquet"
KEEP_COPIES = 2  # partitioned copies of one plain ledger kept in a cache (`partitioned_copy`)


def partition_folder(
    source: Path | str,
    out: Path | str,
    *,
    buckets: int,
    scratch: Path | str | None = None,
) -> Layout:
    """Write the ledger folder `source` as a partitioned ledger `out` (replaced atomically: a
    failure leaves nothing); memory stays that of the streaming reader's spill, whatever the
    ledger's size. Returns the layout written."""
    source, out = Path(source), Path(out)
    if buckets < 1:
        raise InputError(f"--buckets must be at least 1, not {buckets}")
    if read_layout(source) is not None:
        raise InputError(f"{source} is partitioned already")
    files = check_files(source)
    paths = {name: files.paths.get(name) for name in TABLE_NAMES}
    part_clients = max(1, -(-files.rows["clients"] // buckets))
    work = Path(tempfile.mkdtemp(prefix="creditguard-partition-", dir=scratch))
    try:
        spill = _Spill(work)
        n_parts, duplicates, currencies, ids = _spill_ledger(paths, spill, part_clients, work)
        sorted_ids = ids.to_pylist()
        ranges: list[tuple[str | None, str | None]] = []
        for b in range(buckets):
            mine = sorted_ids[b * part_clients : (b + 1) * part_clients]
            ranges.append((mine[0], mine[-1]) if mine else (None, None))
        layout = Layout(
            buckets,
            ranges,
            [name for name in TABLE_NAMES if paths[name] is not None],
            {b: sorted(rows) for b, rows in duplicates.items() if b < n_parts},
        )
        with atomic_directory(out) as tmp:
            for name in layout.tables:
                for b in range(buckets + 1):
                    # the unowned rows are the spill's orphan part; buckets past the clients: empty
                    part = n_parts if b == layout.unowned else b if b < n_parts else None
                    table = spill.read(name, part) if part is not None else None
                    if table is None:
                        table = _empty(paths[name])  # type: ignore[arg-type]
                    folder = bucket_folder(tmp, name, b)
                    folder.mkdir(parents=True)
                    pq.write_table(
                        table.rename_columns(
                            [SOURCE_ROW if c == ROW else c for c in table.column_names]
                        ),
                        folder / PART_FILE,
                        compression="zstd",
                    )
            rates = files.paths.get(RATES)
            if rates is not None:
                batches = list(table_batches(rates))
                whole = pa.concat_tables(batches) if batches else _schema(rates).empty_table()
                pq.write_table(whole, tmp / f"{RATES}.parquet")
            manifest = read_manifest(source) | {
                "extracted_on": str(resolve_extracted_on(source, None).date()),
                LAYOUT: layout.to_json(),
            }
            reporting = resolve_reporting(reporting_currency(source), currencies)
            if reporting:
                manifest["reporting_currency"] = reporting
            manifest["rows"] = files.rows
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        spill.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return layout


def _empty(path: Path) -> pa.Table:
    """No rows of a table, with its file's columns (and the source row)."""
    table = _schema(path).empty_table()
    return table.append_column(ROW, pa.array([], pa.int64()))


def shared_checks(
    folder: Path, *, config: ContractConfig | None = None
) -> tuple[Shared, pd.DataFrame]:
    """What every bucket of a partitioned ledger is checked with, and the rejected rate rows."""
    layout = _layout_of(folder)
    day = resolve_extracted_on(folder, None)
    rates_path = check_rates_path(folder)
    rates, bad_rates = check_rates(
        read_table_file(rates_path) if rates_path is not None else None,
        extracted_on=day,
        reporting_currency=reporting_currency(folder),
        config=config,
    )
    duplicates = {b: set(rows) for b, rows in layout.duplicates.items()}
    return Shared(day, reporting_currency(folder), rates, config, duplicates), bad_rates


def check_rates_path(folder: Path) -> Path | None:
    path = folder / f"{RATES}.parquet"
    return path if path.exists() else None


def _layout_of(folder: Path) -> Layout:
    layout = read_layout(folder)
    if layout is None:
        raise InputError(f"{folder} is not a partitioned ledger (no {LAYOUT} in its manifest)")
    return layout


def bucket_part(folder: Path | str, bucket: int, shared: Shared) -> LedgerPart:
    """One bucket read, typed and validated: its clean ledger and rejected rows (numbered as in
    the original files). A row of a client outside the bucket's range is rejected as split
    across buckets."""
    folder = Path(folder)
    layout = _layout_of(folder)
    raw: dict[str, pd.DataFrame] = {}
    rows: dict[str, np.ndarray] = {}
    for name in layout.tables:
        table = read_bucket_table(folder, name, bucket)
        if ROW in table.column_names:
            raise InputError(f"{bucket_folder(folder, name, bucket)}: column {ROW} is reserved")
        raw[name], rows[name] = _to_frame(
            table.rename_columns([ROW if c == SOURCE_ROW else c for c in table.column_names])
        )
    first, last = layout.clients[bucket] if bucket < layout.buckets else (None, None)

    def misplaced(ledger: Ledger) -> pd.DataFrame:
        found = []
        for name in CLIENT_TABLES:
            if name not in layout.tables:  # (not `raw`: the contract consumes it)
                continue
            frame = ledger.table(name)
            ids = frame["client_id"].astype("string")
            if first is None or last is None:
                # the unowned bucket's rows of a known client, or an empty bucket's rows
                outside = ids.notna() & (bucket < layout.buckets)
            else:
                outside = ids.notna() & ((ids < first) | (ids > last))
            outside = outside.fillna(False).to_numpy(dtype=bool)
            if outside.any():
                where = f"clients {first} to {last}" if first is not None else "no clients"
                found.append(
                    flag(
                        name,
                        frame,
                        outside,
                        "client_id",
                        f"is outside bucket {bucket} ({where}): a client split across buckets",
                    )
                )
        return (
            pd.concat(found, ignore_index=True)
            if found
            else pd.DataFrame(columns=VIOLATION_COLUMNS)
        )

    return check_part(raw, rows, bucket, shared, misplaced)


def bucket_parts(
    folder: Path | str, *, config: ContractConfig | None = None
) -> Generator[LedgerPart, None, None]:
    """A partitioned ledger bucket by bucket (as `features.stream.ledger_parts` gives a plain
    one), then the bucket of rows that belong to no client with the rejected rate rows."""
    folder = Path(folder)
    layout = _layout_of(folder)
    shared, bad_rates = shared_checks(folder, config=config)
    for bucket in range(layout.buckets + 1):
        piece = bucket_part(folder, bucket, shared)
        if bucket == layout.unowned:
            piece.rejected[RATES] = bad_rates
        yield piece


def read_parts(
    folder: Path | str,
    *,
    part_clients: int = PART_CLIENTS,
    config: ContractConfig | None = None,
    scratch: Path | str | None = None,
) -> Generator[LedgerPart, None, None]:
    """Any ledger folder part by part: a partitioned one by its buckets, a plain one through the
    streaming reader's spill (`features.stream.ledger_parts`)."""
    if read_layout(folder) is not None:
        yield from bucket_parts(folder, config=config)
    else:
        yield from ledger_parts(folder, part_clients=part_clients, config=config, scratch=scratch)


class BucketRejectedError(InputError):
    """A bucket of a partitioned ledger breaks the contract where a valid ledger is needed."""

    def __init__(self, folder: Path, bucket: int, rejected: dict[str, pd.DataFrame]) -> None:
        shown = []
        for name, frame in rejected.items():
            for position, reasons in frame["reasons"].head(3).items():
                shown.append(f"{name} row {int(position) + 1:,}: {reasons}")
        n = sum(len(f) for f in rejected.values())
        super().__init__(
            f"{bucket_folder(folder, '*', bucket)}: {n:,} row{'s' if n > 1 else ''} of bucket "
            f"{bucket} break the data contract ({'; '.join(shown)}); every violation: "
            f"creditguard validate {folder}"
        )


def clean_bucket(folder: Path | str, bucket: int, shared: Shared) -> Ledger:
    """One bucket's ledger, refused (`BucketRejectedError`) when any of its rows breaks the
    contract: what training reads, as `load_ledger` refuses a plain ledger."""
    part = bucket_part(folder, bucket, shared)
    bad = {name: frame for name, frame in part.rejected.items() if len(frame)}
    if bad:
        raise BucketRejectedError(Path(folder), bucket, bad)
    return part.ledger


def partitioned_copy(
    folder: Path | str, cache: Path | str, *, bucket_clients: int = PART_CLIENTS
) -> Path:
    """A partitioned ledger to read `folder` from: itself when it is one, else its partitioned
    copy under `cache`, written once per version of its files (a lock keeps two processes from
    writing it twice; a changed file makes a new copy). Of one folder's copies the newest
    `KEEP_COPIES` stay (a worker that has not yet followed a reload still reads the one before);
    older ones are removed, so that recording actions does not fill the disk."""
    folder, cache = Path(folder), Path(cache)
    if read_layout(folder) is not None:
        return folder
    files = check_files(folder)
    source = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    stamp = [str(folder.resolve())] + [
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(files.paths.values())
    ]
    manifest = folder / MANIFEST
    if manifest.exists():
        stamp.append(manifest.read_text(encoding="utf-8"))
    key = f"{source}-{hashlib.sha256(chr(10).join(stamp).encode()).hexdigest()[:16]}"
    target = cache / f"ledger-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".ledger-{source}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if read_layout(target) is None if target.exists() else True:
                n = max(1, -(-files.rows["clients"] // bucket_clients))
                partition_folder(folder, target, buckets=n, scratch=cache)
                (target / IN_USE).touch()
            os.utime(target)  # the newest copy in use
            copies = sorted(cache.glob(f"ledger-{source}-*"), key=lambda p: p.stat().st_mtime)
            for old in copies[:-KEEP_COPIES]:
                if old != target:
                    _remove_unused(old)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


IN_USE = ".in-use"  # a partitioned copy's lock file: readers hold it shared (`hold_copy`)


def hold_copy(folder: Path) -> IO[str] | None:
    """A shared lock on a partitioned copy for as long as the returned file stays open (None:
    not a copy in a cache): `partitioned_copy` never removes a copy a reader holds."""
    marker = folder / IN_USE
    if not marker.exists():
        return None
    handle = marker.open("r")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def _remove_unused(folder: Path) -> None:
    """Remove an old partitioned copy, unless a reader still holds it (a worker that has not
    yet followed a reload)."""
    marker = folder / IN_USE
    try:
        with marker.open("r") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(folder, ignore_errors=True)
    except BlockingIOError:
        return
    except FileNotFoundError:  # a copy from before the marker: nobody can say it is in use
        shutil.rmtree(folder, ignore_errors=True)


def _matching(folder: Path, name: str, bucket: int, column: str, values: pa.Array) -> pa.Table:
    """A table's rows in one bucket whose `column` (as an id: text, trimmed) is one of
    `values`: a filtered scan of the bucket's files, never the whole table."""
    files = [str(p) for p in bucket_files(folder, name, bucket)]
    key = pc.utf8_trim_whitespace(ds.field(column).cast(pa.string()))
    return ds.dataset(files, format="parquet").to_table(filter=pc.is_in(key, value_set=values))


def client_part(folder: Path | str, client_id: str, shared: Shared) -> LedgerPart | None:
    """One client's rows read from its bucket with filtered scans, typed and checked against the
    contract like its bucket (None: no bucket holds the client). What the service reads for a
    client, instead of holding the ledger."""
    folder = Path(folder)
    layout = _layout_of(folder)
    bucket = layout.bucket_of(client_id)
    if bucket is None:
        return None
    tables: dict[str, pa.Table] = {}
    one = pa.array([client_id], pa.string())
    for name in layout.tables:
        if name not in BY_INVOICE:
            tables[name] = _matching(folder, name, bucket, "client_id", one)
    invoices = tables.get("invoices")
    ids = (
        pc.unique(_ids(invoices["invoice_id"]).drop_null())
        if invoices is not None
        else pa.array([], pa.string())
    )
    for name in BY_INVOICE:
        if name in layout.tables:
            tables[name] = _matching(folder, name, bucket, "invoice_id", ids)
    raw: dict[str, pd.DataFrame] = {}
    rows: dict[str, np.ndarray] = {}
    for name, table in tables.items():
        raw[name], rows[name] = _to_frame(
            table.rename_columns([ROW if c == SOURCE_ROW else c for c in table.column_names])
        )
    return check_part(raw, rows, bucket, shared)


def read_clients(folder: Path | str, columns: list[str]) -> pd.DataFrame:
    """The clients table of a partitioned ledger, typed (`columns` of it, those there), every
    bucket's: a small table, one row per client."""
    folder = Path(folder)
    layout = _layout_of(folder)
    parts = [read_bucket_table(folder, "clients", b) for b in range(layout.buckets)]
    whole = pa.concat_tables(parts, promote_options="permissive")
    raw = arrow_to_frame(whole.select([c for c in columns if c in whole.column_names]))
    typed, _ = coerce_table("clients", raw)
    return typed


def earliest(folder: Path | str, name: str, column: str) -> pd.Timestamp | None:
    """The earliest date in a column of a partitioned table: from the Parquet statistics when
    the column is typed, else read (as the contract reads it)."""
    folder = Path(folder)
    layout = _layout_of(folder)
    if name not in layout.tables:
        return None
    found: list[pd.Timestamp] = []
    for bucket in range(layout.buckets):
        for path in bucket_files(folder, name, bucket):
            meta = pq.ParquetFile(path)
            at = meta.schema_arrow.get_field_index(column)
            kind = meta.schema_arrow.field(at).type if at >= 0 else None
            stats = (
                [
                    meta.metadata.row_group(g).column(at).statistics
                    for g in range(meta.metadata.num_row_groups)
                ]
                if at >= 0
                else []
            )
            if (
                kind is not None
                and pa.types.is_temporal(kind)
                and all(s is not None and s.has_min_max for s in stats)
            ):
                found += [pd.Timestamp(s.min) for s in stats]
                continue
            values = pq.read_table(path, columns=[column])[column].to_pandas()
            dates = pd.to_datetime(values, errors="coerce", format="mixed")
            if dates.notna().any():
                found.append(dates.min())
    return min(found) if found else None


def client_rows(folder: Path | str, name: str, bucket: int, client_id: str) -> pd.DataFrame:
    """One client's rows of a table in its bucket, as written (without the source row)."""
    table = _matching(Path(folder), name, bucket, "client_id", pa.array([client_id], pa.string()))
    return arrow_to_frame(table.drop_columns([SOURCE_ROW]))


def append_action(folder: Path | str, typed: pd.DataFrame) -> None:
    """One checked action row appended to a partitioned ledger: a new file in its client's
    bucket of the actions table, numbered after every row the log had (the manifest counts
    them). The caller holds the ledger's lock."""
    folder = Path(folder)
    layout = _layout_of(folder)
    bucket = layout.bucket_of(str(typed["client_id"].iloc[0]))
    assert bucket is not None  # the caller found the client
    manifest = read_manifest(folder)
    counts = dict(manifest.get("rows") or {})  # type: ignore[call-overload]
    n = int(counts.get("actions", 0))
    row = pa.Table.from_pandas(typed.assign(**{SOURCE_ROW: [n]}), preserve_index=False)
    if "actions" not in layout.tables:  # the first action: every bucket gets the table
        for b in range(layout.buckets + 1):
            where = bucket_folder(folder, "actions", b)
            where.mkdir(parents=True, exist_ok=True)
            pq.write_table(row.schema.empty_table(), where / PART_FILE)
        layout = Layout(
            layout.buckets, layout.clients, [*layout.tables, "actions"], layout.duplicates
        )
    else:  # as the bucket's files have it (a ledger partitioned from CSV: text)
        schema = pq.read_schema(bucket_files(folder, "actions", bucket)[0])
        try:
            row = row.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError):
            text = typed.astype(str).replace({"NaT": "", "nan": "", "None": "", "<NA>": ""})
            row = pa.Table.from_pandas(text.assign(**{SOURCE_ROW: [n]}), preserve_index=False)
            row = row.select(schema.names).cast(schema)
    with atomic_file(bucket_folder(folder, "actions", bucket) / f"part-{n:012d}.parquet") as tmp:
        pq.write_table(row, tmp)
    counts["actions"] = n + 1
    manifest = manifest | {"rows": counts, LAYOUT: layout.to_json()}
    with atomic_file(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
