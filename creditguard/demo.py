"""The demo: the main job end to end on the embedded synthetic ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from creditguard.app import app, console, print_mapping, print_violations
from creditguard.jobs import print_retrain
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
    """Run the main job end to end on the embedded default: a ledger, then what a user runs on
    theirs: `creditguard retrain` and `creditguard nightly` (last month's run, then tonight's)."""
    import logging

    from features.io import inspect_ledger
    from features.profile import profile_ledger
    from features.synthetic import GeneratorConfig, generate_ledger
    from portfolio.nightly import nightly
    from scoring.store import tracking_uri
    from serving.offline import prepare
    from serving.online import cache_root
    from training.retrain import RetrainConfig, retrain

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
    console.print("no contract violations", style="green")
    print_mapping("ledger profile", profile_ledger(ledger))
    del ledger

    console.rule(f"3. creditguard retrain --ledger {ledger_dir} ({tracking_uri()})")
    result = retrain(ledger_dir, RetrainConfig(trials=trials), work=workdir / "retrain")
    print_retrain(result)

    runs = workdir / "runs"
    last_month = gen.extracted_on - pd.offsets.MonthEnd(1)
    console.rule(
        f"4. creditguard nightly --ledger {ledger_dir} --runs {runs} (last month, then tonight)"
    )
    nightly(ledger_dir, runs, as_of=last_month, force=True)  # the demo scores its days again
    tonight = nightly(ledger_dir, runs, force=True)  # continues last month's run
    print_report(tonight.figures, tonight.run)
    console.print(f"previous run: {tonight.previous}")
    console.print(tonight.status, highlight=False, soft_wrap=True)
    console.print(f"service store: {prepare(tonight.run, runs, cache_root())}")
    console.print("browse the runs: .venv/bin/mlflow ui --backend-store-uri " + tracking_uri())
    console.print(f"portfolio report: {tonight.run / 'report.html'}")
