"""The demo: the main job end to end on the embedded synthetic ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from creditguard.app import app, console, print_mapping, print_violations
from creditguard.runs import print_report

DEMO_DIR = Path("data/demo")


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
    from portfolio.monitor import monitor_run
    from portfolio.run import run_scoring
    from scoring.store import tracking_uri
    from training.config import TrainConfig
    from training.registry import promote as promote_model
    from training.specs import ledger_spec
    from training.timing import log_timing, train_timing
    from training.tracking import log_training
    from training.train import train_model

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    gen = GeneratorConfig(clients=clients, seed=seed)
    ledger_dir = workdir / "ledger"
    console.rule("1. generate the synthetic ledger")
    counts = generate_ledger(gen, ledger_dir)
    console.print(f"{ledger_dir}: " + ", ".join(f"{n:,} {k}" for k, n in counts.items()))
    console.rule("2. validate it against the data contract")
    ledger, violations = inspect_ledger(ledger_dir)
    if len(violations):
        print_violations(violations, limit=20)
        raise typer.Exit(code=2)
    console.print("[green]no contract violations[/green]")
    print_mapping("ledger profile", profile_ledger(ledger))

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
    # the timing model learns from invoices whose 180 days past due have all passed
    timing_path = workdir / "features_timing.parquet"
    due = ledger.invoices["due_on"]
    settled = ledger.invoices.loc[
        (due > gen.extracted_on - pd.Timedelta(days=545))
        & (due <= gen.extracted_on - pd.Timedelta(days=181)),
        "invoice_id",
    ]
    stats = write_feature_table(
        ledger, timing_path, unit="invoice", invoices=settled, progress=True
    )
    console.print(
        f"{timing_path}: {stats['rows']:,} invoices due 6 to 18 months before extraction "
        "(settlement buckets for the timing model)"
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
    for col in (
        "model",
        "version",
        "deployed",
        "AUC, new clients",
        "AUC, training clients",
        "scorecard AUC",
        "ECE",
        "calibration",
        "champion",
    ):
        table.add_column(col)
    for result, logged, decision in rows:
        table.add_row(
            result.spec.name,
            str(logged.get("version")),
            str(result.bundle.metadata.get("model")),
            f"{result.metrics['auc']:.3f}",
            f"{result.same_client_metrics.get('auc', float('nan')):.3f}",
            f"{result.scorecard_metrics['auc']:.3f}",
            f"{result.metrics['ece']:.4f}",
            str(result.bundle.metadata.get("calibration")),
            f"v{decision.challenger}: {decision.reason}"
            if decision.promoted
            else f"unchanged: {decision.reason}",
        )
    console.print(table)
    timing = train_timing(pd.read_parquet(timing_path), cfg)
    logged_timing = log_timing(timing, cfg)
    console.print(
        f"{timing.spec.name} v{logged_timing['version']}: test log loss (new clients) "
        f"{timing.metrics['log_loss']:.4f} against {timing.metrics['naive_log_loss']:.4f} for the "
        f"training frequencies; champion: {'yes' if logged_timing['champion'] else 'no'} "
        f"({logged_timing['gate']})"
    )

    console.rule("5. score the portfolio: last month, then today")
    runs = workdir / "runs"
    last_month = gen.extracted_on - pd.offsets.MonthEnd(1)
    before, _ = run_scoring(ledger_dir, last_month, runs)
    today = gen.extracted_on + pd.Timedelta(days=1)
    latest, figures = run_scoring(ledger_dir, today, runs)  # continues last month's run
    print_report(figures, latest)

    console.rule("6. monitor: stability against training and last month")
    monitoring = monitor_run(latest, previous=before)
    for ref, block in monitoring["stability"].items():
        console.print(
            f"against {ref}: score PSI {block['score_psi']:.4f} ({block['score_verdict']}), "
            f"{block['features_shifted']} feature(s) shifted, {block['features_watch']} to watch"
        )
    console.print("browse the runs: .venv/bin/mlflow ui --backend-store-uri " + tracking_uri())
    console.print(f"portfolio report: {latest / 'report.html'}")
