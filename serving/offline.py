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
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.io import atomic_file
from portfolio.runs import RunHistory
from scoring.scorer import ClientRows, History, Scorer

BATCH_ROWS = 4096  # clients prepared and written at a time while building
FORMAT = 2  # the store's layout version: part of its key
HISTORY = ("decision_pd", "grade", "max_days_past_due", "days_since")


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


def _layout(rows: ClientRows) -> dict[str, object]:
    """Where each field lives in a stored row: the numbers (the matrix, then the numeric standing
    and the history) side by side in one float64 row, the text in one JSON object per client.
    Row-major, so a request reads a page or two of the map, not one page per column."""
    numeric = [k for k, v in rows.standing.items() if v.dtype.kind in "fiub"]
    return {
        "width": int(rows.x_late.shape[1]),
        "default_width": int(rows.x_default.shape[1]),
        "late_columns": rows.late_columns.tolist(),
        "numeric": numeric,
        "numeric_dtypes": {k: rows.standing[k].dtype.str for k in numeric},
        "text": [k for k in rows.standing if k not in numeric],
        "unicode": [  # text `prepare` gives as numpy strings (not objects): restored as such
            k
            for k, v in {"status": rows.status, "status_reason": rows.status_reason}.items()
            if v.dtype.kind == "U"
        ]
        + [k for k, v in rows.standing.items() if k not in numeric and v.dtype.kind == "U"],
        "labels": list(rows.labels),
        "as_of_dtype": np.asarray(rows.as_of).dtype.str,
    }


def _columns(rows: ClientRows, history: History, layout: dict[str, object]) -> dict[str, pa.Array]:
    """One prepared batch as the store's three columns."""
    numeric = [np.asarray(rows.standing[k], dtype="float64") for k in layout["numeric"]]  # type: ignore[attr-defined]
    numbers = np.column_stack(
        [
            rows.x_late,
            *numeric,
            *(np.asarray(getattr(history, h), dtype="float64") for h in HISTORY),
        ]
    )
    texts = [
        json.dumps(
            {
                "status": _plain(rows.status[i]),
                "status_reason": _plain(rows.status_reason[i]),
                "standing": {k: _plain(rows.standing[k][i]) for k in layout["text"]},  # type: ignore[attr-defined]
                "labels": {k: _plain(v[i]) for k, v in rows.labels.items()},
            }
        )
        for i in range(len(rows))
    ]
    return {
        "client_id": pa.array(rows.client_id, pa.string()),
        "numbers": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(numbers, dtype="float64").ravel()), numbers.shape[1]
        ),
        "text": pa.array(texts, pa.string()),
    }


def _plain(value: object) -> object:
    """A value as JSON holds it (NaN as JSON's NaN, None as null: each comes back as given)."""
    return value.item() if isinstance(value, np.generic) else value


def build(run: Path, scorer: Scorer, history: RunHistory, path: Path) -> None:
    """Prepare a run's features for `scorer` into the store file `path` (atomically), a batch
    of clients at a time."""
    source = pq.ParquetFile(run / "features.parquet")
    with atomic_file(path) as tmp:
        writer: pa.ipc.RecordBatchFileWriter | None = None
        layout: dict[str, object] = {}
        meta: dict[bytes, bytes] = {}
        try:
            for batch in source.iter_batches(batch_size=BATCH_ROWS):
                frame = pa.Table.from_batches([batch]).to_pandas()
                rows = scorer.prepare(frame)
                day = pd.Timestamp(frame["as_of"].iloc[0])
                before = History.of(history.before(day), rows.client_id, rows.as_of)
                if writer is None:
                    layout = _layout(rows)
                table = pa.table(_columns(rows, before, layout))
                if writer is None:
                    meta = {b"layout": json.dumps(layout).encode()}
                    writer = pa.ipc.new_file(str(tmp), table.schema.with_metadata(meta))
                writer.write_table(table.replace_schema_metadata(meta))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # a run without clients: an empty store
            pa.ipc.new_file(str(tmp), pa.schema([("client_id", pa.string())])).close()


def build_apart(run: Path, scorer: Scorer, history: RunHistory, path: Path) -> None:
    """`build` in a child process: preparing 100,000 clients' rows takes ~100 MiB that a worker
    would otherwise keep as its peak for as long as it lives. The champions cross as plain data
    (their JSON and model strings, in a scratch file), the runs as their folders."""
    with tempfile.TemporaryDirectory(prefix="creditguard-store-") as tmp:
        plain = Path(tmp) / "champions.json"
        plain.write_text(json.dumps(scorer.to_plain()))
        runs = Path(tmp) / "runs.json"
        runs.write_text(json.dumps({str(k.date()): str(v) for k, v in history.runs.items()}))
        done = subprocess.run(
            [sys.executable, "-m", "serving.offline", str(run), str(plain), str(runs), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"building the offline store failed:\n{done.stderr[-3000:]}")


def _main(argv: list[str]) -> None:
    run, plain, runs, path = argv
    scorer = Scorer.from_plain(json.loads(Path(plain).read_text()))
    dated = {pd.Timestamp(k): Path(v) for k, v in json.loads(Path(runs).read_text()).items()}
    build(Path(run), scorer, RunHistory(dated), Path(path))


class OfflineStore:
    """A run's prepared client rows, memory-mapped; `take` reads rows as the scoring core
    wants them."""

    def __init__(self, path: Path, day: pd.Timestamp) -> None:
        self.path = path
        self.day = day
        # The file is mapped only to find where each record batch's buffers lie; rows are then
        # read with pread, so that reading them maps no page into the worker: a mapped page
        # counts in its RSS, and the kernel maps a read page's neighbours with it (1,000 random
        # rows of 100,000 clients made 120 MiB of the file resident).
        self.source = pa.memory_map(str(path))
        table = pa.ipc.open_file(self.source).read_all()
        meta = table.schema.metadata or {}
        # client id -> row, and row -> id: the only per-client Python objects a worker holds
        self.ids: list[str] = table["client_id"].to_pylist()
        self.index = {c: i for i, c in enumerate(self.ids)}
        self.empty = table.num_rows == 0 or b"layout" not in meta
        self.fd = os.open(path, os.O_RDONLY)
        if self.empty:
            return
        self.layout = json.loads(meta[b"layout"])
        self.late_columns = np.array(self.layout["late_columns"], dtype="int64")
        self.as_of_dtype = np.dtype(self.layout["as_of_dtype"])
        self.unicode = set(self.layout["unicode"])
        base = _map_address(self.source)
        numbers, texts = table["numbers"].chunks, table["text"].chunks
        self.starts = np.cumsum([0] + [len(c) for c in numbers])[:-1]
        self.row_width = numbers[0].type.list_size
        # per record batch: the file offset of its first row's numbers, of its text offsets and
        # of its text bytes
        self.number_at = [
            c.values.buffers()[1].address - base + 8 * (c.values.offset + c.offset * self.row_width)
            for c in numbers
        ]
        self.text_offsets_at = [c.buffers()[1].address - base + 4 * c.offset for c in texts]
        self.text_at = [c.buffers()[2].address - base for c in texts]

    def _numbers(self, chunk: int, i: int) -> np.ndarray:
        size = 8 * self.row_width
        raw = os.pread(self.fd, size, self.number_at[chunk] + i * size)
        return np.frombuffer(raw, dtype="float64")

    def _text(self, chunk: int, i: int) -> str:
        start, end = np.frombuffer(
            os.pread(self.fd, 8, self.text_offsets_at[chunk] + 4 * i), dtype="int32"
        )
        return os.pread(self.fd, int(end - start), self.text_at[chunk] + int(start)).decode()

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
                    build_apart(run, scorer, history, path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return cls(path, day)

    def rows_of(self, client_ids: list[str], day: pd.Timestamp) -> list[int] | None:
        """Positions of these clients' rows on `day` (sorted), when the store holds every one
        of them on that day; None otherwise (the online path answers)."""
        if day != self.day or self.empty:
            return None
        found = [self.index.get(c) for c in client_ids]
        at = [i for i in found if i is not None]
        return sorted(at) if len(at) == len(found) else None

    def take(self, at: list[int]) -> tuple[ClientRows, History]:
        where = np.asarray(at, dtype=np.intp)
        chunk = np.searchsorted(self.starts, where, side="right") - 1
        local = where - self.starts[chunk]
        pairs = list(zip(chunk.tolist(), local.tolist(), strict=True))
        numbers = np.stack([self._numbers(c, i) for c, i in pairs])
        texts = [json.loads(self._text(c, i)) for c, i in pairs]
        layout = self.layout
        width = int(layout["width"])
        x = np.ascontiguousarray(numbers[:, :width])
        at_col = width
        standing: dict[str, np.ndarray] = {}
        for name in layout["numeric"]:
            standing[name] = numbers[:, at_col].astype(layout["numeric_dtypes"][name])
            at_col += 1
        history = History(
            *(
                numbers[:, at_col + j].astype("int64" if h == "grade" else "float64")
                for j, h in enumerate(HISTORY)
            )
        )

        def text(values: list[object], name: str) -> np.ndarray:
            return np.array(values, dtype=str if name in self.unicode else object)

        for name in layout["text"]:
            standing[name] = text([t["standing"][name] for t in texts], name)
        labels = {
            name: np.array([t["labels"][name] for t in texts], dtype=object)
            for name in layout["labels"]
        }
        rows = ClientRows(
            client_id=np.array([self.ids[i] for i in where.tolist()], dtype=object),
            as_of=np.full(len(where), np.datetime64(self.day), dtype=self.as_of_dtype),
            x_default=x[:, : int(layout["default_width"])],
            x_late=x,
            late_columns=self.late_columns,
            status=text([t["status"] for t in texts], "status"),
            status_reason=text([t["status_reason"] for t in texts], "status_reason"),
            standing=standing,
            labels=labels,
        )
        return rows, history

    def close(self) -> None:
        os.close(self.fd)
        self.source.close()


def prepare(run: Path, runs: Path, cache: Path) -> Path | None:
    """A run's store for the current champions, built now if no worker has (the nightly job
    calls it, so that no worker builds it at its start); its file (None: no features)."""
    store = OfflineStore.open(run, Scorer.from_registry(), RunHistory.load(runs), cache / "offline")
    if store is None:
        return None
    store.close()
    return store.path


def _map_address(source: pa.MemoryMappedFile) -> int:
    """The address the file is mapped at: buffers read from it point into the map."""
    source.seek(0)
    address = int(source.read_buffer(1).address)
    source.seek(0)
    return address


if __name__ == "__main__":
    _main(sys.argv[1:])
