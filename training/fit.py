"""LightGBM fitting: regularised defaults, a budgeted optuna search scored by k-fold CV with early
stopping (grouped by client where there are clients), and a check that the fitted model really is
monotone where risk only goes one way."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
from tqdm import tqdm

from training.config import TrainConfig
from training.split import stratified_folds

# Regularised defaults: small trees, many rows per leaf, shrinkage; they also hold on small data.
DEFAULTS: dict[str, Any] = {
    "num_leaves": 15,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
}


class MonotonicityError(ValueError):
    """The fitted model breaks a monotone constraint; the message names the feature."""


Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class FitResult:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    validation_auc: float
    trials: list[dict[str, Any]]
    folds: Folds | None = None  # the CV folds (table mode), for the other candidates' scores


def _base_params(cfg: TrainConfig) -> dict[str, Any]:
    return {
        "objective": "binary",
        "learning_rate": cfg.learning_rate,
        "bagging_freq": 1,
        "max_bin": 255,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.threads,
        "verbosity": -1,
        "max_cat_to_onehot": 8,
        "cat_smooth": 10.0,
    }


def _space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 400, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 50.0, log=True),
    }


def _search(
    cfg: TrainConfig, score: Callable[[dict[str, Any]], tuple[float, int, Any]], *, progress: bool
) -> tuple[optuna.trial.FrozenTrial, Any, list[dict[str, Any]]]:
    """TPE over `_space` (fixed seed, `cfg.n_trials` trials, the regularised defaults first);
    `score` trains one candidate and returns its AUC, its best iteration and whatever the caller
    keeps of it. Returns the best trial, what `score` kept of it, and every trial as a row."""
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
    )
    study.enqueue_trial(DEFAULTS)
    kept: dict[int, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        auc, rounds, kept[trial.number] = score(_space(trial))
        trial.set_user_attr("best_iteration", rounds)
        return auc if np.isfinite(auc) else 0.0

    bar = tqdm(total=cfg.n_trials, desc="search", unit="trial", disable=not progress)

    def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update()

    study.optimize(objective, n_trials=cfg.n_trials, callbacks=[advance])
    bar.close()
    trials = [
        {"number": t.number, "auc": t.value, **t.params, **t.user_attrs} for t in study.trials
    ]
    return study.best_trial, kept[study.best_trial.number], trials


def _constrained(cfg: TrainConfig, monotone: list[int] | None) -> dict[str, Any]:
    base = _base_params(cfg)
    if monotone is not None and any(monotone):
        base |= {
            "monotone_constraints": monotone,
            "monotone_constraints_method": cfg.monotone_method,
        }
    return base


def _search_sample(cfg: TrainConfig, rows: int) -> np.ndarray:
    """The sorted positions of the seeded `cfg.search_rows` rows a large table's search sees."""
    return np.sort(np.random.default_rng(cfg.seed).choice(rows, cfg.search_rows, replace=False))


def _fine(cfg: TrainConfig, params: dict[str, Any]) -> tuple[dict[str, Any], TrainConfig]:
    """The winner's parameters at the refit's finer learning rate, with room for more rounds."""
    fine = {**params, "learning_rate": cfg.learning_rate * cfg.refit_learning_rate_factor}
    return fine, replace(cfg, max_rounds=int(cfg.max_rounds / cfg.refit_learning_rate_factor))


def _cross_validate(
    params: dict[str, Any],
    cfg: TrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    *,
    categorical: list[int],
) -> tuple[float, int, np.ndarray]:
    """k-fold CV with early stopping on the folds' mean AUC: that AUC, the common best iteration,
    and every row's raw score from the fold model that did not learn from it."""
    data = lgb.Dataset(x, y, categorical_feature=categorical, free_raw_data=False)
    result = lgb.cv(
        {**params, "metric": "auc"},
        data,
        num_boost_round=cfg.max_rounds,
        folds=folds,
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        return_cvbooster=True,
    )
    models = result["cvbooster"]
    curve = result["valid auc-mean"]
    assert isinstance(models, lgb.CVBooster) and isinstance(curve, list)
    rounds = int(models.best_iteration)
    out_of_fold = np.zeros(len(y))
    for booster, (_, held) in zip(models.boosters, folds, strict=True):
        out_of_fold[held] = booster.predict(x[held], raw_score=True, num_iteration=rounds)
    return float(curve[rounds - 1]), rounds, out_of_fold


def fit_model_cv(
    cfg: TrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    *,
    categorical: list[int],
    monotone: list[int] | None = None,
    groups: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[FitResult, np.ndarray]:
    """Each trial is scored by stratified `cfg.cv_folds`-fold CV, so the choice rests on every
    row rather than one held-out part; the winner is cross-validated
    again at the fine learning rate (kept if its AUC agrees), and the deployed booster learns from
    every row, its tree count the folds' best iteration scaled up by the rows it gains. Returns
    the fit and every row's out-of-fold raw score, for calibration. With `groups`, no group has
    rows on both sides of a fold.

    With more than `cfg.search_rows` rows the search sees a seeded sample; the fine CV, whose
    out-of-fold scores calibrate the model, always sees every row."""
    base = _constrained(cfg, monotone)
    folds = stratified_folds(y, folds=cfg.cv_folds, seed=cfg.seed, groups=groups)
    sampled = len(y) > cfg.search_rows
    x_search, y_search, search_folds = x, y, folds
    if sampled:
        keep = _search_sample(cfg, len(y))
        x_search, y_search = x[keep], y[keep]
        search_folds = stratified_folds(
            y_search,
            folds=cfg.cv_folds,
            seed=cfg.seed,
            groups=groups[keep] if groups is not None else None,
        )

    def score(params: dict[str, Any]) -> tuple[float, int, np.ndarray]:
        return _cross_validate(
            base | params, cfg, x_search, y_search, search_folds, categorical=categorical
        )

    best, out_of_fold, trials = _search(cfg, score, progress=progress)
    best_auc = float(best.value or float("nan"))
    rounds = int(best.user_attrs["best_iteration"])
    params = base | best.params
    if cfg.refit_learning_rate_factor < 1 or sampled:
        fine, fine_cfg = _fine(cfg, params)
        fine_auc, fine_rounds, fine_out = _cross_validate(
            fine, fine_cfg, x, y, folds, categorical=categorical
        )
        if fine_auc > best_auc or sampled:
            params, best_auc, rounds, out_of_fold = fine, fine_auc, fine_rounds, fine_out
    k = len(folds)
    rounds = max(1, round(rounds * k / (k - 1)))
    data = lgb.Dataset(x, y, categorical_feature=categorical)
    booster = lgb.train(params, data, num_boost_round=rounds)
    fit = FitResult(
        booster=booster,
        params=params,
        best_iteration=rounds,
        validation_auc=best_auc,
        trials=trials,
        folds=folds,
    )
    return fit, out_of_fold


def check_monotone(
    booster: lgb.Booster,
    x: np.ndarray,
    monotone: list[int],
    names: list[str],
    *,
    rows: int = 300,
    grid: int = 16,
) -> None:
    """Vary each constrained feature over its quantiles on sample rows, everything else fixed, and
    fail if the raw score ever moves against the constraint."""
    rng = np.random.default_rng(0)
    sample = x[rng.choice(len(x), size=min(rows, len(x)), replace=False)]
    for j, direction in enumerate(monotone):
        if direction == 0:
            continue
        if not np.isfinite(x[:, j]).any():
            continue
        values = np.unique(np.nanquantile(x[:, j], np.linspace(0, 1, grid)))
        if len(values) < 2:
            continue
        stacked = np.repeat(sample, len(values), axis=0)
        stacked[:, j] = np.tile(values, len(sample))
        raw = np.asarray(booster.predict(stacked, raw_score=True)).reshape(len(sample), len(values))
        steps = np.diff(raw, axis=1) * direction
        if (steps < -1e-9).any():
            worst = float(steps.min())
            raise MonotonicityError(
                f"the model is not monotone in {names[j]} (constraint {direction:+d}): "
                f"the raw score moves {worst:.3g} the wrong way"
            )
