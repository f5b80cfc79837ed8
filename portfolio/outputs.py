"""A scoring run's tables, spilled chunk by chunk and written in one streaming pass.

Holding every chunk's results until the end made a run's memory grow with the portfolio (~370 MiB
of clients, features and open invoices for 100,000 clients, twice that while concatenating; then
the Spark driver's peak still grew 2.4x from 10,000 clients to 100,000 with the clients table,
the worklist and the invoices' ranking keys held whole). `RunTables` keeps only sums: the
figures the report needs of the open invoices and the worklist, segment positions and cash. The
clients, features, open invoices and worklist rows are spilled per chunk as runs sorted in their
table's order (`SortedRuns`); writing merges the runs into one portfolio-wide order a block at a
time, reading each run front to back: exactly the order a stable sort of the chunks'
concatenation gives (`portfolio.batch.finish`), ties kept in chunk order.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from portfolio.letters import LETTER_COLUMNS, empty_letters, letter_file
from scoring.collections import rank_worklist

BATCH_ROWS = 1024  # rows per spilled record batch: what each run holds in memory while merging
BLOCK_ROWS = 4096  # merged rows assembled and written at a time
FAN_IN = 16  # runs merged at once (more are merged in groups first)
FIRST_ROWS = 25  # invoices shown in the report


def prioritise(invoices: pd.DataFrame) -> pd.DataFrame:
    """Open invoices with their collection priority score (the loss collecting can still avoid,
    `scoring.collections`), sorted: the most avoidable loss first, then the larger outstanding
    amount, then by invoice id; ties keep their order."""
    score = invoices["avoidable_loss"].to_numpy(dtype="float64")
    out = invoices.assign(collection_priority_score=score)
    ids = out["invoice_id"].rank(method="dense").to_numpy()
    order = np.lexsort((ids, -out["outstanding"].to_numpy(), -score))
    return out.take(order).reset_index(drop=True)


@dataclass
class ChunkResult:
    """One chunk's results: client rows, open invoices, client features, worklist rows and the
    monthly receivables and sales of its segments (`scoring.dso`: sums, so chunks add up)."""

    clients: pd.DataFrame
    invoices: pd.DataFrame
    features: pd.DataFrame
    worklist: pd.DataFrame
    positions: pd.DataFrame
    # receipts per currency (and `TOTAL`, in the reporting currency) and week 1..13 of the open
    # invoices: expected (draw -1) and simulated (draws 0..), `scoring.timing`; sums, so chunks
    # add up
    cash: pd.DataFrame
    # the dunning letters of the chunk's clients (`portfolio.letters`): client_id, language,
    # template, html
    letters: pd.DataFrame = field(default_factory=empty_letters)
    reporting_currency: str | None = None  # what every amount but a currency's own is in

    def frames(self) -> tuple[pd.DataFrame, ...]:
        return (
            self.clients,
            self.invoices,
            self.features,
            self.worklist,
            self.positions,
            self.cash,
            self.letters,
        )


@dataclass
class InvoiceFigures:
    """What the report needs of the open invoices, without them."""

    count: int = 0
    stages: dict[int, int] = field(default_factory=dict)
    overdue_balance: float = 0.0
    # per currency: open invoices, outstanding in the currency and in the reporting currency,
    # and its change in reporting-currency value since issue (`scoring.receivables`)
    by_currency: dict[str, dict[str, float]] = field(default_factory=dict)
    reporting: str = ""
    # per insurance cover (`scoring.insurance.COVER`): open invoices and what they owe
    by_cover: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, invoices: pd.DataFrame) -> None:
        self.count += len(invoices)
        sums = invoices.groupby("currency").agg(
            open_invoices=("invoice_id", "size"),
            outstanding_in_currency=("outstanding_in_currency", "sum"),
            outstanding=("outstanding", "sum"),
            fx_change=("fx_change", "sum"),
        )
        for code, row in sums.iterrows():
            mine = self.by_currency.setdefault(str(code), dict.fromkeys(sums.columns, 0.0))
            for name, value in row.items():
                mine[str(name)] += float(value)
        if "insurance_cover" in invoices:
            cover = invoices.groupby("insurance_cover")["outstanding"].agg(["size", "sum"])
            for name, row in cover.iterrows():
                mine = self.by_cover.setdefault(str(name), {"invoices": 0.0, "outstanding": 0.0})
                mine["invoices"] += float(row["size"])
                mine["outstanding"] += float(row["sum"])
        for stage, n in invoices["escalation_stage"].value_counts().items():
            self.stages[int(stage)] = self.stages.get(int(stage), 0) + int(n)
        self.overdue_balance += float(invoices["overdue"].sum())

    def currency(self) -> str:
        """The reporting currency, which every amount but the per-currency ones is in."""
        codes = list(self.by_currency)
        return self.reporting or (codes[0] if len(codes) == 1 else "")


def release_memory() -> None:
    """Give the memory freed so far back to the system: Arrow's pool (mimalloc) and the C heap
    keep freed pages for reuse, and after a table's merge they would stay in the process's
    resident set for the rest of the run."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _keys_path(run: Path) -> Path:
    """Where a spilled run's sort keys are, beside it."""
    return run.with_name(run.name + ".keys")


class _Run:
    """One spilled file read front to back, a record batch at a time."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.file = pa.OSFile(str(path))
        self.reader = pa.ipc.open_file(self.file)
        self.schema = schema
        self.batch = 0
        self.buffer = schema.empty_table()

    def take(self, n: int) -> pa.Table:
        while len(self.buffer) < n:
            more = pa.Table.from_batches([self.reader.get_batch(self.batch)])
            self.batch += 1
            self.buffer = pa.concat_tables([self.buffer, more.cast(self.schema)])
        out, self.buffer = self.buffer.slice(0, n), self.buffer.slice(n)
        return out

    def close(self) -> None:
        self.file.close()


Order = tuple[tuple[str, bool], ...]  # sort keys: (column, descending)

CLIENT_ORDER: Order = (("client_id", False),)
INVOICE_ORDER: Order = (  # `prioritise`
    ("collection_priority_score", True),
    ("outstanding", True),
    ("invoice_id", False),
)
WORKLIST_ORDER: Order = (  # `scoring.collections.rank_worklist`
    ("avoidable_loss", True),
    ("overdue_amount", True),
    ("client_id", False),
    ("queue", False),
)


def _key_values(column: pa.ChunkedArray | pa.Array, descending: bool) -> list[object]:
    """One sort key of a record batch as Python values that compare as the in-memory sorts
    do: numbers (negated when descending; NaN last, as numpy and Arrow place it), strings by
    code point."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        values = column.to_numpy(zero_copy_only=False).astype("float64")
        values = -values if descending else values
        return np.where(np.isnan(values), np.inf, values).tolist()
    return pc.fill_null(column.cast(pa.string()), "").to_pylist()


class SortedRuns:
    """A table spilled chunk by chunk as runs, each sorted by `order` (ties in its rows'
    order), and read back merged into one portfolio-wide order a block at a time: exactly the
    order a stable sort of the chunks' concatenation gives, ties in chunk order. Each run's sort
    keys are spilled beside it, so the merge reads them alone; more than `FAN_IN` runs are first
    merged in groups of consecutive runs. Memory holds a record batch of at most `FAN_IN` runs
    and a block, never the table, however many chunks there were."""

    def __init__(self, folder: Path, stem: str, order: Order) -> None:
        self.folder, self.stem, self.order = folder, stem, order
        self.runs: list[tuple[Path, pa.Schema]] = []
        self.rows = 0
        self.empty: pd.DataFrame | None = None  # the columns, when every chunk was empty
        self.merges = 0

    def add(self, frame: pd.DataFrame) -> None:
        """A chunk's rows, already in `order`."""
        if self.empty is None:
            self.empty = frame.head(0)
        if not len(frame):
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        self._spill(table.schema, [table])
        self.rows += len(frame)

    def _spill(self, schema: pa.Schema, tables: Iterable[pa.Table], name: str = "") -> None:
        """A run written from `tables`, one at a time, and its keys beside it."""
        path = self.folder / (name or f"{self.stem}.{len(self.runs)}.arrow")
        keys = [c for c, _ in self.order]
        key_schema = pa.schema([schema.field(k) for k in keys])
        with (
            pa.OSFile(str(path), "wb") as sink,
            pa.ipc.new_file(sink, schema) as writer,
            pa.OSFile(str(_keys_path(path)), "wb") as key_sink,
            pa.ipc.new_file(key_sink, key_schema) as key_writer,
        ):
            for table in tables:
                writer.write_table(table.cast(schema), max_chunksize=BATCH_ROWS)
                key_writer.write_table(
                    table.select(keys).cast(key_schema), max_chunksize=BATCH_ROWS
                )
        self.runs.append((path, schema))

    def _keys(self, k: int, runs: list[tuple[Path, pa.Schema]]) -> Iterator[tuple[object, ...]]:
        """Run `k`'s sort keys row by row, with `k` last (ties go to the earlier run)."""
        with pa.OSFile(str(_keys_path(runs[k][0]))) as source:
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                keys = [_key_values(batch[name], desc) for name, desc in self.order]
                yield from zip(*keys, itertools.repeat(k, batch.num_rows), strict=True)

    def _merge(self, runs: list[tuple[Path, pa.Schema]], rows: int) -> Iterator[pa.Table]:
        merged = heapq.merge(*(self._keys(k, runs) for k in range(len(runs))))
        schema = _unified([s for _, s in runs])
        readers = [_Run(p, schema) for p, _ in runs]
        try:
            while True:
                which = np.fromiter((key[-1] for key in itertools.islice(merged, rows)), np.int64)
                if not len(which):
                    return
                # each run's rows of the block are its next ones, in its own order
                by_run = np.argsort(which, kind="stable")
                present, counts = np.unique(which, return_counts=True)
                pieces = pa.concat_tables(
                    [readers[r].take(int(n)) for r, n in zip(present, counts, strict=True)]
                )
                at = np.empty(len(which), dtype=np.int64)
                at[by_run] = np.arange(len(which))
                yield pieces.take(pa.array(at))
        finally:
            for reader in readers:
                reader.close()

    def _narrow(self) -> None:
        """At most `FAN_IN` runs: groups of consecutive runs merged into one each (their
        order among themselves is the chunks')."""
        while len(self.runs) > FAN_IN:
            runs, self.runs = self.runs, []
            self.merges += 1
            for g in range(0, len(runs), FAN_IN):
                group = runs[g : g + FAN_IN]
                if len(group) == 1:
                    self.runs.append(group[0])
                    continue
                name = f"{self.stem}.merge{self.merges}.{g // FAN_IN}.arrow"
                schema = _unified([s for _, s in group])
                self._spill(schema, self._merge(group, BLOCK_ROWS), name)
                for path, _ in group:
                    path.unlink()
                    _keys_path(path).unlink()
                release_memory()

    def blocks(self, rows: int = BLOCK_ROWS) -> Iterator[pa.Table]:
        """The rows in the merged order, `rows` at a time."""
        if not self.runs:
            return
        self._narrow()
        yield from self._merge(self.runs, rows)

    def _empty(self, rank: str | None) -> pd.DataFrame:
        """The table without rows (every chunk was empty), with its `rank` column."""
        if self.empty is None:
            raise ValueError("no client was scored")
        empty = self.empty.reset_index(drop=True)
        return empty.assign(**{rank: pd.Series(dtype="int64")}) if rank else empty

    def write(self, path: Path, rank: str | None = None) -> pd.DataFrame:
        """Every row into one Parquet file in the merged order; `rank`: a column numbering
        them from 1. Returns the first `FIRST_ROWS` rows (what a report shows)."""
        if not self.runs:
            empty = self._empty(rank)
            empty.to_parquet(path, index=False)
            return empty
        head = None
        schema = _unified([s for _, s in self.runs])
        if rank:
            schema = schema.append(pa.field(rank, pa.int64()))
        with pq.ParquetWriter(path, schema) as writer:
            done = 0
            for block in self.blocks():
                if rank:
                    numbers = np.arange(done + 1, done + len(block) + 1, dtype=np.int64)
                    block = block.append_column(rank, pa.array(numbers))
                done += len(block)
                block = block.cast(schema)
                writer.write_table(block)
                if head is None:
                    head = block.slice(0, FIRST_ROWS).to_pandas()
        release_memory()
        assert head is not None
        return head

    def frame(self, rank: str | None = None) -> pd.DataFrame:
        """Every row in memory, in the merged order (for tests and small runs)."""
        if not self.runs:
            return self._empty(rank)
        schema = _unified([s for _, s in self.runs])
        out = pa.concat_tables([b.cast(schema) for b in self.blocks()]).to_pandas()
        if rank:
            out[rank] = np.arange(1, len(out) + 1, dtype=np.int64)
        return out


class RunTables:
    """Chunk results spilled to `folder` (a scratch folder the caller owns) as they come; the
    driver of a run keeps only sums (the report's figures of the invoices and the worklist,
    segment positions, cash), so its memory does not grow with the portfolio."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.clients = SortedRuns(folder, "clients", CLIENT_ORDER)
        self.features = SortedRuns(folder, "features", CLIENT_ORDER)
        self.open_invoices = SortedRuns(folder, "invoices", INVOICE_ORDER)
        self.worklist = SortedRuns(folder, "worklist", WORKLIST_ORDER)
        self.invoices = InvoiceFigures()
        self.queues: dict[str, dict[str, float]] = {}  # per worklist queue: rows, overdue
        self.positions: pd.DataFrame | None = None  # per segment and month: summed as they come
        self.cash = empty_cash()  # per currency and draw: summed as they come
        self.letters = folder / "letters"  # one HTML file per client written to
        self.letter_index = folder / "letters.tsv"  # client, language, template per letter
        self.letter_counts: dict[str, int] = {}  # per template and language

    def add(self, chunk: ChunkResult) -> None:
        """One chunk's results (chunks may come in any client order)."""
        self.clients.add(chunk.clients.sort_values("client_id", kind="stable"))
        self.features.add(chunk.features.sort_values("client_id", kind="stable"))
        ranked = prioritise(chunk.invoices)
        self.open_invoices.add(ranked)
        if len(ranked):
            self.invoices.add(ranked)
        work = rank_worklist(chunk.worklist).drop(columns="priority_rank")
        self.worklist.add(work)
        for queue, rows in work.groupby("queue", sort=True):
            mine = self.queues.setdefault(str(queue), {"clients": 0, "overdue": 0.0})
            mine["clients"] += len(rows)
            mine["overdue"] += float(rows["overdue_amount"].sum())
        self.positions = add_positions(self.positions, chunk.positions)
        self.cash = add_cash(self.cash, chunk.cash)
        self.add_letters(chunk.letters)
        if chunk.reporting_currency:
            self.invoices.reporting = chunk.reporting_currency

    def add_letters(self, letters: pd.DataFrame) -> None:
        self.letters.mkdir(exist_ok=True)
        with self.letter_index.open("a", encoding="utf-8") as index:
            for r in letters.itertuples():
                (self.letters / letter_file(r.client_id)).write_text(str(r.html), encoding="utf-8")
                index.write(f"{r.client_id}\t{r.language}\t{r.template}\n")
                key = f"{r.template} ({r.language})"
                self.letter_counts[key] = self.letter_counts.get(key, 0) + 1

    def letters_written(self) -> dict[str, int]:
        """How many letters of each template and language."""
        return dict(sorted(self.letter_counts.items()))

    def queue_figures(self) -> dict[str, dict[str, float]]:
        """Per worklist queue, in name order: its rows and their overdue amount."""
        return dict(sorted(self.queues.items()))

    def positions_table(self) -> pd.DataFrame:
        """Every segment's monthly sales, receivables and current receivables."""
        if self.positions is None:
            raise ValueError("no client was scored")
        return self.positions

    def write_clients(self, path: Path) -> None:
        """One row per client, in client id order."""
        self.clients.write(path)

    def write_worklist(self, path: Path) -> pd.DataFrame:
        """The collections worklist of every chunk, ranked portfolio-wide; its first rows."""
        return self.worklist.write(path, rank="priority_rank")

    def write_features(self, path: Path) -> None:
        """Every client's features, in client id order."""
        self.features.write(path)

    def write_invoices(self, path: Path) -> pd.DataFrame:
        """The open invoices in the portfolio-wide collection priority, with the rank; the
        first ones."""
        return self.open_invoices.write(path, rank="collection_priority_rank")

    def result(self) -> ChunkResult:
        """The run's tables in memory, as `portfolio.batch.finish` gives them (for tests)."""
        return ChunkResult(
            self.clients.frame(),
            self.open_invoices.frame(rank="collection_priority_rank"),
            self.features.frame(),
            self.worklist.frame(rank="priority_rank"),
            self.positions_table(),
            self.cash,
            self.letter_table(),
            self.invoices.reporting or None,
        )

    def letter_table(self) -> pd.DataFrame:
        """The letters written so far, read back (for tests; a run copies the files)."""
        rows = []
        if self.letter_index.exists():
            for line in sorted(self.letter_index.read_text(encoding="utf-8").splitlines()):
                c, lang, t = line.split("\t")
                rows.append(
                    (c, lang, t, (self.letters / letter_file(c)).read_text(encoding="utf-8"))
                )
        return pd.DataFrame(rows, columns=list(LETTER_COLUMNS)).astype(LETTER_COLUMNS)


SEGMENT_KEYS = ["level", "segment", "month"]


def add_positions(total: pd.DataFrame | None, chunk: pd.DataFrame) -> pd.DataFrame:
    """Two tables of segment positions summed, in segment and month order."""
    both = chunk if total is None else pd.concat([total, chunk], ignore_index=True)
    summed = both.groupby(SEGMENT_KEYS, sort=True, observed=True).sum(numeric_only=True)
    return summed.reset_index()


CASH_WEEKS = [f"week_{w}" for w in range(1, 14)]
TOTAL = "total"  # the cash rows of every currency together, in the reporting currency


def empty_cash() -> pd.DataFrame:
    columns = {"currency": "str", "draw": "int64", **dict.fromkeys(CASH_WEEKS, "float64")}
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in columns.items()})


def add_cash(total: pd.DataFrame, chunk: pd.DataFrame) -> pd.DataFrame:
    """Two tables of weekly receipts summed per currency and draw."""
    if not len(chunk):
        return total
    both = pd.concat([total, chunk], ignore_index=True) if len(total) else chunk
    return both.groupby(["currency", "draw"], sort=True)[CASH_WEEKS].sum().reset_index()


def _unified(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for every chunk's table (a column that was all missing in one chunk has
    Arrow's null type there); pandas' metadata from the first."""
    unified = pa.unify_schemas(schemas, promote_options="permissive")
    return unified.with_metadata(schemas[0].metadata)
