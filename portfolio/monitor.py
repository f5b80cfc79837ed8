"""Monitoring a run: stability against the champion's training population and the previous run
(`scoring.stability`), and, once outcomes have matured, realised default rates per grade; written
into the run folder and logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.io import atomic_file
from features.labels import DEFAULT_HORIZON_MONTHS, label_default
from portfolio.batch import load_for_scoring
from portfolio.run import first_invoices, first_rows, report_page
from scoring.stability import backtest, compare, population_reference
from scoring.status import Status
from scoring.store import DEFAULT_MODEL, load_bundle, tracking_uri


def monitor_run(
    run: Path,
    *,
    previous: Path | None = None,
    ledger: Path | None = None,
    log: bool = True,
) -> dict[str, Any]:
    """Stability against the champion's training population and the previous run, the backtest
    when outcomes have matured, written into the run (monitoring.json, report.html) and logged to
    MLflow against the champion."""
    meta = json.loads((run / "run.json").read_text())
    clients = pd.read_parquet(run / "clients.parquet")
    features = pd.read_parquet(run / "features.parquet")
    version = str(meta["model_versions"][DEFAULT_MODEL])
    bundle = load_bundle(DEFAULT_MODEL, version)
    result: dict[str, Any] = {"as_of": meta["as_of"], "model_version": version, "stability": {}}
    reference: dict[str, Any] | None = bundle.metadata.get("reference")  # type: ignore[assignment]
    # the population the model scores: live clients (one in default has PD 1 by status)
    live_f, pd_now = _live(features, clients)
    if reference:
        result["stability"]["champion training population"] = compare(reference, live_f, pd_now)
    if previous is not None:
        prev_f, prev_pd = _live(
            pd.read_parquet(previous / "features.parquet"),
            pd.read_parquet(previous / "clients.parquet"),
        )
        prev_ref = population_reference(prev_f, bundle.features, list(bundle.categories), prev_pd)
        label = f"previous run ({json.loads((previous / 'run.json').read_text())['as_of']})"
        result["stability"][label] = compare(prev_ref, live_f, pd_now)
    if ledger is not None:
        result |= _matured(clients, features, ledger, pd.Timestamp(meta["as_of"]))
    write_monitoring(run, result)
    if log:
        result["mlflow_run_id"] = _log(result, version, run)
    return result


def _live(features: pd.DataFrame, clients: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature rows of the clients not in default, and their point-in-time PDs."""
    rows = features[["client_id"]].merge(clients[["client_id", "status", "pd_12m"]], on="client_id")
    live = (rows["status"] != Status.IN_DEFAULT.value).to_numpy()
    return features[live].reset_index(drop=True), rows["pd_12m"].to_numpy()[live]


def _matured(
    clients: pd.DataFrame, features: pd.DataFrame, ledger_dir: Path, as_of: pd.Timestamp
) -> dict[str, Any]:
    """Realised default rates per grade of the clients the run scored as live."""
    ledger, _ = load_for_scoring(ledger_dir)  # rows breaking the contract set aside, as in scoring
    matured_on = as_of + pd.DateOffset(months=DEFAULT_HORIZON_MONTHS)
    if ledger.extracted_on < matured_on:
        return {
            "backtest": [],
            "backtest_note": f"outcomes mature on {matured_on.date()}; the ledger ends "
            f"{ledger.extracted_on.date()}",
        }
    snapshots = clients[["client_id"]].assign(as_of=as_of)
    aligned = snapshots[["client_id"]].merge(features, on="client_id", how="left")
    labels = label_default(ledger, snapshots, features=aligned)
    keep = (clients["status"] != Status.IN_DEFAULT.value).to_numpy()
    return {
        "backtest": backtest(
            clients[keep].reset_index(drop=True),
            labels.loc[keep, "default_12m"].reset_index(drop=True),
        )
    }


def backtest_run(run: Path, ledger_dir: Path) -> dict[str, Any]:
    """The per-grade backtest of an earlier run against a later ledger's outcomes (`backtest`, or
    a `backtest_note` when they have not matured)."""
    clients = pd.read_parquet(run / "clients.parquet")
    features = pd.read_parquet(run / "features.parquet")
    as_of = pd.Timestamp(json.loads((run / "run.json").read_text())["as_of"])
    return _matured(clients, features, ledger_dir, as_of)


def write_monitoring(run: Path, monitoring: dict[str, Any]) -> None:
    """A run's monitoring results into its monitoring.json and report."""
    with atomic_file(run / "monitoring.json") as tmp:
        tmp.write_text(json.dumps(monitoring, indent=2) + "\n")
    _refresh_report(run, monitoring)


def _refresh_report(run: Path, monitoring: dict[str, Any]) -> None:
    figures = json.loads((run / "report.json").read_text())
    figures["monitoring"] = monitoring
    with atomic_file(run / "report.json") as tmp:
        tmp.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    with atomic_file(run / "report.html") as tmp:
        work = first_rows(run / "collections.parquet")
        tmp.write_text(report_page(run, figures, first_invoices(run), work))


def _log(result: dict[str, Any], version: str, run: Path) -> str:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    model = client.get_model_version(DEFAULT_MODEL, version)
    training_run = client.get_run(model.run_id) if model.run_id else None
    experiment = training_run.info.experiment_id if training_run else None
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"monitoring {result['as_of']}"
    ) as active:
        mlflow.set_tags(
            {
                "creditguard.kind": "monitoring",
                "creditguard.model": DEFAULT_MODEL,
                "creditguard.model_version": version,
                "creditguard.as_of": result["as_of"],
            }
        )
        for i, (ref, block) in enumerate(result["stability"].items()):
            key = "training" if i == 0 and ref.startswith("champion") else "previous"
            mlflow.log_metric(f"score_psi_{key}", block["score_psi"])
            mlflow.log_metric(f"features_shifted_{key}", block["features_shifted"])
            mlflow.log_metric(f"csi_max_{key}", block["csi"][0]["csi"] if block["csi"] else 0.0)
        mlflow.log_artifact(str(run / "monitoring.json"))
        return str(active.info.run_id)
