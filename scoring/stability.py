"""Population stability of the score (PSI) and of every feature (CSI), and realised default
rates per grade against the predicted PD (a binomial test per grade).

The training population is summarised at training time into the model bundle (`reference`:
decile edges and shares per feature and for the PD), so monitoring never needs the training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

BINS = 10
FLOOR = 1e-4  # share given to an empty bin, so that the index stays finite


def verdict(index: float) -> str:
    """The usual reading of a population stability index."""
    if not np.isfinite(index):
        return "n/a"
    return "stable" if index < 0.10 else "watch" if index < 0.25 else "shifted"


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
