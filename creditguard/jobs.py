"""The scheduled jobs: retrain and nightly. Exit codes a scheduler reads: 0 done (a champion kept
or replaced as the gate designs; the night OK), 3 a person is needed (a gate refused a challenger
better on one measure and worse on another; monitoring recommends a retraining), 2 bad input,
named before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from creditguard.app import app, console, parse_day, print_mapping
from creditguard.runs import print_report


@app.command()
def retrain(
    ledger: Annotated[Path, typer.Option(help="Ledger folder (its manifest's extracted_on).")],
    config: Annotated[
        Path | None,
        typer.Option(
            help="retrain.yaml: trials, seed, snapshot_months, ... (training/retrain.py)."
        ),
    ] = None,
    work: Annotated[
        Path | None,
        typer.Option(help="Folder for the feature tables (default: next to the ledger)."),
    ] = None,
) -> None:
    """Retrain every model on a ledger: windows from its extraction date, feature tables, training,
    each promotion gate; exit 0 (promoted or kept), 3 (a person must decide) or 2 (bad input)."""
    import logging

    from training.retrain import RetrainConfig
    from training.retrain import retrain as run_retrain

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    cfg = RetrainConfig.load(config)
    folder = work or default_work(ledger)
    result = run_retrain(ledger, cfg, work=folder)
    print_retrain(result)
    if result.exit_code:
        raise typer.Exit(code=result.exit_code)


def default_work(ledger: Path) -> Path:
    """Where a retraining writes its feature tables unless told: beside the ledger."""
    return ledger.parent / f"{ledger.name}-retrain"


def print_retrain(result: object) -> None:
    from training.retrain import RetrainResult

    assert isinstance(result, RetrainResult)
    shown: dict[str, object] = dict(result.windows)
    shown |= {f"{k} table sha256": v[:16] for k, v in result.tables.items()}
    print_mapping(
        "retraining" + (" (reused: same ledger and configuration)" if result.reused else ""),
        shown,
    )
    console.rule(f"models (MLflow parent run {result.parent_run_id})")
    for v in result.verdicts:
        verdict = "replaced" if v.promoted else "NEEDS A PERSON" if v.needs_person else "kept"
        before = f"v{v.champion_before}" if v.champion_before else "none"
        now = f"v{v.champion_after}" if v.champion_after else "none"
        console.print(
            Text.assemble(
                (v.model, "bold"),
                f" challenger v{v.version}: {v.measures}\n"
                f"  champion {before} -> {now}: {verdict}; {v.reason}",
            ),
            soft_wrap=True,
        )
    for note in result.notes:
        console.print(note)


@app.command()
def nightly(
    ledger: Annotated[Path, typer.Option(help="Tonight's ledger folder.")],
    runs: Annotated[Path, typer.Option(help="Runs root (dated runs, `latest`, status.txt).")],
    keep: Annotated[
        int | None, typer.Option(min=1, help="Keep the newest N runs, remove older ones.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Scoring date (default: the day after the ledger's extraction)."),
    ] = None,
    max_shifted_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Recommend retraining above this share of shifted features."
        ),
    ] = 0.2,
    retrain_on_shift: Annotated[
        bool, typer.Option(help="Run `creditguard retrain` when monitoring recommends it.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option(help="retrain.yaml for --retrain-on-shift.")
    ] = None,
    prepare_service: Annotated[
        bool,
        typer.Option(
            help="Prepare the run's offline store for the service (under CREDITGUARD_CACHE), so "
            "that no worker builds it when it starts or reloads."
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option(help="Score a day whose run is published already, again.")
    ] = False,
) -> None:
    """Score the night's portfolio, continue the previous run, monitor, prune, write the status
    line, prepare the service's store; exit 3 when monitoring recommends retraining (or what
    the retraining exits with)."""
    from portfolio.nightly import nightly as run_nightly

    day = parse_day(as_of)
    if retrain_on_shift:
        from training.retrain import RetrainConfig

        RetrainConfig.load(config)  # a bad configuration stops the night before any work
    result = run_nightly(
        ledger, runs, as_of=day, keep=keep, max_shifted_share=max_shifted_share, force=force
    )
    print_report(result.figures, result.run)
    console.print(
        f"previous run: {result.previous or 'none'}"
        + (f"; removed: {', '.join(result.pruned)}" if result.pruned else "")
    )
    console.print(result.status, highlight=False, soft_wrap=True)
    if prepare_service:
        from serving.offline import prepare
        from serving.online import cache_root

        store = prepare(result.run, runs, cache_root())
        console.print(f"service store: {store or 'none (the run has no features)'}")
    if not result.retrain:
        return
    if not retrain_on_shift:
        raise typer.Exit(code=3)
    from training.retrain import RetrainConfig
    from training.retrain import retrain as run_retrain

    console.rule("retraining (monitoring recommends it)")
    outcome = run_retrain(ledger, RetrainConfig.load(config), work=default_work(ledger))
    print_retrain(outcome)
    if outcome.exit_code:
        raise typer.Exit(code=outcome.exit_code)
