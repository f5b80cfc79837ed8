"""The Spark engine: executors read, validate and score their own buckets of a partitioned ledger.

The ledger is a partitioned one (`features.partitioned`; a plain folder is partitioned first, a
streaming pass into the scratch folder). Each Spark task takes one bucket: it reads the bucket's
files from the shared path, validates them against the contract (`bucket_part`, its rejects), and
scores its clients in chunks with `score_part`, the very function the local engine calls. The
task writes each chunk's result tables and its rejects as Arrow files under the run's scratch
folder and returns a one-line summary; the driver holds only those summaries, then streams the
files into the run (`portfolio.outputs.RunTables`) bucket after bucket, chunk after chunk, in the
order the local engine adds them, so both engines write identical runs. The driver never reads the
ledger. The models travel to the executors as plain data (each bundle's JSON and model string),
never pickled, and are rebuilt once per executor process. Nothing about features or scores is
implemented twice.

On a cluster, `--master` points at it, the ledger and `--scratch` must be storage every executor
can read and write (HDFS through a mount, S3 through its Hadoop connector and a FUSE mount, NFS),
and the executors need this package installed (ship the wheel with `spark.submit.pyFiles` or bake
it into the image).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from features.contract import RATES
from features.errors import InputError
from features.io import read_layout, reporting_currency
from features.partitioned import (
    BucketRejectedError,
    bucket_part,
    partition_folder,
    shared_checks,
)
from features.pipeline import Unit, bucket_features, write_frames
from features.stream import PART_CLIENTS, LedgerPart, Shared
from portfolio.outputs import ChunkResult, RunTables
from scoring.scorer import HISTORY_COLUMNS, Scorer

PARTS = (
    "clients",
    "invoices",
    "features",
    "worklist",
    "positions",
    "cash",
    "letters",
)  # a chunk's tables, each an Arrow file

_REBUILT: dict[str, Scorer] = {}  # on an executor: each run's scorer, rebuilt once
_SHARED: dict[str, Shared] = {}  # on an executor: each ledger's shared checks, made once


def _scorer(run: str, plain: dict[str, Any]) -> Scorer:
    if run not in _REBUILT:
        _REBUILT.clear()  # one run at a time: an older run's models are garbage
        _REBUILT[run] = Scorer.from_plain(plain)
    return _REBUILT[run]


def _shared(folder: str) -> Shared:
    if folder not in _SHARED:
        _SHARED.clear()
        _SHARED[folder] = shared_checks(Path(folder))[0]
    return _SHARED[folder]


def _write_arrow(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_arrow(path: Path) -> pd.DataFrame:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all().to_pandas()


def _ipc(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _frame(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(io.BytesIO(data)).read_all().to_pandas()


POSITION = "__position"  # a rejected row's position in its original file


def _write_rejects(part: LedgerPart, where: Path) -> None:
    """A bucket's rejected rows, one Arrow file per table (`POSITION`: the row in its file)."""
    for name, frame in part.rejected.items():
        if len(frame):
            _write_arrow(
                frame.assign(**{POSITION: frame.index.to_numpy()}), where / f"rejects.{name}.arrow"
            )


def _read_rejects(where: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for path in sorted(where.glob("rejects.*.arrow")):
        frame = _read_arrow(path)
        out[path.name.split(".")[1]] = frame.set_index(POSITION).rename_axis(None)
    return out


@contextmanager
def spark_session(master: str, name: str, partitions: int) -> Iterator[Any]:
    """A Spark session for one job, stopped at the end (this Python as the workers')."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName(name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


@contextmanager
def partitioned(folder: Path, scratch: Path | None) -> Iterator[Path]:
    """The ledger as a partitioned one: itself, or a plain folder partitioned into scratch
    (a streaming pass: the driver never holds it) and removed afterwards."""
    if read_layout(folder) is not None:
        yield folder
        return
    from features.io import check_files

    work = Path(tempfile.mkdtemp(prefix="creditguard-partitioned-", dir=scratch))
    try:
        clients = check_files(folder).rows["clients"]
        buckets = max(2, -(-clients // PART_CLIENTS))
        partition_folder(folder, work / "ledger", buckets=buckets, scratch=work)
        yield work / "ledger"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reported(task: Callable[[int], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
    """A bucket's task whose wrong input (a missing file, a bucket refused by the contract) comes
    back to the driver as its message, not as a Java stack trace."""

    def run(bucket: int) -> dict[str, Any]:
        try:
            return task(bucket)
        except InputError as exc:
            return {"bucket": bucket, "error": str(exc)}

    return run


def map_buckets(
    spark: Any, buckets: int, task: Callable[[int], dict[str, Any]]
) -> list[dict[str, Any]]:
    """`task(bucket)` for every bucket (one Spark task each); their summaries, in bucket order.
    A bucket's wrong input is an `InputError` naming it (the first, by bucket)."""
    rdd = spark.sparkContext.parallelize(range(buckets), buckets)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        found = sorted(rdd.map(task).collect(), key=lambda s: s["bucket"])
    for summary in found:
        if "error" in summary:
            raise InputError(summary["error"])
    return found


def score_spark(
    ledger_dir: Path,
    scorer: Scorer,
    as_of: pd.Timestamp,
    tables: RunTables,
    *,
    previous: pd.DataFrame | None = None,
    master: str = "local[2]",
    scratch: Path | None = None,
    chunk_clients: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Score a ledger folder on Spark into `tables`, as `portfolio.batch.score_folder` does
    locally; returns the rejected rows per table (`previous`: the previous run's clients table,
    its decision PDs, broadcast to the executors). `scratch` must be shared with the
    executors."""
    from portfolio.batch import CHUNK_CLIENTS, score_part

    size = chunk_clients or CHUNK_CLIENTS
    with partitioned(ledger_dir, scratch) as folder:
        layout = read_layout(folder)
        assert layout is not None
        n = layout.buckets + 1  # and the bucket of rows that belong to no client
        out = Path(tempfile.mkdtemp(prefix="creditguard-spark-", dir=scratch))
        try:
            with spark_session(master, "creditguard-score", n) as spark:
                shared = spark.sparkContext.broadcast(scorer.to_plain())
                history = spark.sparkContext.broadcast(
                    _ipc(previous[list(HISTORY_COLUMNS)]) if previous is not None else b""
                )
                root, results, run_id = str(folder), str(out), uuid.uuid4().hex
                day = as_of

                @_reported
                def task(bucket: int) -> dict[str, Any]:
                    part = bucket_part(Path(root), bucket, _shared(root))
                    where = Path(results) / f"bucket={bucket}"
                    where.mkdir()
                    _write_rejects(part, where)
                    chunks = 0
                    if len(part.ledger.clients):
                        scored_by = _scorer(run_id, shared.value)
                        before = _frame(history.value) if history.value else None
                        for j, result in enumerate(
                            score_part(part.ledger, scored_by, day, before, size)
                        ):
                            for name, frame in zip(PARTS, result.frames(), strict=True):
                                _write_arrow(frame, where / f"{j}.{name}.arrow")
                            chunks += 1
                    return {"bucket": bucket, "chunks": chunks, "clients": len(part.ledger.clients)}

                summaries = map_buckets(spark, n, task)
                shared.unpersist()
                history.unpersist()
            rejected: dict[str, list[pd.DataFrame]] = {}
            reporting = reporting_currency(folder)
            for s in summaries:  # the executors' outputs, streamed into the run in order
                where = out / f"bucket={s['bucket']}"
                for j in range(s["chunks"]):
                    frames = [_read_arrow(where / f"{j}.{name}.arrow") for name in PARTS]
                    chunk = ChunkResult(*frames)
                    chunk.reporting_currency = reporting
                    tables.add(chunk)
                    if progress:
                        progress(len(chunk.clients))
                    for name in PARTS:
                        (where / f"{j}.{name}.arrow").unlink()
                for name, frame in _read_rejects(where).items():
                    rejected.setdefault(name, []).append(frame)
            bad_rates = shared_checks(folder)[1]  # checked by every executor, reported once
            if len(bad_rates):
                rejected[RATES] = [bad_rates]
            return {name: pd.concat(frames) for name, frames in rejected.items()}
        finally:
            shutil.rmtree(out, ignore_errors=True)


def features_spark(
    ledger_dir: Path,
    out: Path,
    *,
    unit: Unit,
    master: str = "local[2]",
    scratch: Path | None = None,
    **options: object,
) -> dict[str, float]:
    """`creditguard features --engine spark`: every bucket's feature table built by an executor
    (`features.pipeline.bucket_features`, as the local engine builds it), streamed by the driver
    into one Parquet file in bucket order; the same file as the local engine's."""
    with partitioned(ledger_dir, scratch) as folder:
        layout = read_layout(folder)
        assert layout is not None
        bad_rates = shared_checks(folder)[1]
        if len(bad_rates):
            raise BucketRejectedError(folder, layout.unowned, {RATES: bad_rates})
        results = Path(tempfile.mkdtemp(prefix="creditguard-spark-", dir=scratch))
        try:
            with spark_session(master, "creditguard-features", layout.buckets + 1) as spark:
                root, where = str(folder), str(results)

                @_reported
                def task(bucket: int) -> dict[str, Any]:
                    frame = bucket_features(Path(root), bucket, _shared(root), unit=unit, **options)
                    if frame is not None:
                        _write_arrow(frame, Path(where) / f"{bucket}.arrow")
                    return {"bucket": bucket, "built": frame is not None}

                summaries = map_buckets(spark, layout.buckets + 1, task)
            frames = (
                _read_arrow(results / f"{s['bucket']}.arrow") for s in summaries if s["built"]
            )
            return write_frames(frames, out, unit=unit)
        finally:
            shutil.rmtree(results, ignore_errors=True)
