"""A scoring run end to end: validate the ledger, score every client in chunks (local or Spark),
and write the run folder atomically with its report."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from features.errors import InputError
from features.io import LedgerFiles, check_files, resolve_extracted_on
from portfolio.batch import rejects_table, score_folder
from portfolio.layout import RUN_MARKER, RunsRoot, RunsRootError, check_root
from portfolio.letters import letter_file
from portfolio.outputs import CASH_WEEKS, FIRST_ROWS, TOTAL, RunTables
from portfolio.report import RunResult, build_report, render_html, report_clients
from portfolio.spark import score_spark
from scoring.dso import dso_measures
from scoring.insurance import InsurancePolicy
from scoring.policy import PolicyError
from scoring.scorer import HISTORY_COLUMNS, Scorer
from scoring.timing import forecast_frame


class RunInputError(InputError):
    """A scoring run's inputs are wrong; `option` names the command-line option at fault."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


class LedgerRejectedError(InputError):
    """Too much of a table breaks the contract for its rest to stand for the portfolio."""


MAX_REJECT_SHARE = 0.05  # per table: rejected rows over rows read


def run_scoring(
    ledger_dir: Path,
    as_of: pd.Timestamp | None,
    out: Path,
    *,
    engine: str = "local",
    master: str = "local[2]",
    previous: Path | None = None,
    history: bool = True,
    max_reject_share: float = MAX_REJECT_SHARE,
    scratch: Path | None = None,
    progress: bool = True,
    scorer: Scorer | None = None,
    insurance: Path | None = None,
    locked: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Score every client and open invoice of a ledger folder and publish the run under the runs
    root `out` (`portfolio.layout`); returns the run's folder and the report's figures.

    Everything that can be checked is checked before the models are loaded: the runs root (a
    writable folder, no other run writing to it), the previous run, every file of the ledger
    (`features.io.check_files`). A table with more than `max_reject_share` of its rows breaking
    the contract stops the run before anything is published. `previous`: the run to continue
    (default, with `history`: the latest earlier run under `out`). `scorer`: the champions, when
    the caller has them loaded already; `insurance`: a credit insurance policy file instead of
    the shipped one (`scoring.insurance`); `locked`: the caller holds the runs root's lock (the
    nightly job, for all of its work)."""
    try:
        check_root(out)
    except RunsRootError as exc:
        raise RunInputError("--out", str(exc)) from None
    policy = None
    if insurance is not None:
        try:
            policy = InsurancePolicy.load(insurance)
        except PolicyError as exc:
            raise RunInputError("--insurance", str(exc)) from None
    if previous is not None and not (previous / RUN_MARKER).exists():
        raise RunInputError("--previous", f"{previous} is not a scoring run")
    files = check_files(ledger_dir)
    extracted_on = files.extracted_on or resolve_extracted_on(ledger_dir, None)
    day = pd.Timestamp(as_of) if as_of is not None else extracted_on + pd.Timedelta(days=1)
    if day > extracted_on + pd.Timedelta(days=1):
        raise RunInputError(
            "--as-of", f"{day.date()} is after the ledger's data ({extracted_on.date()})"
        )
    root = RunsRoot(out)
    try:
        root.check_day(day)
    except RunsRootError as exc:
        raise RunInputError("--out", str(exc)) from None
    with contextlib.nullcontext() if locked else root.lock():
        if previous is None and history:
            previous = root.before(day)
        scorer = scorer or Scorer.from_registry()
        if policy is not None:
            scorer = replace(scorer, insurance=policy)
        before = read_clients(previous) if previous is not None else None
        # Chunk results are spilled here as they come, and merged into the run when it is written.
        with (
            tempfile.TemporaryDirectory(prefix="creditguard-run-", dir=scratch) as spill,
            tqdm(
                total=files.rows["clients"],
                desc=f"score ({engine})",
                unit="client",
                disable=not progress,
            ) as bar,
        ):
            tables = RunTables(Path(spill))
            if engine == "spark":
                # Executors read and validate their buckets; the driver never holds the ledger.
                rejects = rejects_table(
                    {
                        name: [frame]
                        for name, frame in score_spark(
                            ledger_dir,
                            scorer,
                            day,
                            tables,
                            previous=before,
                            master=master,
                            scratch=scratch,
                            progress=bar.update,  # type: ignore[arg-type]
                        ).items()
                    }
                )
            else:
                # The ledger is read and validated a part of the clients at a time, never whole.
                rejects = score_folder(
                    ledger_dir,
                    scorer,
                    day,
                    tables,
                    previous=before,
                    scratch=scratch,
                    progress=bar.update,  # type: ignore[arg-type]
                )
            check_rejects(rejects, files.rows, max_reject_share, ledger_dir)
            with root.publish(day) as folder:
                figures = write_run(
                    tables,
                    rejects,
                    day,
                    scorer,
                    folder,
                    previous=previous,
                    previous_clients=before,
                    ledger=ledger_stamp(files, extracted_on),
                )
    return root.path(day), figures


STAMPED = ("clients", "invoices", "payments", "instalments", "financials", "insolvencies")


def ledger_stamp(files: LedgerFiles, extracted_on: pd.Timestamp) -> dict[str, Any]:
    """What a run records of the ledger it scored: the extraction and its tables' row counts
    (not the action log's, which grows between runs). The service takes a run's features for
    its ledger only when they agree (`serving.offline`)."""
    return {
        "folder": str(files.folder.absolute()),
        "extracted_on": str(extracted_on.date()),
        "rows": {name: files.rows[name] for name in STAMPED if name in files.rows},
    }


def scored_ledger(run: Path, files: LedgerFiles, extracted_on: pd.Timestamp) -> bool:
    """Whether `run` scored this ledger: the same folder (a nightly extraction replaces it in
    place: the run is that night's record), or a copy of the same extraction and tables
    (`ledger_stamp`)."""
    recorded = json.loads((run / "run.json").read_text()).get("ledger")
    if not recorded:
        return False
    mine = ledger_stamp(files, extracted_on)
    if Path(recorded.get("folder", "")).resolve() == Path(mine["folder"]).resolve():
        return True
    return bool(
        recorded.get("extracted_on") == mine["extracted_on"]
        and recorded.get("rows") == mine["rows"]
    )


def check_rejects(
    rejects: pd.DataFrame, rows: dict[str, int], limit: float, ledger_dir: Path
) -> None:
    """Refuse a run in which a table lost more than `limit` of its rows to the contract, naming
    the table, the share and its most common broken rules."""
    for name, read in rows.items():
        bad = rejects[rejects["table"] == name]
        if not read or len(bad) / read <= limit:
            continue
        rules = (
            bad["reasons"]
            .str.split("; ")
            .explode()
            # "column rule (value)": the rule without its value, which may hold parentheses
            # itself (one rule a date otherwise); a rule's own parenthesis goes with it
            .str.replace(r" \(.*$", "", regex=True)
            .value_counts()
            .head(3)
        )
        common = "; ".join(f"{rule} ({n:,} rows)" for rule, n in rules.items())
        raise LedgerRejectedError(
            f"{name}: {len(bad):,} of {read:,} rows ({len(bad) / read:.1%}) break the data "
            f"contract, more than the {limit:.0%} a run accepts (--max-reject-share); nothing "
            f"was published. Most common: {common}. Every violation: creditguard validate "
            f"{ledger_dir}"
        )


def read_clients(run: Path) -> pd.DataFrame:
    """What a run continues of the previous run's clients table: the decision PD's history and
    the columns its report compares (`portfolio.report.REPORT_COLUMNS`), not the text."""
    return report_clients(run / "clients.parquet", HISTORY_COLUMNS)


def write_run(
    tables: RunTables,
    rejects: pd.DataFrame,
    as_of: pd.Timestamp,
    scorer: Scorer,
    tmp: Path,
    *,
    previous: Path | None = None,
    previous_clients: pd.DataFrame | None = None,
    ledger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a run's files into the folder `tmp` (the caller publishes it), the invoices ranked
    portfolio-wide a block at a time; returns the report's figures. `ledger`: what the run
    records of the ledger it scored (`ledger_stamp`)."""
    versions = dict(scorer.versions)
    tables.write_clients(tmp / "clients.parquet")
    work = tables.write_worklist(tmp / "collections.parquet")
    tables.write_features(tmp / "features.parquet")
    first = tables.write_invoices(tmp / "invoices.parquet")
    rejects.to_parquet(tmp / "rejects.parquet", index=False)
    dso = dso_measures(tables.positions_table(), by=["level", "segment"])
    dso.to_parquet(tmp / "dso.parquet", index=False)
    cash = cash_forecast(tables.cash, as_of, tables.invoices.currency())
    if tables.letters.exists():  # one HTML file per client written to
        shutil.copytree(tables.letters, tmp / "letters")
    cash.to_parquet(tmp / "cash_forecast.parquet", index=False)
    # the report reads the columns it needs of the written clients table, never the whole
    clients = report_clients(tmp / "clients.parquet")
    result = RunResult(
        clients,
        tables.invoices,
        tables.queue_figures(),
        rejects,
        as_of,
        versions,
        dso,
        cash,
        scorer.insurance,
    )
    figures = build_report(result, previous_clients, scorer.policy)
    figures["letters"] = tables.letters_written()
    run = {
        "as_of": str(as_of.date()),
        "model_versions": versions,
        "clients": len(clients),
        "open_invoices": tables.invoices.count,
        "rejected_rows": len(rejects),
        "previous": str(previous.absolute()) if previous else None,
        "ledger": ledger,
    }
    (tmp / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (tmp / "report.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    (tmp / "report.html").write_text(report_page(tmp, figures, first, work))
    return figures


def report_page(run: Path, figures: dict[str, Any], first: pd.DataFrame, work: pd.DataFrame) -> str:
    """A run's report.html: its figures, first open invoices and first worklist rows, each
    worklist row linking to the client's letter when the run wrote one."""
    written = {c for c in work["client_id"] if (run / "letters" / letter_file(c)).exists()}
    return render_html(figures, first, work, letters=written)


def cash_forecast(cash: pd.DataFrame, as_of: pd.Timestamp, reporting: str) -> pd.DataFrame:
    """The run's cash_forecast.parquet: per currency (in it) and for all currencies (`TOTAL`, in
    the reporting currency) and week, expected receipts and the 80 % interval of the
    simulations (`scoring.timing`); empty without a timing model."""
    expected, simulated = {}, {}
    for currency, rows in cash.groupby("currency", sort=True):
        weeks = rows.sort_values("draw")[CASH_WEEKS].to_numpy(dtype="float64")
        expected[str(currency)], simulated[str(currency)] = weeks[0], weeks[1:]
    return forecast_frame(expected, simulated, as_of, {TOTAL: reporting})


def first_invoices(run: Path, rows: int = FIRST_ROWS) -> pd.DataFrame:
    """The first open invoices of a run by collection priority (its file is in that order)."""
    return first_rows(run / "invoices.parquet", rows)


def first_rows(path: Path, rows: int = FIRST_ROWS) -> pd.DataFrame:
    """The first rows of a Parquet file (a ranked table's head), read alone."""
    source = pq.ParquetFile(path)
    batch = next(source.iter_batches(batch_size=rows), None)
    return batch.to_pandas() if batch is not None else source.schema_arrow.empty_table().to_pandas()
