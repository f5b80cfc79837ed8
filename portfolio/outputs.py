"""A scoring run's tables, spilled chunk by chunk and written in one streaming pass.

Holding every chunk's results until the end made a run's memory grow with the portfolio (~370 MiB
of clients, features and open invoices for 100,000 clients, twice that while concatenating).
`RunTables` keeps only the clients (one small row each) and per-invoice figures the report needs;
features are spilled in client order, and each chunk's open invoices are spilled as a run sorted
by collection priority. Writing merges the runs into one portfolio-wide ranking, a block at a
time, reading each run front to back: the order is exactly the one a stable sort of all invoices
would give (`portfolio.batch.finish`), ties kept in chunk order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from portfolio.letters import LETTER_COLUMNS, empty_letters
from scoring.collections import rank_worklist
from scoring.receivables import max_days_past_due

BATCH_ROWS = 2048  # rows per spilled record batch: what each run holds in memory while merging
BLOCK_ROWS = 65_536  # ranked invoices assembled and written at a time
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
    max_dpd: list[pd.Series] = field(default_factory=list)  # per client, one piece per chunk
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
        self.max_dpd.append(max_days_past_due(invoices))

    def currency(self) -> str:
        """The reporting currency, which every amount but the per-currency ones is in."""
        codes = list(self.by_currency)
        return self.reporting or (codes[0] if len(codes) == 1 else "")

    def days_past_due(self) -> pd.Series:
        """The largest days past due of each client with open invoices."""
        if not self.max_dpd:
            return pd.Series(dtype="int64")
        return pd.concat(self.max_dpd).groupby(level=0).max()


def _write_arrow(frame: pd.DataFrame, path: Path) -> pa.Schema:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=BATCH_ROWS)
    return table.schema


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


class RunTables:
    """Chunk results spilled to `folder` (a scratch folder the caller owns) as they come."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.clients: list[pd.DataFrame] = []
        self.features: list[tuple[Path, pa.Schema]] = []
        self.runs: list[tuple[Path, pa.Schema]] = []
        self.invoices = InvoiceFigures()
        self.no_invoices: pd.DataFrame | None = None  # the columns, for a run without any
        self.worklist: list[pd.DataFrame] = []  # one row per client and queue: small, kept
        self.positions: pd.DataFrame | None = None  # per segment and month: summed as they come
        self.cash = empty_cash()  # per currency and draw: summed as they come
        self.letters = folder / "letters"  # one HTML file per client written to
        self.letter_rows: list[tuple[str, str, str]] = []  # client, language, template

    def add(self, chunk: ChunkResult) -> None:
        """One chunk's results; chunks must come in ascending client id order."""
        clients, invoices, features = chunk.clients, chunk.invoices, chunk.features
        self.worklist.append(chunk.worklist)
        self.positions = add_positions(self.positions, chunk.positions)
        self.cash = add_cash(self.cash, chunk.cash)
        self.add_letters(chunk.letters)
        if chunk.reporting_currency:
            self.invoices.reporting = chunk.reporting_currency
        k = len(self.features)
        if self.no_invoices is None:
            self.no_invoices = invoices.head(0)
        self.clients.append(clients)
        path = self.folder / f"features.{k}.arrow"
        self.features.append((path, _write_arrow(features.sort_values("client_id"), path)))
        if len(invoices):
            ranked = prioritise(invoices)
            self.invoices.add(ranked)
            path = self.folder / f"invoices.{k}.arrow"
            self.runs.append((path, _write_arrow(ranked, path)))

    def add_letters(self, letters: pd.DataFrame) -> None:
        self.letters.mkdir(exist_ok=True)
        for r in letters.itertuples():
            (self.letters / f"{r.client_id}.html").write_text(str(r.html), encoding="utf-8")
            self.letter_rows.append((str(r.client_id), str(r.language), str(r.template)))

    def letters_written(self) -> dict[str, int]:
        """How many letters of each template and language."""
        counts: dict[str, int] = {}
        for _, language, template in self.letter_rows:
            key = f"{template} ({language})"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def positions_table(self) -> pd.DataFrame:
        """Every segment's monthly sales, receivables and current receivables."""
        if self.positions is None:
            raise ValueError("no client was scored")
        return self.positions

    def worklist_table(self) -> pd.DataFrame:
        """The collections worklist of every chunk, ranked portfolio-wide."""
        return rank_worklist(pd.concat(self.worklist, ignore_index=True))

    def client_table(self) -> pd.DataFrame:
        """One row per client, in client id order."""
        if not self.clients:
            raise ValueError("no client was scored")
        clients = pd.concat(self.clients, ignore_index=True)
        return clients.sort_values("client_id", kind="stable").reset_index(drop=True)

    def write_features(self, path: Path) -> None:
        """The spilled features into one Parquet file, chunk after chunk (already in order)."""
        schema = _unified([s for _, s in self.features])
        with pq.ParquetWriter(path, schema) as writer:
            for spilled, _ in self.features:
                with pa.OSFile(str(spilled)) as source:
                    writer.write_table(pa.ipc.open_file(source).read_all().cast(schema))

    def write_invoices(self, path: Path) -> None:
        """All runs merged into the portfolio-wide ranking, with the rank, a block at a time."""
        schemas = [s for _, s in self.runs]
        if not schemas:
            self._none_open().to_parquet(path, index=False)
            return
        schema = _unified(schemas).append(pa.field("collection_priority_rank", pa.int64()))
        with pq.ParquetWriter(path, schema) as writer:
            for block in self.ranked_blocks():
                writer.write_table(block.cast(schema))

    def ranked_blocks(self) -> Iterator[pa.Table]:
        """The open invoices in portfolio-wide priority order, with their rank, in blocks."""
        # The sort keys alone, as Arrow columns (compact strings), one record batch at a time.
        keys = []
        for k, (spilled, _) in enumerate(self.runs):
            with pa.OSFile(str(spilled)) as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)
                    keys.append(
                        pa.table(
                            {
                                "score": pc.negate(batch["collection_priority_score"]),
                                "outstanding": pc.negate(batch["outstanding"]),
                                "invoice_id": batch["invoice_id"].cast(pa.string()),
                                "run": pa.array(np.full(len(batch), k, dtype=np.int32)),
                            }
                        )
                    )
        every = pa.concat_tables(keys)
        del keys
        # The order `prioritise` gives (a stable sort of the chunks' concatenation): by the
        # keys, ties in chunk order then row order, which each run already has.
        order = pc.sort_indices(
            every,
            sort_keys=[
                ("score", "ascending"),
                ("outstanding", "ascending"),
                ("invoice_id", "ascending"),
                ("run", "ascending"),
            ],
        )
        run_of = every["run"].take(order).to_numpy()
        del every, order
        schema = _unified([s for _, s in self.runs])
        readers = [_Run(p, schema) for p, _ in self.runs]
        try:
            for start in range(0, len(run_of), BLOCK_ROWS):
                runs = run_of[start : start + BLOCK_ROWS]
                # each run's rows of the block are its next ones, in its own order
                by_run = np.argsort(runs, kind="stable")
                present, counts = np.unique(runs, return_counts=True)
                pieces = pa.concat_tables(
                    [readers[r].take(int(n)) for r, n in zip(present, counts, strict=True)]
                )
                at = np.empty(len(runs), dtype=np.int64)
                at[by_run] = np.arange(len(runs))
                block = pieces.take(pa.array(at))
                rank = np.arange(start + 1, start + len(runs) + 1, dtype=np.int64)
                yield block.append_column("collection_priority_rank", pa.array(rank))
        finally:
            for reader in readers:
                reader.close()

    def _none_open(self) -> pd.DataFrame:
        if self.no_invoices is None:
            raise ValueError("no client was scored")
        empty = prioritise(self.no_invoices)
        return empty.assign(collection_priority_rank=pd.Series(dtype="int64"))

    def result(self) -> ChunkResult:
        """The run's tables in memory, as `portfolio.batch.finish` gives them (for tests)."""
        features = [pa.OSFile(str(p)) for p, _ in self.features]
        try:
            schema = _unified([s for _, s in self.features])
            feature_table = pa.concat_tables(
                [pa.ipc.open_file(f).read_all().cast(schema) for f in features]
            )
        finally:
            for f in features:
                f.close()
        blocks = list(self.ranked_blocks()) if self.runs else []
        invoices = pa.concat_tables(blocks).to_pandas() if blocks else self._none_open()
        return ChunkResult(
            self.client_table(),
            invoices,
            feature_table.to_pandas(),
            self.worklist_table(),
            self.positions_table(),
            self.cash,
            self.letter_table(),
            self.invoices.reporting or None,
        )

    def letter_table(self) -> pd.DataFrame:
        """The letters written so far, read back (for tests; a run copies the files)."""
        rows = [
            (c, lang, t, (self.letters / f"{c}.html").read_text(encoding="utf-8"))
            for c, lang, t in sorted(self.letter_rows)
        ]
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
