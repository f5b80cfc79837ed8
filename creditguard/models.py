"""Commands on models: train and promote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.text import Text

from creditguard.app import app, console, error, print_mapping
from features.errors import InputError


@app.command()
def train(
    features_: Annotated[
        Path | None,
        typer.Option(
            "--features",
            exists=True,
            dir_okay=False,
            help="Ledger feature table from `creditguard features`.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="default (client snapshots), late (invoices at issue) or timing (settlement "
            "buckets of invoices at issue whose 180 days past due have passed)."
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Any feature table (Parquet or CSV) with a target column.",
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column of --table (0/1).")] = None,
    time_column: Annotated[
        str | None, typer.Option(help="Date column of --table for an out-of-time split.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Registered model name for --table (default: creditguard-TARGET)."),
    ] = None,
    group_column: Annotated[
        str | None,
        typer.Option(
            help="Column of --table naming who a row belongs to (e.g. a customer id): no group "
            "is on both sides of a fold or of the test."
        ),
    ] = None,
    directions: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="YAML of --table's risk directions, feature: rises | falls | none; the others "
            "are inferred from each training fold's rows.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Training options as YAML (see training/config.py)."
        ),
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

    from features.errors import InputError
    from features.io import read_frame
    from scoring.store import tracking_uri
    from training.config import TrainConfig
    from training.directions import load_directions
    from training.specs import ledger_spec, table_spec
    from training.tracking import log_training
    from training.train import train_model

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
    if features_ is not None and model == "timing":
        _train_timing(read_frame(features_), cfg)
        return
    if features_ is not None:
        if model not in ("default", "late", "timing"):
            raise typer.BadParameter("must be default, late or timing", param_hint="--model")
        data = read_frame(features_)
        spec = ledger_spec(model)  # type: ignore[arg-type]
    else:
        assert table is not None
        if target is None:
            raise typer.BadParameter("--table needs --target COL", param_hint="--target")
        data = read_frame(table)
        if target not in data:
            raise InputError(
                f"--target: {table} has no column {target!r} (it has: "
                f"{', '.join(map(str, data.columns))})"
            )
        if time_column:
            data[time_column] = pd.to_datetime(data[time_column])
        if group_column is not None and group_column not in data:
            raise InputError(f"--group-column: {table} has no column {group_column!r}")
        spec = table_spec(
            data,
            target=target,
            time_column=time_column,
            name=name or f"creditguard-{target}",
            group_column=group_column,
        )
        if directions is not None:
            spec = replace(spec, directions=load_directions(directions, spec.features))
    console.print(
        f"training {spec.name} on {len(data):,} rows ({len(spec.features)} features), store {tracking_uri()}"
    )
    result = train_model(data, spec, cfg, progress=True)
    logged = log_training(result, cfg)
    m, s = result.metrics, result.scorecard_metrics
    inferred = dict(result.bundle.metadata.get("directions_inferred") or {})  # type: ignore[call-overload]
    summary: dict[str, object] = {
        "model": spec.name,
        "run id": logged["run_id"],
        "version": logged.get("version", ""),
        "aliases": "challenger" + (", champion (first version)" if logged.get("champion") else ""),
        "calibration": result.bundle.metadata.get("calibration"),
        "deployed": result.bundle.metadata.get("model"),
        "directions inferred": ", ".join(
            f"{k} {'+' if v > 0 else '-'}" for k, v in inferred.items()
        )
        or "none",
        "test AUC" + (" (new clients)" if spec.group_column else ""): round(m["auc"], 4),
        **(
            {"test AUC, the training clients": round(result.same_client_metrics["auc"], 4)}
            if result.same_client_metrics
            else {}
        ),
        "test Gini": round(m["gini"], 4),
        "test KS": round(m["ks"], 4),
        "test Brier": round(m["brier"], 5),
        "test ECE": round(m["ece"], 4),
        "capture top 10 %": round(m["capture_top10"], 4),
        "scorecard test AUC": round(s["auc"], 4),
    }
    print_mapping("training summary", summary)


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
        error(exc)
        raise typer.Exit(code=1) from exc
    refused = not decision.promoted and decision.champion != decision.challenger
    verdict = (
        ("promoted", "green")
        if decision.promoted
        else (("refused", "yellow") if refused else ("unchanged", ""))
    )
    console.print(
        Text.assemble(
            f"{model}: challenger v{decision.challenger} ",
            verdict,
            f" (champion was v{decision.champion}): {decision.reason}",
        )
    )
    if not decision.promoted and decision.champion != decision.challenger:
        raise typer.Exit(code=3)  # the gate refused: scripts can tell a refusal from an error


def _train_timing(data: pd.DataFrame, cfg: object) -> None:
    """The payment-timing model: train, log, register, gate on log loss (`training.timing`)."""
    from training.timing import log_timing, train_timing

    if "payment_bucket" not in data:
        raise InputError(
            "--features: the table has no payment_bucket column: build it with `creditguard "
            "features --unit invoice` (this version adds the timing label)"
        )
    result = train_timing(data, cfg)  # type: ignore[arg-type]
    logged = log_timing(result, cfg)  # type: ignore[arg-type]
    m = result.metrics
    print_mapping(
        "training summary",
        {
            "model": result.spec.name,
            "run id": logged["run_id"],
            "version": logged["version"],
            "champion": f"{'yes' if logged['champion'] else 'no'}: {logged['gate']}",
            "test log loss (new clients)": round(m["log_loss"], 4),
            "naive log loss (training frequencies)": round(m["naive_log_loss"], 4),
            "test invoices": f"{int(m['rows']):,}",
            "boosting rounds": int(m["rounds"]),
        },
    )
