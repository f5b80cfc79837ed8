"""Fitting the calibration of raw scores into PDs: Platt or isotonic, chosen by cross-fitted log
loss (the calibrators themselves live in `scoring.calibration`)."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from scoring.calibration import IsotonicCalibrator, PlattCalibrator


def _fit_platt(raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
    model = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
    return PlattCalibrator(a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))


def _fit_isotonic(raw: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y)
    return IsotonicCalibrator(x=np.asarray(iso.X_thresholds_), y=np.asarray(iso.y_thresholds_))


def fit_calibrator(
    raw: np.ndarray, y: np.ndarray, *, seed: int = 0
) -> tuple[PlattCalibrator | IsotonicCalibrator, dict[str, float]]:
    """Fit both on the validation scores and keep the one with the lower cross-fitted log loss.

    Each method is judged on halves it was not fitted on (2-fold, twice), since isotonic would
    always win on its own fitting data.
    """
    rng = np.random.default_rng(seed)
    losses = {"platt": 0.0, "isotonic": 0.0}
    for _ in range(2):
        half = rng.random(len(y)) < 0.5
        for fit_mask in (half, ~half):
            if len(np.unique(y[fit_mask])) < 2 or len(np.unique(y[~fit_mask])) < 2:
                continue
            for name, fit in (("platt", _fit_platt), ("isotonic", _fit_isotonic)):
                p = np.clip(fit(raw[fit_mask], y[fit_mask]).predict(raw[~fit_mask]), 1e-6, 1 - 1e-6)
                losses[name] += log_loss(y[~fit_mask], p, labels=[0, 1])
    best = "isotonic" if losses["isotonic"] < losses["platt"] else "platt"
    calibrator = _fit_isotonic(raw, y) if best == "isotonic" else _fit_platt(raw, y)
    return calibrator, {f"calibration_cv_logloss_{k}": v / 4 for k, v in losses.items()}
