"""Validation plots: ROC, calibration, gains, SHAP summary and importance, PD per grade."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test window)")
    ax.legend()
    return _save(fig, path)


def plot_calibration(y: np.ndarray, p: np.ndarray, path: Path, *, bins: int = 10) -> Path:
    order = np.argsort(p)
    groups = [g for g in np.array_split(order, bins) if len(g)]
    mean_p = [p[g].mean() for g in groups]
    rate = [y[g].mean() for g in groups]
    fig, ax = plt.subplots(figsize=(5, 5))
    top = max(max(mean_p), max(rate)) * 1.1
    ax.plot([0, top], [0, top], "k:", lw=1)
    ax.plot(mean_p, rate, "o-")
    ax.set(xlabel="mean predicted PD", ylabel="observed rate", title="Calibration (test window)")
    return _save(fig, path)


def plot_gains(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    order = np.argsort(-p)
    captured = np.cumsum(y[order]) / max(1, y.sum())
    share = np.arange(1, len(y) + 1) / len(y)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(share, captured, label="model")
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="random")
    ax.set(
        xlabel="share of population (riskiest first)",
        ylabel="share of events captured",
        title="Gains",
    )
    ax.legend()
    return _save(fig, path)


def plot_grades(frame: pd.DataFrame, path: Path) -> Path:
    """Mean PD and observed rate per grade; `frame` has grade, pd and y."""
    g = frame.groupby("grade").agg(pd_mean=("pd", "mean"), observed=("y", "mean"), n=("y", "size"))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(g.index - 0.2, g["pd_mean"], width=0.4, label="mean PD")
    ax.bar(g.index + 0.2, g["observed"], width=0.4, label="observed rate")
    ax.set(xlabel="grade", ylabel="rate", title="PD per grade (test window)", xticks=range(1, 11))
    ax.legend()
    return _save(fig, path)


def plot_shap(contrib: np.ndarray, x: np.ndarray, names: list[str], folder: Path) -> list[Path]:
    """SHAP beeswarm and mean |SHAP| importance from exact TreeSHAP contributions."""
    import shap

    values = contrib[:, :-1]
    paths = []
    with warnings.catch_warnings():
        # shap's beeswarm jitters with NumPy's global RNG and warns about it once anything in the
        # process has seeded that RNG; the plot is the same either way.
        warnings.simplefilter("ignore", FutureWarning)
        shap.summary_plot(values, x, feature_names=names, show=False, max_display=20)
    paths.append(_save(plt.gcf(), folder / "shap_summary.png"))
    importance = pd.Series(np.abs(values).mean(axis=0), index=names).sort_values().tail(20)
    fig, ax = plt.subplots(figsize=(6, 6))
    importance.plot.barh(ax=ax)
    ax.set(xlabel="mean |SHAP| (log-odds)", title="Feature importance")
    paths.append(_save(fig, folder / "shap_importance.png"))
    return paths
