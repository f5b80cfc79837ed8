"""Validation metrics of a PD model: discrimination, calibration, capture and lift, by segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean PD| over equal-count bins of the PD."""
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    err = 0.0
    for chunk in np.array_split(order, min(bins, len(y))):
        if len(chunk):
            err += len(chunk) * abs(float(y[chunk].mean()) - float(p[chunk].mean()))
    return err / len(y)


def _capture(y: np.ndarray, p: np.ndarray, top: float) -> tuple[float, float]:
    n = max(1, int(np.ceil(len(y) * top)))
    chosen = np.argsort(-p, kind="stable")[:n]
    captured = y[chosen].sum() / max(1, y.sum())
    return float(captured), float(captured / top)


def evaluate(y: np.ndarray | pd.Series, p: np.ndarray | pd.Series) -> dict[str, float]:
    """Headline metrics; AUC-based ones are NaN when only one class is present."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    auc = float(roc_auc_score(y, p)) if both else float("nan")
    ks = float("nan")
    if both:
        fpr, tpr, _ = roc_curve(y, p)
        ks = float(np.max(tpr - fpr))
    cap10, lift10 = _capture(y, p, 0.10)
    cap4, lift4 = _capture(y, p, 0.04)
    return {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks,
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]))
        if len(y)
        else float("nan"),
        "ece": expected_calibration_error(y, p),
        "capture_top10": cap10,
        "lift_top10": lift10,
        "capture_top4": cap4,
        "lift_top4": lift4,
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "rows": float(len(y)),
    }


def evaluate_segments(
    frame: pd.DataFrame, *, y: str, p: str, segments: dict[str, pd.Series]
) -> pd.DataFrame:
    """Metrics per level of each segmenting column (industry, country, size band, thin file...)."""
    rows = []
    for name, values in segments.items():
        for level, idx in frame.groupby(values.to_numpy(), dropna=False).groups.items():
            part = frame.loc[idx]
            rows.append({"segment": name, "level": str(level), **evaluate(part[y], part[p])})
    return pd.DataFrame(rows)
