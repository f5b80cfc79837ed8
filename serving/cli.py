"""The `creditguard` command line: one thin command per library function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="creditguard: payment-behaviour features, default models, explained scores and limits.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

DEMO_DIR = Path("data/demo")


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option(help="Folder to write the ledger into (replaced atomically).")
    ],
    clients: Annotated[int, typer.Option(min=1, help="Number of clients.")] = 2000,
    months: Annotated[
        int, typer.Option(min=1, max=240, help="Months of history to simulate.")
    ] = 36,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives identical files.")
    ] = 42,
    start: Annotated[
        str, typer.Option(help="First month of the ledger (YYYY-MM-DD).")
    ] = "2023-01-01",
) -> None:
    """Generate a synthetic receivables ledger (the embedded default data)."""
    from features.synthetic import GeneratorConfig, generate_ledger

    cfg = GeneratorConfig(clients=clients, months=months, seed=seed, start=start)
    counts = generate_ledger(cfg, out)
    console.print(
        f"wrote {out}: "
        + ", ".join(f"{n:,} {name}" for name, n in counts.items())
        + f"; extracted on {cfg.extracted_on.date()}"
    )


@app.command()
def validate(
    ledger: Annotated[Path, typer.Argument(help="Ledger folder of CSV or Parquet tables.")],
    extracted_on: Annotated[
        str | None,
        typer.Option(help="Extraction date (YYYY-MM-DD); read from manifest.json when absent."),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Write offending rows with their reasons to DIR/rejects, all violations to "
            "DIR/violations.csv and the valid rest as a ledger to DIR/ledger."
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write every violation to this CSV file.")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="How many single violations to print.")] = 20,
) -> None:
    """Check a ledger against the data contract; exit 2 when any rule is broken."""
    from features.contract import split_quarantine
    from features.io import atomic_directory, atomic_file, inspect_ledger, write_ledger

    try:
        typed, violations = inspect_ledger(ledger, extracted_on=extracted_on)
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    if report is not None:
        with atomic_file(report) as tmp:
            violations.to_csv(tmp, index=False)
    if quarantine is not None:
        clean, rejected = split_quarantine(typed, violations)
        write_ledger(clean, quarantine / "ledger")
        with atomic_directory(quarantine / "rejects") as tmp:
            for name, rows in rejected.items():
                if len(rows):
                    rows.to_parquet(tmp / f"{name}.parquet", index=False)
        with atomic_file(quarantine / "violations.csv") as tmp:
            violations.to_csv(tmp, index=False)
        kept = ", ".join(f"{len(f):,} {n}" for n, f in clean.tables().items())
        dropped = sum(len(r) for r in rejected.values())
        console.print(f"quarantined {dropped:,} rows to {quarantine / 'rejects'}; kept {kept}")
    if len(violations) == 0:
        console.print(f"[green]{ledger}: no contract violations[/green]")
        return
    _print_violations(violations, limit=limit)
    raise typer.Exit(code=2)


def _print_violations(violations: pd.DataFrame, *, limit: int) -> None:
    summary = (
        violations.groupby(["table", "column", "rule"], sort=True)
        .agg(count=("row", "size"), first_row=("row", "min"))
        .reset_index()
    )
    table = Table(title=f"{len(violations):,} contract violations")
    for col in ("table", "column", "rule", "count", "first row"):
        table.add_column(col)
    for r in summary.itertuples():
        table.add_row(r.table, r.column, r.rule, f"{r.count:,}", str(r.first_row))
    console.print(table)
    detail = Table(title=f"first {min(limit, len(violations))} of {len(violations):,}")
    for col in ("table", "row", "key", "column", "rule", "value"):
        detail.add_column(col)
    for r in violations.head(limit).itertuples():
        detail.add_row(r.table, str(r.row), str(r.key), r.column, r.rule, str(r.value))
    if limit:
        console.print(detail)


@app.command()
def features(
    ledger: Annotated[Path | None, typer.Option(help="Ledger folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Parquet file to write (atomically).")] = None,
    unit: Annotated[
        str, typer.Option(help="client: (client, as_of) snapshots; invoice: invoices at issue.")
    ] = "client",
    as_of: Annotated[
        list[str] | None, typer.Option("--as-of", help="Snapshot date (repeatable).")
    ] = None,
    monthly: Annotated[
        tuple[str, str] | None,
        typer.Option(help="Month-end snapshots from FROM to TO.", metavar="FROM TO"),
    ] = None,
    grace_days: Annotated[
        int, typer.Option(min=0, help="Days after due before an invoice counts as late.")
    ] = 0,
    issued_from: Annotated[
        str | None, typer.Option(help="Invoice unit: only invoices issued on or after this date.")
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Client partitions (default: by ledger size).")
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Print the feature catalog and exit.")
    ] = False,
) -> None:
    """Build point-in-time features with labels, or list the feature catalog."""
    from features.catalog import catalog_frame
    from features.io import load_ledger
    from features.pipeline import feature_specs, month_ends, write_feature_table

    if unit not in ("client", "invoice"):
        raise typer.BadParameter("must be client or invoice", param_hint="--unit")
    if list_:
        catalog = catalog_frame(feature_specs(unit))  # type: ignore[arg-type]
        table = Table(title=f"{len(catalog)} {unit} features")
        for col in ("name", "family", "window", "direction", "description"):
            table.add_column(col)
        for r in catalog.itertuples():
            window = "" if pd.isna(r.window) else str(int(r.window))
            table.add_row(
                r.name,
                r.family,
                window,
                {1: "+ risk", -1: "- risk"}.get(r.direction, ""),
                r.description,
            )
        console.print(table)
        return
    if ledger is None or out is None:
        raise typer.BadParameter("--ledger and --out are required unless --list is given")
    dates: list[object] = list(as_of or [])
    if monthly is not None:
        dates += month_ends(*monthly)
    if unit == "client" and not dates:
        raise typer.BadParameter(
            "give --as-of DATE (repeatable) or --monthly FROM TO", param_hint="--as-of"
        )
    loaded = load_ledger(ledger)
    chosen = None
    if issued_from is not None:
        inv = loaded.invoices
        chosen = inv.loc[inv["issued_on"] >= pd.Timestamp(issued_from), "invoice_id"]
    stats = write_feature_table(
        loaded,
        out,
        unit=unit,  # type: ignore[arg-type]
        as_of_dates=dates,
        invoices=chosen,
        grace_days=grace_days,
        partitions=partitions,
        progress=True,
    )
    label = "default_12m" if unit == "client" else "late"
    console.print(
        f"wrote {out}: {stats['rows']:,} rows; {stats['uncensored']:,} uncensored with a {label} rate of {stats['rate']:.2%}"
    )


@app.command()
def train(
    features_: Annotated[
        Path | None,
        typer.Option("--features", help="Ledger feature table from `creditguard features`."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="default (client snapshots) or late (invoices at issue).")
    ] = None,
    table: Annotated[
        Path | None, typer.Option(help="Any feature table (Parquet or CSV) with a target column.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column of --table (0/1).")] = None,
    time_column: Annotated[
        str | None, typer.Option(help="Date column of --table for an out-of-time split.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Registered model name for --table (default: creditguard-TARGET)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Training options as YAML (see training/config.py).")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Override the search budget (optuna trials).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the random seed.")] = None,
    gap_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Out-of-time splits: drop rows this many days before the next part starts, so "
            "outcome windows do not overlap (365 for a 12-month label).",
        ),
    ] = None,
) -> None:
    """Train, calibrate, evaluate and register a model in MLflow (alias: challenger)."""
    import logging
    from dataclasses import replace

    from training.config import TrainConfig
    from training.tracking import log_training, tracking_uri
    from training.train import ledger_spec, table_spec, train_model

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    cfg = TrainConfig.load(config) if config else TrainConfig()
    if trials is not None:
        cfg = replace(cfg, n_trials=trials)
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    if gap_days is not None:
        cfg = replace(cfg, gap_days=gap_days)
    if (features_ is None) == (table is None):
        raise typer.BadParameter(
            "give either --features FILE --model default|late, or --table FILE --target COL"
        )
    if features_ is not None:
        if model not in ("default", "late"):
            raise typer.BadParameter("must be default or late", param_hint="--model")
        data = pd.read_parquet(features_)
        spec = ledger_spec(model)  # type: ignore[arg-type]
    else:
        assert table is not None
        if target is None:
            raise typer.BadParameter("--table needs --target COL", param_hint="--target")
        data = pd.read_csv(table) if table.suffix == ".csv" else pd.read_parquet(table)
        if time_column:
            data[time_column] = pd.to_datetime(data[time_column])
        spec = table_spec(
            data, target=target, time_column=time_column, name=name or f"creditguard-{target}"
        )
    console.print(
        f"training {spec.name} on {len(data):,} rows ({len(spec.features)} features), store {tracking_uri()}"
    )
    result = train_model(data, spec, cfg, progress=True)
    logged = log_training(result, cfg)
    m, s = result.metrics, result.scorecard_metrics
    summary: dict[str, object] = {
        "model": spec.name,
        "run id": logged["run_id"],
        "version": logged.get("version", ""),
        "aliases": "challenger" + (", champion (first version)" if logged.get("champion") else ""),
        "calibration": result.bundle.metadata.get("calibration"),
        "test AUC": round(m["auc"], 4),
        "test Gini": round(m["gini"], 4),
        "test KS": round(m["ks"], 4),
        "test Brier": round(m["brier"], 5),
        "test ECE": round(m["ece"], 4),
        "capture top 10 %": round(m["capture_top10"], 4),
        "scorecard test AUC": round(s["auc"], 4),
    }
    _print_mapping("training summary", summary)


@app.command()
def promote(
    model: Annotated[str, typer.Option(help="Registered model name, e.g. creditguard-default.")],
    force: Annotated[
        bool, typer.Option(help="Promote even if the gate refuses (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why a forced promotion is justified (recorded).")
    ] = None,
) -> None:
    """Move the champion alias to the challenger if it is at least as good on the same window."""
    from training.registry import promote as promote_model

    try:
        decision = promote_model(model, force=force, reason=reason)
    except (LookupError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    refused = not decision.promoted and decision.champion != decision.challenger
    verdict = (
        "[green]promoted[/green]"
        if decision.promoted
        else ("[yellow]refused[/yellow]" if refused else "unchanged")
    )
    console.print(
        f"{model}: challenger v{decision.challenger} {verdict} (champion was v{decision.champion}): {decision.reason}"
    )
    if not decision.promoted and decision.champion != decision.challenger:
        raise typer.Exit(code=3)  # the gate refused: scripts can tell a refusal from an error


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    ledger: Annotated[
        Path | None, typer.Option(help="Ledger to score against (default: the demo ledger).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (each holds the models and ledger); 2 on two cores for throughput.",
        ),
    ] = 1,
    threads: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Request threads per worker (the tree kernels release the GIL)."
        ),
    ] = 2,
) -> None:
    """Start the BentoML service (`bentoml serve serving.service:CreditGuard`) with the champions."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["CREDITGUARD_WORKERS"] = str(workers)
    env["CREDITGUARD_THREADS"] = str(threads)
    if ledger is not None:
        env["CREDITGUARD_LEDGER"] = str(ledger.resolve())
    if not env.get("CREDITGUARD_API_KEYS") and not env.get("CREDITGUARD_API_KEYS_FILE"):
        console.print(
            "[yellow]no API keys configured: set CREDITGUARD_API_KEYS=role:key,... (see `make serve`)[/yellow]"
        )
    bentoml = Path(sys.executable).with_name("bentoml")
    root = Path(__file__).resolve().parents[1]
    raise typer.Exit(
        subprocess.call(
            [
                str(bentoml),
                "serve",
                "serving.service:CreditGuard",
                "--port",
                str(port),
                "--working-dir",
                str(root),
            ],
            env=env,
        )
    )


@app.command()
def audit(
    client: Annotated[str, typer.Option(help="Client id whose decision history to show.")],
) -> None:
    """Every audited decision for a client: time, key id, models, PD, grade, decision, reasons."""
    import json

    from serving.state import AuditLog, audit_path

    history = AuditLog(audit_path()).history(client)
    if history.empty:
        console.print(f"no audited decisions for {client}")
        return
    table = Table(title=f"decisions for {client}")
    for col in ("at", "key", "endpoint", "models", "PD", "grade", "decision", "reasons"):
        table.add_column(col)
    for r in history.itertuples():
        decision = json.loads(r.decision) or {}
        table.add_row(
            r.at,
            r.key_id,
            r.endpoint,
            r.model_versions,
            f"{r.pd:.2%}",
            str(r.grade),
            (
                f"{decision.get('requested_amount', float('nan')):,.0f} asked: "
                f"{decision['decision']} {decision['approved_amount']:,.0f}"
                if decision
                else "-"
            ),
            "; ".join(json.loads(r.reasons)),
        )
    console.print(table)


def run_scoring(
    ledger_dir: Path,
    as_of: pd.Timestamp | None,
    out: Path,
    *,
    engine: str = "local",
    master: str = "local[2]",
    previous: Path | None = None,
    scratch: Path | None = None,
) -> dict[str, Any]:
    """Validate (rejecting bad rows), score every client and open invoice, write the run."""
    import tempfile

    from tqdm import tqdm

    from features.io import resolve_extracted_on
    from features.stream import count_rows
    from serving.outputs import RunTables
    from serving.portfolio import load_for_scoring, score_folder, write_run
    from serving.scoring import Scorer

    if previous is not None and not (previous / "clients.parquet").exists():
        raise typer.BadParameter(f"{previous} is not a scoring run", param_hint="--previous")
    if not ledger_dir.is_dir():
        raise typer.BadParameter(f"{ledger_dir} is not a ledger folder", param_hint="--ledger")
    extracted_on = resolve_extracted_on(ledger_dir, None)
    day = pd.Timestamp(as_of) if as_of is not None else extracted_on + pd.Timedelta(days=1)
    if day > extracted_on + pd.Timedelta(days=1):
        raise typer.BadParameter(
            f"{day.date()} is after the ledger's data ({extracted_on.date()})",
            param_hint="--as-of",
        )
    scorer = Scorer.from_registry()
    total = count_rows(ledger_dir, "clients")
    # Chunk results are spilled here as they come, and merged into the run when it is written.
    with (
        tempfile.TemporaryDirectory(prefix="creditguard-run-", dir=scratch) as spill,
        tqdm(total=total, desc=f"score ({engine})", unit="client") as bar,
    ):
        tables = RunTables(Path(spill))
        if engine == "spark":
            from serving.spark import score_spark

            ledger, rejects = load_for_scoring(ledger_dir)
            clients, invoices, features = score_spark(
                ledger,
                scorer,
                day,
                master=master,
                scratch=scratch,
                progress=bar.update,  # type: ignore[arg-type]
            )
            ranked = ["collection_priority_score", "collection_priority_rank"]
            tables.add(clients, invoices.drop(columns=ranked), features)
        else:
            # The ledger is read and validated a part of the clients at a time, never whole.
            rejects = score_folder(
                ledger_dir,
                scorer,
                day,
                tables,
                scratch=scratch,
                progress=bar.update,  # type: ignore[arg-type]
            )
        return write_run(tables, rejects, day, dict(scorer.versions), out, previous=previous)


@app.command()
def score(
    ledger: Annotated[Path, typer.Option(help="Ledger folder to score.")],
    out: Annotated[Path, typer.Option(help="Run folder to write (replaced atomically).")],
    as_of: Annotated[
        str | None,
        typer.Option(help="Scoring date YYYY-MM-DD (default: the day after the extraction)."),
    ] = None,
    engine: Annotated[str, typer.Option(help="local, or spark for Apache Spark.")] = "local",
    master: Annotated[
        str, typer.Option(help="Spark master URL (with --engine spark).")
    ] = "local[2]",
    previous: Annotated[
        Path | None,
        typer.Option(help="The previous run, for migration and early warnings."),
    ] = None,
    scratch: Annotated[
        Path | None,
        typer.Option(
            help="Scratch folder: the ledger spilled in parts (local), or bucketed for Spark "
            "(readable by every executor)."
        ),
    ] = None,
) -> None:
    """Score the whole portfolio: clients.parquet, invoices.parquet, rejects.parquet, report.html."""
    if engine not in ("local", "spark"):
        raise typer.BadParameter("must be local or spark", param_hint="--engine")
    try:
        day = pd.Timestamp(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a date (YYYY-MM-DD)", param_hint="--as-of"
        ) from None
    figures = run_scoring(
        ledger, day, out, engine=engine, master=master, previous=previous, scratch=scratch
    )
    _print_report(figures, out)


def _print_report(figures: dict[str, Any], out: Path) -> None:
    summary = {
        k: figures[k]
        for k in (
            "as_of",
            "clients",
            "open_invoices",
            "rejected_rows",
            "total_expected_loss",
            "total_open_balance",
            "mean_pd",
            "overdue_balance",
        )
    }
    summary["grades 1..10"] = " ".join(str(v) for v in figures["grade_distribution"].values())
    summary["limit decisions"] = ", ".join(
        f"{k} {v}" for k, v in figures["limit_decisions"].items()
    )
    summary["early warnings"] = len(figures["early_warnings"])
    if "downgraded" in figures:
        summary["downgraded / upgraded"] = f"{figures['downgraded']} / {figures['upgraded']}"
    _print_mapping("portfolio", summary)
    console.print(f"report: {out / 'report.html'} (figures: {out / 'report.json'})")


@app.command()
def monitor(
    run: Annotated[Path, typer.Option(help="A run folder from `creditguard score`.")],
    previous: Annotated[
        Path | None, typer.Option(help="Compare with this run (default: the run's --previous).")
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(help="A later ledger with the outcomes, for the per-grade backtest."),
    ] = None,
    log: Annotated[
        bool, typer.Option(help="Log the results to MLflow against the champion.")
    ] = True,
) -> None:
    """PSI of the score and CSI of every feature (0.10 / 0.25 verdicts) and the backtest per grade."""
    import json

    from serving.monitor import monitor_run

    if not (run / "run.json").exists():
        raise typer.BadParameter(f"{run} is not a scoring run", param_hint="--run")
    if previous is None:
        recorded = json.loads((run / "run.json").read_text()).get("previous")
        previous = Path(recorded) if recorded and Path(recorded).exists() else None
    result = monitor_run(run, previous=previous, ledger=ledger, log=log)
    table = Table(
        title=f"monitoring {result['as_of']} (creditguard-default v{result['model_version']})"
    )
    for col in (
        "against",
        "score PSI",
        "verdict",
        "features shifted",
        "features to watch",
        "top CSI",
    ):
        table.add_column(col)
    for ref, block in result["stability"].items():
        top = block["csi"][0] if block["csi"] else {"feature": "", "csi": 0.0}
        table.add_row(
            ref,
            f"{block['score_psi']:.4f}",
            block["score_verdict"],
            str(block["features_shifted"]),
            str(block["features_watch"]),
            f"{top['feature']} {top['csi']:.3f}",
        )
    console.print(table)
    if result.get("backtest"):
        bt = Table(title="realised default rate per grade")
        for col in ("grade", "clients", "predicted PD", "realised", "p-value", "verdict"):
            bt.add_column(col)
        for r in result["backtest"]:
            bt.add_row(
                str(r["grade"]),
                str(r["clients"]),
                f"{r['predicted_pd']:.2%}",
                f"{r['realised_rate']:.2%}",
                f"{r['p_value']:.3f}",
                r["verdict"],
            )
        console.print(bt)
    elif result.get("backtest_note"):
        console.print(f"backtest: {result['backtest_note']}")
    console.print(f"written: {run / 'monitoring.json'}, {run / 'report.html'}")


@app.command("import-ibm")
def import_ibm(
    source: Annotated[Path, typer.Argument(help="The IBM accounts-receivable CSV or its folder.")],
    out: Annotated[Path, typer.Option(help="Ledger folder to write.")],
) -> None:
    """Map the IBM accounts-receivable sample onto the ledger contract."""
    from features.adapters import load_ibm_accounts_receivable
    from features.io import write_ledger

    ledger = load_ibm_accounts_receivable(source)
    write_ledger(
        ledger, out, manifest={"source": "IBM Watson Analytics accounts receivable sample"}
    )
    console.print(f"wrote {out}: {len(ledger.clients)} clients, {len(ledger.invoices)} invoices")


@app.command()
def profile(ledger: Annotated[Path, typer.Argument(help="Ledger folder.")]) -> None:
    """Print the headline figures of a valid ledger."""
    from features.io import load_ledger
    from features.profile import profile_ledger

    _print_mapping("ledger profile", profile_ledger(load_ledger(ledger)))


def _print_mapping(title: str, values: dict[str, object]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in values.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    console.print(table)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data.")] = DEMO_DIR,
    clients: Annotated[int, typer.Option(min=50, help="Clients in the demo ledger.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed of the demo ledger.")] = 42,
    trials: Annotated[
        int, typer.Option(min=1, help="Search budget per model (optuna trials).")
    ] = 6,
) -> None:
    """Run the main job end to end on the embedded default: ledger, features, models, champions."""
    import logging
    from dataclasses import replace

    from features.io import inspect_ledger
    from features.pipeline import month_ends, write_feature_table
    from features.profile import profile_ledger
    from features.synthetic import GeneratorConfig, generate_ledger
    from training.config import TrainConfig
    from training.registry import promote as promote_model
    from training.tracking import log_training, tracking_uri
    from training.train import ledger_spec, train_model

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    gen = GeneratorConfig(clients=clients, seed=seed)
    ledger_dir = workdir / "ledger"
    console.rule("1. generate the synthetic ledger")
    counts = generate_ledger(gen, ledger_dir)
    console.print(f"{ledger_dir}: " + ", ".join(f"{n:,} {k}" for k, n in counts.items()))
    console.rule("2. validate it against the data contract")
    ledger, violations = inspect_ledger(ledger_dir)
    if len(violations):
        _print_violations(violations, limit=20)
        raise typer.Exit(code=2)
    console.print("[green]no contract violations[/green]")
    _print_mapping("ledger profile", profile_ledger(ledger))

    console.rule("3. point-in-time features and labels")
    first = (
        (pd.Timestamp(gen.start) + pd.DateOffset(months=6) - pd.Timedelta(days=1))
        .date()
        .isoformat()
    )
    client_path, invoice_path = (
        workdir / "features_client.parquet",
        workdir / "features_invoice.parquet",
    )
    stats = write_feature_table(
        ledger,
        client_path,
        unit="client",
        as_of_dates=month_ends(first, str(gen.extracted_on.date())),
        progress=True,
    )
    console.print(
        f"{client_path}: {stats['rows']:,} client snapshots, 12-month default rate {stats['rate']:.2%} (uncensored)"
    )
    recent = ledger.invoices.loc[
        ledger.invoices["issued_on"] >= gen.extracted_on - pd.DateOffset(months=6), "invoice_id"
    ]
    stats = write_feature_table(
        ledger, invoice_path, unit="invoice", invoices=recent, progress=True
    )
    console.print(
        f"{invoice_path}: {stats['rows']:,} invoices of the last six months, late rate {stats['rate']:.2%} (uncensored)"
    )

    console.rule(f"4. train, log and register both models ({tracking_uri()})")
    cfg = replace(TrainConfig(), n_trials=trials)
    rows = []
    for model, path in (("default", client_path), ("late", invoice_path)):
        result = train_model(pd.read_parquet(path), ledger_spec(model), cfg, progress=True)  # type: ignore[arg-type]
        logged = log_training(result, cfg)
        decision = promote_model(result.spec.name, cfg=cfg)
        rows.append((result, logged, decision))
    table = Table(title="models")
    for col in ("model", "version", "test AUC", "scorecard AUC", "ECE", "calibration", "champion"):
        table.add_column(col)
    for result, logged, decision in rows:
        table.add_row(
            result.spec.name,
            str(logged.get("version")),
            f"{result.metrics['auc']:.3f}",
            f"{result.scorecard_metrics['auc']:.3f}",
            f"{result.metrics['ece']:.4f}",
            str(result.bundle.metadata.get("calibration")),
            f"v{decision.challenger}: {decision.reason}"
            if decision.promoted
            else f"unchanged: {decision.reason}",
        )
    console.print(table)

    console.rule("5. score the portfolio: last month, then today")
    runs = workdir / "runs"
    last_month = gen.extracted_on - pd.offsets.MonthEnd(1)
    before = runs / str(last_month.date())
    run_scoring(ledger_dir, last_month, before)
    today = gen.extracted_on + pd.Timedelta(days=1)
    latest = runs / str(today.date())
    figures = run_scoring(ledger_dir, today, latest, previous=before)
    _print_report(figures, latest)

    console.rule("6. monitor: stability against training and last month")
    from serving.monitor import monitor_run

    monitoring = monitor_run(latest, previous=before)
    for ref, block in monitoring["stability"].items():
        console.print(
            f"against {ref}: score PSI {block['score_psi']:.4f} ({block['score_verdict']}), "
            f"{block['features_shifted']} feature(s) shifted, {block['features_watch']} to watch"
        )
    console.print("browse the runs: .venv/bin/mlflow ui --backend-store-uri " + tracking_uri())
    console.print(f"portfolio report: {latest / 'report.html'}")


if __name__ == "__main__":
    app()
