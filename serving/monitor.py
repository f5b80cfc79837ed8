"""Monitoring: population stability of the score (PSI) and of every feature (CSI) against the
champion's training population and the previous run, and, once outcomes have matured, realised
default rates per grade against the predicted PD (a binomial test per grade).

The training population is summarised at training time into the model bundle (`reference`:
decile edges and shares per feature and for the PD), so monitoring never needs the training data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from serving.report import verdict

BINS = 10
FLOOR = 1e-4  # share given to an empty bin, so that the index stays finite


def _edges(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    inner = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
    return [float(v) for v in inner]


def _shares_numeric(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares per bin: one bin for missing values, then len(edges) + 1 value bins."""
    values = np.asarray(values, dtype="float64")
    missing = ~np.isfinite(values)
    bins = np.searchsorted(np.asarray(edges), values[~missing], side="right")
    counts = np.concatenate([[missing.sum()], np.bincount(bins, minlength=len(edges) + 1)])
    return [float(c) for c in counts / max(len(values), 1)]


def _shares_categorical(values: pd.Series, levels: list[str]) -> list[float]:
    text = values.astype("str").where(values.notna(), None)
    counts = [float((text == lv).sum()) for lv in levels]
    other = float(len(values) - sum(counts))
    return [c / max(len(values), 1) for c in [*counts, other]]


def population_reference(
    frame: pd.DataFrame, features: list[str], categorical: list[str], pd_: np.ndarray
) -> dict[str, Any]:
    """Bin edges (or levels) and shares of every feature and of the PD, for later PSI/CSI."""
    out: dict[str, Any] = {"rows": len(frame), "features": {}}
    for name in features:
        if name in categorical:
            levels = sorted(frame[name].dropna().astype("str").unique().tolist())[:50]
            out["features"][name] = {
                "levels": levels,
                "shares": _shares_categorical(frame[name], levels),
            }
        else:
            values = frame[name].to_numpy(dtype="float64")
            edges = _edges(values)
            out["features"][name] = {"edges": edges, "shares": _shares_numeric(values, edges)}
    edges = _edges(np.asarray(pd_, dtype="float64"))
    out["score"] = {"edges": edges, "shares": _shares_numeric(np.asarray(pd_), edges)}
    return out


def stability_index(expected: list[float], actual: list[float]) -> float:
    """Sum over bins of (actual - expected) * ln(actual / expected)."""
    e = np.maximum(np.asarray(expected, dtype="float64"), FLOOR)
    a = np.maximum(np.asarray(actual, dtype="float64"), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(reference: dict[str, Any], frame: pd.DataFrame, pd_: np.ndarray) -> dict[str, Any]:
    """Score PSI and per-feature CSI of `frame` against a reference."""
    score = reference["score"]
    psi = stability_index(score["shares"], _shares_numeric(np.asarray(pd_), score["edges"]))
    rows = []
    for name, ref in reference["features"].items():
        if name not in frame:
            continue
        actual = (
            _shares_categorical(frame[name], ref["levels"])
            if "levels" in ref
            else _shares_numeric(frame[name].to_numpy(dtype="float64"), ref["edges"])
        )
        index = stability_index(ref["shares"], actual)
        rows.append({"feature": name, "csi": index, "verdict": verdict(index)})
    rows.sort(key=lambda r: -r["csi"])
    return {
        "score_psi": psi,
        "score_verdict": verdict(psi),
        "csi": rows,
        "features_shifted": sum(r["verdict"] == "shifted" for r in rows),
        "features_watch": sum(r["verdict"] == "watch" for r in rows),
    }


def backtest(
    clients: pd.DataFrame, outcomes: pd.Series, *, alpha: float = 0.05
) -> list[dict[str, Any]]:
    """Per grade: clients, mean predicted PD, realised default rate and a two-sided binomial test."""
    frame = clients.assign(defaulted=outcomes.to_numpy())
    rows = []
    for grade, g in frame.groupby("grade"):
        n, k, p = len(g), int(g["defaulted"].sum()), float(g["pd_12m"].mean())
        test = binomtest(k, n, min(max(p, 1e-9), 1 - 1e-9))
        rows.append(
            {
                "grade": int(grade),
                "clients": n,
                "predicted_pd": p,
                "realised_rate": k / n,
                "defaults": k,
                "p_value": float(test.pvalue),
                "verdict": "consistent"
                if test.pvalue >= alpha
                else ("PD too low" if k / n > p else "PD too high"),
            }
        )
    return rows


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
    from features.io import atomic_file
    from training.registry import load_bundle

    meta = json.loads((run / "run.json").read_text())
    clients = pd.read_parquet(run / "clients.parquet")
    features = pd.read_parquet(run / "features.parquet")
    version = str(meta["model_versions"]["creditguard-default"])
    bundle = load_bundle("creditguard-default", version)
    result: dict[str, Any] = {"as_of": meta["as_of"], "model_version": version, "stability": {}}
    reference: dict[str, Any] | None = bundle.metadata.get("reference")  # type: ignore[assignment]
    pd_now = features[["client_id"]].merge(clients, on="client_id")["pd_12m"].to_numpy()
    if reference:
        result["stability"]["champion training population"] = compare(reference, features, pd_now)
    if previous is not None:
        prev_f = pd.read_parquet(previous / "features.parquet")
        prev_c = pd.read_parquet(previous / "clients.parquet")
        prev_pd = prev_f[["client_id"]].merge(prev_c, on="client_id")["pd_12m"].to_numpy()
        prev_ref = population_reference(prev_f, bundle.features, list(bundle.categories), prev_pd)
        label = f"previous run ({json.loads((previous / 'run.json').read_text())['as_of']})"
        result["stability"][label] = compare(prev_ref, features, pd_now)
    if ledger is not None:
        result |= _matured(clients, ledger, pd.Timestamp(meta["as_of"]))
    with atomic_file(run / "monitoring.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    _refresh_report(run, result)
    if log:
        result["mlflow_run_id"] = _log(result, version, run)
    return result


def _matured(clients: pd.DataFrame, ledger_dir: Path, as_of: pd.Timestamp) -> dict[str, Any]:
    from features.labels import DEFAULT_HORIZON_MONTHS, label_default
    from serving.portfolio import load_for_scoring

    ledger, _ = load_for_scoring(ledger_dir)  # rows breaking the contract set aside, as in scoring
    matured_on = as_of + pd.DateOffset(months=DEFAULT_HORIZON_MONTHS)
    if ledger.extracted_on < matured_on:
        return {
            "backtest": [],
            "backtest_note": f"outcomes mature on {matured_on.date()}; the ledger ends "
            f"{ledger.extracted_on.date()}",
        }
    labels = label_default(ledger, clients[["client_id"]].assign(as_of=as_of))
    keep = ~labels["defaulted_before"].to_numpy()
    return {
        "backtest": backtest(
            clients[keep].reset_index(drop=True),
            labels.loc[keep, "default_12m"].reset_index(drop=True),
        )
    }


def _refresh_report(run: Path, monitoring: dict[str, Any]) -> None:
    from features.io import atomic_file
    from serving.portfolio import first_invoices
    from serving.report import render_html

    figures = json.loads((run / "report.json").read_text())
    figures["monitoring"] = monitoring
    with atomic_file(run / "report.json") as tmp:
        tmp.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    with atomic_file(run / "report.html") as tmp:
        tmp.write_text(render_html(figures, first_invoices(run), run))


def _log(result: dict[str, Any], version: str, run: Path) -> str:
    import mlflow

    from training.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    model = client.get_model_version("creditguard-default", version)
    training_run = client.get_run(model.run_id) if model.run_id else None
    experiment = training_run.info.experiment_id if training_run else None
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"monitoring {result['as_of']}"
    ) as active:
        mlflow.set_tags(
            {
                "creditguard.kind": "monitoring",
                "creditguard.model": "creditguard-default",
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
