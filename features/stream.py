"""A ledger folder read a part of its clients at a time, so that memory stays flat as it grows.

`load_ledger` holds the whole ledger (and, while it validates, more): 6 GB for 100,000 clients and
19.5 million invoices. `ledger_parts` instead makes one streaming pass over each file and spills
its rows to scratch files, one per part of the clients (every row of a client lands in its part);
the parts are then read, typed, validated and quarantined one at a time. What the whole-ledger
check finds across clients is found here too: payments and instalments go to the part of the invoice they belong to
(matched in shards of invoice ids, so that no table of every id is ever held), an invoice id used
by two clients in different parts is flagged on its later row, and rows that belong to no client
(or pay no invoice) form a last part in which the contract rejects them. Row numbers in violations
and rejected rows are those of the original files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import (
    BY_INVOICE,
    RATES,
    TABLE_NAMES,
    ContractConfig,
    Ledger,
    check_ledger,
    check_rates,
    flag,
    invoice_currencies,
    split_quarantine,
)
from features.fx import resolve_reporting
from features.io import (
    arrow_to_frame,
    check_files,
    read_table_file,
    reporting_currency,
    resolve_extracted_on,
    table_batches,
)

PART_CLIENTS = 2048  # clients read, typed and validated together
BATCH_ROWS = 262_144  # rows of a file held at once while spilling
ROW = "__row"  # a spilled row's 0-based position in its original file
CLIENT_TABLES = ("clients", "invoices", "financials", "insolvencies", "insurer_limits", "actions")


@dataclass
class LedgerPart:
    """One part's clean ledger and its rejected rows per table (a `reasons` column; the index is
    the row's 0-based position in its file). The last part has no clients: only rejected rows."""

    ledger: Ledger
    rejected: dict[str, pd.DataFrame]


def _batches(path: Path) -> Iterator[pa.Table]:
    """A table file in batches, as read (CSV: every cell as text)."""
    return table_batches(path, rows=BATCH_ROWS)


def _ids(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Ids as the contract reads them: text, trimmed, an empty one missing (null)."""
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


_MULTIPLIER = np.uint64(0x100000001B3)


def _shard(ids: pa.Array, shards: int) -> np.ndarray:
    """Each id's shard: a polynomial hash of its bytes (null as empty), mixed, modulo `shards`.
    Equal ids always share a shard; computed on Arrow's buffers, no Python string per row."""
    ids = pc.fill_null(ids, "")
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[
        ids.offset : ids.offset + len(ids) + 1
    ]
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    if not len(ids) or not lengths.any():
        return np.zeros(len(ids), dtype=np.int64)
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    powers = np.ones(int(lengths.max()), dtype=np.uint64)
    powers[1:] = np.cumprod(np.full(len(powers) - 1, _MULTIPLIER, dtype=np.uint64))
    at = np.arange(len(data)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    sums = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum(data.astype(np.uint64) * powers[at], out=sums[1:])
    h = sums[offsets[1:] - offsets[0]] - sums[offsets[:-1] - offsets[0]] + lengths.astype(np.uint64)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return (h % np.uint64(shards)).astype(np.int64)


class _Spill:
    """Arrow IPC files, one per (table, part), appended batch by batch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[tuple[str, int], pa.ipc.RecordBatchFileWriter] = {}
        self.schemas: dict[str, pa.Schema] = {}

    def write(self, name: str, table: pa.Table, part: np.ndarray) -> None:
        """Append each row of `table` to the file of its part (rows keep their order)."""
        self.schemas.setdefault(name, table.schema)
        order = np.argsort(part, kind="stable")
        ordered = table.take(pa.array(order))
        parts, starts = np.unique(part[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        for p, start, end in zip(parts.tolist(), starts.tolist(), ends.tolist(), strict=True):
            writer = self.writers.get((name, p))
            if writer is None:
                writer = pa.ipc.new_file(self.folder / f"{name}.{p}.arrow", table.schema)
                self.writers[(name, p)] = writer
            writer.write_table(ordered.slice(start, end - start))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def read(self, name: str, part: int) -> pa.Table | None:
        path = self.folder / f"{name}.{part}.arrow"
        if not path.exists():
            return self.schemas[name].empty_table() if name in self.schemas else None
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()


def _to_frame(table: pa.Table) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows in file order as `read_table_file` gives them, and their positions in the file."""
    table = table.take(pc.sort_indices(table[ROW]))
    rows = table[ROW].to_numpy()
    return arrow_to_frame(table.drop_columns([ROW])), rows


def ledger_parts(
    folder: Path | str,
    *,
    part_clients: int = PART_CLIENTS,
    extracted_on: str | pd.Timestamp | None = None,
    config: ContractConfig | None = None,
    scratch: Path | str | None = None,
) -> Generator[LedgerPart, None, None]:
    """The ledger folder's clients in parts of `part_clients` (in client id order), each part
    typed, validated and with its contract-breaking rows set aside, then a last part of the rows
    that belong to no client (and the fx_rates rows the contract rejects: the rates are checked
    once and every part holds all the clean ones). Spill files live in a temporary folder under `scratch` (default:
    the system's) and are removed when the iteration ends: iterate inside
    `contextlib.closing(...)`, so that an interrupt (SIGTERM, Ctrl-C) removes them at once
    rather than whenever the suspended generator is collected, which may be never."""
    folder = Path(folder)
    files = check_files(folder)
    day = resolve_extracted_on(folder, extracted_on)
    paths = {name: files.paths.get(name) for name in TABLE_NAMES}
    work = Path(tempfile.mkdtemp(prefix="creditguard-parts-", dir=scratch))
    spill: _Spill | None = None
    try:
        spill = _Spill(work)
        n_parts, duplicates, currencies, _ = _spill_ledger(paths, spill, part_clients, work)
        reporting = resolve_reporting(reporting_currency(folder), currencies)
        rates_path = files.paths.get(RATES)
        rates, bad_rates = check_rates(
            read_table_file(rates_path) if rates_path is not None else None,
            extracted_on=day,
            reporting_currency=reporting,
            config=config,
        )
        shared = Shared(day, reporting, rates, config, duplicates)
        for part in range(n_parts + 1):
            piece = _read_part(spill, part, paths, shared)
            if part == n_parts:
                piece.rejected[RATES] = bad_rates
            yield piece
    finally:
        if spill is not None:
            spill.close()
        shutil.rmtree(work, ignore_errors=True)


def _spill_ledger(
    paths: dict[str, Path | None], spill: _Spill, part_clients: int, work: Path
) -> tuple[int, dict[int, set[int]], set[str], pa.Array]:
    """Spill every table to its parts; returns the number of client parts (the orphan part is
    numbered after them), per part the invoice rows whose id an earlier row of another part
    already uses, the invoices' currencies (the reporting currency's default) and the client
    ids in sorted order (part k holds positions k * part_clients onwards)."""
    currencies: set[str] = set()
    ids = pa.array([], type=pa.string())
    if paths["clients"] is not None:
        found = [
            _ids(t["client_id"])
            for t in _batches(paths["clients"])
            if "client_id" in t.column_names
        ]
        if found:
            ids = pc.unique(pa.chunked_array(found).combine_chunks().drop_null())
            ids = ids.take(pc.sort_indices(ids))
    n_parts = max(1, -(-len(ids) // part_clients))
    orphan = n_parts

    def part_of(keys: pa.Array) -> np.ndarray:
        at = pc.fill_null(pc.index_in(keys, value_set=ids), -1).to_numpy()
        return np.where(at >= 0, at // part_clients, orphan)

    shards = n_parts
    id_spill = _Spill(work / "ids")
    id_spill.folder.mkdir()
    for name in CLIENT_TABLES:
        path = paths[name]
        if path is None:
            continue
        offset = 0
        for table in _batches(path):
            table = table.append_column(ROW, pa.array(np.arange(offset, offset + len(table))))
            offset += len(table)
            part = (
                part_of(_ids(table["client_id"]))
                if "client_id" in table.column_names
                else np.full(len(table), orphan)
            )
            spill.write(name, table, part)
            if name == "invoices" and "currency" in table.column_names:
                found = pc.unique(_ids(table["currency"])).to_pandas()
                currencies.update(invoice_currencies(found))
            if name == "invoices" and "invoice_id" in table.column_names:
                keys = _ids(table["invoice_id"])
                known = pc.is_valid(keys)
                index = pa.table(
                    {
                        "invoice_id": keys.filter(known),
                        ROW: table[ROW].filter(known),
                        "part": pa.array(part).filter(known),
                    }
                )
                id_spill.write("ids", index, _shard(index["invoice_id"], shards))
    # payments and instalments go with their invoice: spilled by shard of invoice id first
    by_invoice = [name for name in BY_INVOICE if paths[name] is not None]
    pay_spill = _Spill(work / "payments")
    pay_spill.folder.mkdir()
    for name in by_invoice:
        offset = 0
        for table in _batches(paths[name]):  # type: ignore[arg-type]
            table = table.append_column(ROW, pa.array(np.arange(offset, offset + len(table))))
            offset += len(table)
            keys = (
                _ids(table["invoice_id"])
                if "invoice_id" in table.column_names
                else pa.nulls(len(table), pa.string())
            )
            pay_spill.write(name, table, _shard(keys, shards))
    pay_spill.close()
    id_spill.close()

    # Per shard of invoice ids: each id's first row (in file order) decides where its payments
    # go; a later row with the same id in another part breaks the key (within one part the
    # contract sees both rows and flags it itself). Repeats are rare: counted first.
    duplicates: dict[int, set[int]] = {}
    for shard in range(shards):
        index = id_spill.read("ids", shard)
        if index is None:
            index = pa.table(
                {"invoice_id": pa.array([], pa.string()), "part": pa.array([], pa.int64())}
            )
        elif len(index) and pc.count_distinct(index["invoice_id"]).as_py() < len(index):
            frame = index.to_pandas().sort_values(ROW, kind="stable")
            repeat = frame["invoice_id"].duplicated(keep="first").to_numpy()
            owner = frame[~repeat].set_index("invoice_id")["part"]
            later = frame[repeat]
            later = later[later["part"].to_numpy() != owner.loc[later["invoice_id"]].to_numpy()]
            # ... and only its part's first row of the id: the contract flags the part's others
            later = later[~later.duplicated(["invoice_id", "part"]).to_numpy()]
            for part, row in zip(later["part"].tolist(), later[ROW].tolist(), strict=True):
                duplicates.setdefault(int(part), set()).add(int(row))
            index = pa.Table.from_pandas(frame[~repeat], preserve_index=False)
        for name in by_invoice:
            rows = pay_spill.read(name, shard)
            if rows is None or not len(rows):
                continue
            keys = (
                _ids(rows["invoice_id"])
                if "invoice_id" in rows.column_names
                else pa.nulls(len(rows), pa.string())
            )
            owners = np.full(len(rows), orphan, dtype=np.int64)
            if len(index):
                first = index["invoice_id"].combine_chunks()
                at = pc.fill_null(pc.index_in(keys, value_set=first), -1).to_numpy()
                owners[at >= 0] = index["part"].to_numpy()[at[at >= 0]]
            spill.write(name, rows, owners)
    spill.close()
    shutil.rmtree(work / "ids", ignore_errors=True)
    shutil.rmtree(work / "payments", ignore_errors=True)
    return n_parts, duplicates, currencies, ids


@dataclass(frozen=True)
class Shared:
    """What every part is checked with: the extraction date, the reporting currency, the clean
    rates, the contract's tolerances, and the invoice rows that repeat another part's id."""

    day: pd.Timestamp
    reporting: str | None
    rates: pd.DataFrame
    config: ContractConfig | None
    duplicates: dict[int, set[int]]


def _read_part(
    spill: _Spill, part: int, paths: dict[str, Path | None], shared: Shared
) -> LedgerPart:
    raw: dict[str, pd.DataFrame] = {}
    rows: dict[str, np.ndarray] = {}
    for name in TABLE_NAMES:
        if paths[name] is None:
            continue
        table = spill.read(name, part)
        if table is None:
            continue
        raw[name], rows[name] = _to_frame(table)
    return check_part(raw, rows, part, shared)


def check_part(
    raw: dict[str, pd.DataFrame],
    rows: dict[str, np.ndarray],
    part: int,
    shared: Shared,
    misplaced: Callable[[Ledger], pd.DataFrame] | None = None,
) -> LedgerPart:
    """One part's tables as read (`rows`: each row's position in its file) typed, checked
    against the contract with what every part shares, and split into clean and rejected rows;
    `misplaced`: violations of rows that belong to another part."""
    config = shared.config
    ledger, violations = check_ledger(
        raw,
        extracted_on=shared.day,
        reporting_currency=shared.reporting,
        rates=shared.rates,
        config=config,
        consume=True,
    )
    repeated = shared.duplicates.get(part)
    if repeated:
        local = np.isin(rows["invoices"], list(repeated))
        violations = pd.concat(
            [
                violations,
                flag(
                    "invoices",
                    ledger.invoices,
                    local,
                    "invoice_id",
                    "duplicates the key (invoice_id)",
                ),
            ],
            ignore_index=True,
        )
    if misplaced is not None:
        violations = pd.concat([violations, misplaced(ledger)], ignore_index=True)
    clean, rejected = split_quarantine(ledger, violations, config=config)
    for name, frame in rejected.items():
        if name in rows and len(frame):
            frame.index = rows[name][frame.index.to_numpy()]
    return LedgerPart(clean, rejected)
