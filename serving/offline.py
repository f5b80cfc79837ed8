"""The nightly run as the service's offline store: its clients' features, prepared once, read by row.

A scoring run writes every client's features on its day (`features.parquet`). The service
prepares them for its champions (`Scorer.prepare`, with each client's history from the run
before) into one uncompressed Arrow IPC file under its cache, written once per run and champion
versions by whichever worker comes first (the others wait on a lock and map the same file). A
worker memory-maps the file: a request for a client on the run's day reads its row (the matrix
row, a few strings) from the map, so a worker's memory does not grow with the portfolio, and the
answer is the one the run's features give, computed as before.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.io import atomic_file
from portfolio.runs import RunHistory
from scoring.scorer import ClientRows, History, Scorer

BATCH_ROWS = 4096  # clients prepared and written at a time while building
FORMAT = 1  # the store's layout version: part of its key


def _key(run: Path, scorer: Scorer) -> str:
    features = run / "features.parquet"
    stat = features.stat()
    parts = [
        str(FORMAT),
        str(run.resolve()),
        f"{stat.st_size}:{stat.st_mtime_ns}",
        json.dumps(scorer.versions, sort_keys=True, default=str),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _columns(rows: ClientRows, history: History) -> dict[str, pa.Array]:
    """One prepared batch as Arrow columns (the matrix as one fixed-size list per client)."""
    n, k = rows.x_late.shape
    out: dict[str, pa.Array] = {
        "client_id": pa.array(rows.client_id, pa.string()),
        "as_of": pa.array(pd.DatetimeIndex(rows.as_of).to_numpy()),
        "x": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(rows.x_late, dtype="float64").ravel()), k
        ),
        "status": pa.array(rows.status, pa.string(), from_pandas=True),
        "status_reason": pa.array(rows.status_reason, pa.string(), from_pandas=True),
    }
    for name, values in rows.standing.items():
        out[f"standing.{name}"] = pa.array(values, from_pandas=values.dtype == object)
    for name, values in rows.labels.items():
        out[f"label.{name}"] = pa.array(
            [None if _missing(v) else str(v) for v in values], pa.string()
        )
    for name in ("decision_pd", "grade", "max_days_past_due", "days_since"):
        out[f"history.{name}"] = pa.array(getattr(history, name))
    assert all(len(a) == n for a in out.values())
    return out


def _unicode(rows: ClientRows) -> list[str]:
    """The text columns `prepare` gives as numpy strings (not objects): restored as such."""
    named = {"status": rows.status, "status_reason": rows.status_reason} | {
        f"standing.{k}": v for k, v in rows.standing.items()
    }
    return [name for name, values in named.items() if values.dtype.kind == "U"]


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def build(run: Path, scorer: Scorer, history: RunHistory, path: Path) -> None:
    """Prepare a run's features for `scorer` into the store file `path` (atomically), a batch
    of clients at a time."""
    source = pq.ParquetFile(run / "features.parquet")
    meta: dict[bytes, bytes] = {}
    with atomic_file(path) as tmp:
        writer: pa.ipc.RecordBatchFileWriter | None = None
        try:
            for batch in source.iter_batches(batch_size=BATCH_ROWS):
                frame = pa.Table.from_batches([batch]).to_pandas()
                rows = scorer.prepare(frame)
                before = History.of(
                    history.before(pd.Timestamp(frame["as_of"].iloc[0])), rows.client_id, rows.as_of
                )
                table = pa.table(_columns(rows, before))
                if writer is None:
                    meta = {
                        b"late_columns": json.dumps(rows.late_columns.tolist()).encode(),
                        b"default_width": str(rows.x_default.shape[1]).encode(),
                        b"unicode": json.dumps(_unicode(rows)).encode(),
                    }
                    writer = pa.ipc.new_file(str(tmp), table.schema.with_metadata(meta))
                writer.write_table(table.replace_schema_metadata(meta))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # a run without clients: an empty store
            pa.ipc.new_file(str(tmp), pa.schema([("client_id", pa.string())])).close()


class OfflineStore:
    """A run's prepared client rows, memory-mapped; `take` reads rows as the scoring core
    wants them."""

    def __init__(self, path: Path, day: pd.Timestamp) -> None:
        self.path = path
        self.day = day
        self.source = pa.memory_map(str(path))
        self.table = pa.ipc.open_file(self.source).read_all()
        meta = self.table.schema.metadata or {}
        self.empty = self.table.num_rows == 0 or b"late_columns" not in meta
        # client id -> row: the only per-client Python objects a worker holds
        self.index = {c: i for i, c in enumerate(self.table["client_id"].to_pylist())}
        if self.empty:
            return
        self.late_columns = np.array(json.loads(meta[b"late_columns"]), dtype="int64")
        self.width = int(meta[b"default_width"])
        self.unicode = set(json.loads(meta[b"unicode"]))
        columns = self.table.column_names
        self.labels = {c.removeprefix("label."): c for c in columns if c.startswith("label.")}
        self.standing = {
            c.removeprefix("standing."): c for c in columns if c.startswith("standing.")
        }
        # numbers and the matrix as views of the map, one per record batch (never combined:
        # that would copy them into the worker's memory)
        self.starts = np.cumsum([0] + [len(c) for c in self.table["x"].chunks])[:-1]
        self.x = [
            c.values.to_numpy(zero_copy_only=True).reshape(len(c), c.type.list_size)
            for c in self.table["x"].chunks
        ]
        self.numbers = {
            field.name: [c.to_numpy(zero_copy_only=True) for c in self.table[field.name].chunks]
            for field in self.table.schema
            if pa.types.is_floating(field.type) or pa.types.is_integer(field.type)
        }

    @classmethod
    def open(
        cls, run: Path, scorer: Scorer, history: RunHistory, cache: Path
    ) -> OfflineStore | None:
        """The store of a run for these champions, built first if no worker has (None: the run
        has no features table)."""
        if not (run / "features.parquet").exists():
            return None
        day = pd.Timestamp(json.loads((run / "run.json").read_text())["as_of"])
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"offline-{_key(run, scorer)}.arrow"
        with open(cache / f".{path.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not path.exists():
                    build(run, scorer, history, path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return cls(path, day)

    def rows_of(self, client_ids: list[str], day: pd.Timestamp) -> list[int] | None:
        """Positions of these clients' rows on `day` (sorted), when the store holds every one
        of them on that day; None otherwise (the online path answers)."""
        if day != self.day or self.empty:
            return None
        at = [self.index.get(c) for c in client_ids]
        if any(i is None for i in at):
            return None
        return sorted(at)  # type: ignore[type-var]

    def take(self, at: list[int]) -> tuple[ClientRows, History]:
        where = np.asarray(at, dtype=np.intp)
        chunk = np.searchsorted(self.starts, where, side="right") - 1
        local = where - self.starts[chunk]
        picked = pa.array(where)

        one = chunk[0] if len(chunk) and (chunk == chunk[0]).all() else None

        def rows_of(views: list[np.ndarray]) -> np.ndarray:
            if one is not None:  # a request's clients in one batch (one client: always)
                return views[one][local]
            return np.stack([views[c][i] for c, i in zip(chunk, local, strict=True)])

        def text(name: str) -> np.ndarray:
            chunks = self.table[name].chunks
            values = [chunks[c][i].as_py() for c, i in zip(chunk, local, strict=True)]
            return np.array(values, dtype=str if name in self.unicode else object)

        x = rows_of(self.x)
        labels = {}
        for name, column in self.labels.items():
            values = text(column)
            values[pd.isna(values)] = np.nan  # as `prepare` gives a missing label
            labels[name] = values
        standing = {
            name: rows_of(self.numbers[column]) if column in self.numbers else text(column)
            for name, column in self.standing.items()
        }
        rows = ClientRows(
            client_id=text("client_id"),
            as_of=self.table["as_of"].take(picked).to_numpy(),
            x_default=x[:, : self.width],
            x_late=x,
            late_columns=self.late_columns,
            status=text("status"),
            status_reason=text("status_reason"),
            standing=standing,
            labels=labels,
        )
        history = History(
            *(
                rows_of(self.numbers[f"history.{name}"])
                for name in ("decision_pd", "grade", "max_days_past_due", "days_since")
            )
        )
        return rows, history

    def close(self) -> None:
        self.source.close()
