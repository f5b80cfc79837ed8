"""The Spark engine of batch scoring: the same feature builder and scoring core, on executors.

Clients are hashed into buckets; the driver writes each bucket's whole history (all five tables)
to a scratch folder, and `mapInPandas` hands every bucket to `score_chunk`, the very function the
local engine calls. The models travel to the executors as plain data (each bundle's JSON and
model string), never pickled, and are rebuilt once per executor process. Each task returns its three result frames as Arrow IPC bytes; the driver
concatenates them with `finish`, so both engines write identical runs. Nothing about features or
scores is implemented twice.

On a cluster, `--master` points at it, `--scratch` must be storage every executor can read (a
shared mount), and the executors need this package installed (e.g. ship the wheel with
`spark.submit.pyFiles` or bake it into the image).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contract import BY_INVOICE, RATES, TABLE_NAMES, Ledger
from portfolio.batch import finish, score_chunk
from portfolio.outputs import ChunkResult
from scoring.scorer import HISTORY_COLUMNS, Scorer

PARTS = (
    "clients",
    "invoices",
    "features",
    "worklist",
    "positions",
    "cash",
    "letters",
)  # a chunk's tables, as Arrow bytes

_REBUILT: dict[str, Scorer] = {}  # on an executor: each run's scorer, rebuilt once


def _scorer(run: str, plain: dict[str, Any]) -> Scorer:
    if run not in _REBUILT:
        _REBUILT.clear()  # one run at a time: an older run's models are garbage
        _REBUILT[run] = Scorer.from_plain(plain)
    return _REBUILT[run]


def bucket_of(client_ids: pd.Series, buckets: int) -> np.ndarray:
    """A stable bucket per client (CRC-32 of the id), the same on every machine and run."""
    return np.fromiter(
        (zlib.crc32(str(c).encode()) % buckets for c in client_ids),
        dtype="int64",
        count=len(client_ids),
    )


def write_buckets(ledger: Ledger, folder: Path, buckets: int) -> None:
    """One Parquet file per (table, bucket) with whole clients' histories."""
    by_client = pd.Series(
        bucket_of(ledger.clients["client_id"], buckets), index=ledger.clients["client_id"]
    )
    inv_bucket = ledger.invoices["client_id"].map(by_client)
    by_invoice = pd.Series(inv_bucket.to_numpy(), index=ledger.invoices["invoice_id"])
    for name in TABLE_NAMES:
        frame = ledger.table(name)
        key = (
            frame["invoice_id"].map(by_invoice)
            if name in BY_INVOICE
            else frame["client_id"].map(by_client)
        )
        (folder / name).mkdir(parents=True)
        groups = frame.groupby(key.to_numpy()).indices if len(frame) else {}
        for b in range(buckets):
            rows = groups.get(b, np.array([], dtype=int))
            frame.iloc[rows].to_parquet(folder / name / f"{b}.parquet", index=False)
    ledger.fx_rates.to_parquet(folder / f"{RATES}.parquet", index=False)  # every bucket's


def read_bucket(
    folder: Path, bucket: int, extracted_on: pd.Timestamp, reporting_currency: str | None
) -> Ledger:
    tables = {n: pd.read_parquet(folder / n / f"{bucket}.parquet") for n in TABLE_NAMES}
    return Ledger(
        extracted_on=extracted_on,
        fx_rates=pd.read_parquet(folder / f"{RATES}.parquet"),
        reporting_currency=reporting_currency,
        **tables,
    )


def _ipc(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _frame(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(io.BytesIO(data)).read_all().to_pandas()


def score_spark(
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
    *,
    previous: pd.DataFrame | None = None,
    master: str = "local[2]",
    buckets: int | None = None,
    scratch: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChunkResult:
    """Score the ledger on Spark; the same tables as `score_local`. `previous`: the previous
    run's clients table (its decision PDs, broadcast to the executors)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    n = buckets or max(2, int(np.ceil(len(ledger.clients) / 2048)))
    spark = (
        SparkSession.builder.master(master)
        .appName("creditguard-score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(n))
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    folder = Path(tempfile.mkdtemp(prefix="creditguard-buckets-", dir=scratch))
    try:
        write_buckets(ledger, folder, n)
        shared = spark.sparkContext.broadcast(scorer.to_plain())
        history = spark.sparkContext.broadcast(
            _ipc(previous[list(HISTORY_COLUMNS)]) if previous is not None else b""
        )
        extracted_on, day, root, run_id = ledger.extracted_on, as_of, str(folder), uuid.uuid4().hex
        reporting = ledger.reporting_currency

        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                for b in batch["bucket"].tolist():
                    part = read_bucket(Path(root), int(b), extracted_on, reporting)
                    scored_by = _scorer(run_id, shared.value)
                    before = _frame(history.value) if history.value else None
                    result = score_chunk(part, scored_by, day, before)
                    yield pd.DataFrame(
                        {"bucket": [int(b)]}
                        | {
                            name: [_ipc(frame)]
                            for name, frame in zip(PARTS, result.frames(), strict=True)
                        }
                    )

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
            ids = spark.createDataFrame(pd.DataFrame({"bucket": np.arange(n, dtype="int64")}))
        schema = "bucket long, " + ", ".join(f"{name} binary" for name in PARTS)
        with warnings.catch_warnings():
            # pyspark 4.3 warns on pandas 3; only bucket ids and Arrow bytes cross its boundary
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
            rows = list(ids.repartition(n, "bucket").mapInPandas(run, schema).collect())
        parts = []
        for row in rows:
            parts.append(ChunkResult(*(_frame(row[name]) for name in PARTS)))
            if progress:
                progress(len(parts[-1].clients))
        shared.unpersist()
        history.unpersist()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        spark.stop()
    result = finish(parts)
    result.reporting_currency = ledger.reporting_currency
    return result
