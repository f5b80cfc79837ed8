"""A scoring run end to end: validate the ledger, score every client in chunks (local or Spark),
and write the run folder atomically with its report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from features.io import atomic_directory, resolve_extracted_on
from features.stream import count_rows
from portfolio.batch import load_for_scoring, score_folder
from portfolio.outputs import FIRST_ROWS, RunTables
from portfolio.report import RunResult, build_report, render_html
from portfolio.spark import score_spark
from scoring.scorer import Scorer


class RunInputError(ValueError):
    """A scoring run's inputs are wrong; `option` names the command-line option at fault."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def run_scoring(
    ledger_dir: Path,
    as_of: pd.Timestamp | None,
    out: Path,
    *,
    engine: str = "local",
    master: str = "local[2]",
    previous: Path | None = None,
    scratch: Path | None = None,
    progress: bool = True,
    scorer: Scorer | None = None,
) -> dict[str, Any]:
    """Validate (rejecting bad rows), score every client and open invoice, write the run; returns
    the report's figures. `scorer`: the champions, when the caller has them loaded already."""
    if previous is not None and not (previous / "clients.parquet").exists():
        raise RunInputError("--previous", f"{previous} is not a scoring run")
    if not ledger_dir.is_dir():
        raise RunInputError("--ledger", f"{ledger_dir} is not a ledger folder")
    extracted_on = resolve_extracted_on(ledger_dir, None)
    day = pd.Timestamp(as_of) if as_of is not None else extracted_on + pd.Timedelta(days=1)
    if day > extracted_on + pd.Timedelta(days=1):
        raise RunInputError(
            "--as-of", f"{day.date()} is after the ledger's data ({extracted_on.date()})"
        )
    scorer = scorer or Scorer.from_registry()
    history = read_clients(previous) if previous is not None else None
    total = count_rows(ledger_dir, "clients")
    # Chunk results are spilled here as they come, and merged into the run when it is written.
    with (
        tempfile.TemporaryDirectory(prefix="creditguard-run-", dir=scratch) as spill,
        tqdm(total=total, desc=f"score ({engine})", unit="client", disable=not progress) as bar,
    ):
        tables = RunTables(Path(spill))
        if engine == "spark":
            ledger, rejects = load_for_scoring(ledger_dir)
            result = score_spark(
                ledger,
                scorer,
                day,
                previous=history,
                master=master,
                scratch=scratch,
                progress=bar.update,  # type: ignore[arg-type]
            )
            ranked = ["collection_priority_score", "collection_priority_rank"]
            result.invoices = result.invoices.drop(columns=ranked)
            result.worklist = result.worklist.drop(columns=["priority_rank"])
            tables.add(result)
        else:
            # The ledger is read and validated a part of the clients at a time, never whole.
            rejects = score_folder(
                ledger_dir,
                scorer,
                day,
                tables,
                previous=history,
                scratch=scratch,
                progress=bar.update,  # type: ignore[arg-type]
            )
        return write_run(
            tables, rejects, day, scorer, out, previous=previous, previous_clients=history
        )


def read_clients(run: Path) -> pd.DataFrame:
    """A run's clients table."""
    return pd.read_parquet(run / "clients.parquet")


def write_run(
    tables: RunTables,
    rejects: pd.DataFrame,
    as_of: pd.Timestamp,
    scorer: Scorer,
    out: Path,
    *,
    previous: Path | None = None,
    previous_clients: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write the run folder atomically (a crash leaves the previous run intact), the invoices
    ranked portfolio-wide a block at a time; returns the report's figures."""
    versions = dict(scorer.versions)
    with atomic_directory(out) as tmp:
        clients = tables.client_table()
        clients.to_parquet(tmp / "clients.parquet", index=False)
        worklist = tables.worklist_table()
        worklist.to_parquet(tmp / "collections.parquet", index=False)
        tables.write_features(tmp / "features.parquet")
        tables.write_invoices(tmp / "invoices.parquet")
        rejects.to_parquet(tmp / "rejects.parquet", index=False)
        first = first_invoices(tmp)
        result = RunResult(clients, tables.invoices, worklist, rejects, as_of, versions)
        figures = build_report(result, previous_clients, scorer.policy)
        run = {
            "as_of": str(as_of.date()),
            "model_versions": versions,
            "clients": len(clients),
            "open_invoices": tables.invoices.count,
            "rejected_rows": len(rejects),
            "previous": str(previous) if previous else None,
        }
        (tmp / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        (tmp / "report.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
        (tmp / "report.html").write_text(render_html(figures, first, worklist))
    return figures


def first_invoices(run: Path, rows: int = FIRST_ROWS) -> pd.DataFrame:
    """The first open invoices of a run by collection priority (its file is in that order)."""
    source = pq.ParquetFile(run / "invoices.parquet")
    batch = next(source.iter_batches(batch_size=rows), None)
    return batch.to_pandas() if batch is not None else source.schema_arrow.empty_table().to_pandas()
