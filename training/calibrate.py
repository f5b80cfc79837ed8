"""Fitting the calibration of raw scores into PDs: Platt, beta, isotonic or isotonic's blocks
interpolated in log-odds, chosen on the same
cross-fitted folds by log loss among the calibrators that keep the ranking (the calibrators
themselves live in `scoring.calibration`).

A calibrator that maps many clients to one PD (isotonic's steps) ties them: the best clients all
land on the lowest step and the top grades stay empty. A candidate whose largest share of rows at
one PD exceeds `MAX_TIE_SHARE` on the rows it was not fitted on is not chosen, whatever its log
loss; Platt and beta are strictly increasing and never tie.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from scoring.calibration import (
    BetaCalibrator,
    Calibrator,
    InterpolatedCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
)

MAX_TIE_SHARE = 0.02  # at most this share of rows may share one PD value
LOSS_TOLERANCE = 0.002  # cross-fitted log losses within 0.2 % of each other are a tie
FLEXIBILITY = ("isotonic_interpolated", "isotonic", "beta", "platt")  # most flexible first


def tie_share(pd_: np.ndarray, *, digits: int = 6) -> float:
    """The largest share of rows sharing one value (a PD rounded to 1e-6, as a report shows
    it; a raw score to more digits)."""
    if not len(pd_):
        return 0.0
    _, counts = np.unique(np.round(np.asarray(pd_, dtype="float64"), digits), return_counts=True)
    return float(counts.max() / len(pd_))


def _fit_platt(raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
    model = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
    return PlattCalibrator(a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))


def _fit_beta(raw: np.ndarray, y: np.ndarray) -> BetaCalibrator:
    """Logistic regression on (ln s, -ln(1 - s)); a coefficient that comes out negative is
    dropped and the other refitted (the map must increase with the score)."""
    x = np.column_stack([-np.logaddexp(0.0, -raw), np.logaddexp(0.0, raw)])
    model = LogisticRegression(C=1e6, max_iter=1000).fit(x, y)
    a, b = (float(v) for v in model.coef_[0])
    c = float(model.intercept_[0])
    if a < 0 or b < 0:
        keep = 1 if a < 0 else 0
        one = LogisticRegression(C=1e6, max_iter=1000).fit(x[:, [keep]], y)
        slope = max(float(one.coef_[0, 0]), 1e-6)
        a, b = (0.0, slope) if keep == 1 else (slope, 0.0)
        c = float(one.intercept_[0])
    return BetaCalibrator(a=a, b=b, c=c)


def _fit_isotonic(raw: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y)
    return IsotonicCalibrator(x=np.asarray(iso.X_thresholds_), y=np.asarray(iso.y_thresholds_))


def _fit_interpolated(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Isotonic's blocks, each at its rows' mean raw score and its rate in log-odds, joined by
    lines (`InterpolatedCalibrator`); with fewer than two blocks, Platt."""
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y)
    fitted = iso.predict(raw)
    blocks = pd.DataFrame({"raw": raw, "rate": fitted}).groupby("rate", sort=True)["raw"].mean()
    if len(blocks) < 2:
        return _fit_platt(raw, y)
    rate = blocks.index.to_numpy(dtype="float64")
    return InterpolatedCalibrator(
        x=blocks.to_numpy(dtype="float64"), logit=np.log(rate / (1.0 - rate))
    )


FITTERS: dict[str, Callable[[np.ndarray, np.ndarray], Calibrator]] = {
    "platt": _fit_platt,
    "beta": _fit_beta,
    "isotonic": _fit_isotonic,
    "isotonic_interpolated": _fit_interpolated,
}


def fit_calibrator(
    raw: np.ndarray, y: np.ndarray, *, seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """Fit every candidate on the validation scores and keep the one with the lowest
    cross-fitted log loss among those that tie at most `MAX_TIE_SHARE` of the rows (within
    `LOSS_TOLERANCE` of it, the most flexible).

    Each method is judged on halves it was not fitted on (2-fold, twice), since isotonic would
    always win on its own fitting data; the same halves for every method.
    """
    rng = np.random.default_rng(seed)
    losses = dict.fromkeys(FITTERS, 0.0)
    ties = dict.fromkeys(FITTERS, 0.0)
    for _ in range(2):
        half = rng.random(len(y)) < 0.5
        for fit_mask in (half, ~half):
            if len(np.unique(y[fit_mask])) < 2 or len(np.unique(y[~fit_mask])) < 2:
                continue
            for name, fit in FITTERS.items():
                p = np.clip(fit(raw[fit_mask], y[fit_mask]).predict(raw[~fit_mask]), 1e-6, 1 - 1e-6)
                losses[name] += log_loss(y[~fit_mask], p, labels=[0, 1])
                ties[name] = max(ties[name], tie_share(p))
    # a calibrator may not tie more rows than the raw score itself does (a booster's best leaves
    # tie clients whatever the calibration: the blend with the scorecard is there to split them)
    allowed = max(MAX_TIE_SHARE, tie_share(raw, digits=9) + 0.001)
    keeping = [name for name in FITTERS if ties[name] <= allowed] or ["platt"]
    # Within `LOSS_TOLERANCE` of the best log loss the candidates are as good on average; the
    # more flexible one then fits the tails better (the best clients' PDs, where grades 1-3
    # are, and the worst's), which a log loss dominated by the middle hardly sees.
    lowest = min(losses[name] for name in keeping)
    close = [name for name in keeping if losses[name] <= lowest * (1 + LOSS_TOLERANCE)]
    best = min(close, key=FLEXIBILITY.index)
    calibrator = FITTERS[best](raw, y)
    info = {f"calibration_cv_logloss_{k}": v / 4 for k, v in losses.items()}
    info |= {f"calibration_tie_share_{k}": v for k, v in ties.items()}
    return calibrator, info
