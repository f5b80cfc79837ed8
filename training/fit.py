"""LightGBM fitting: regularised defaults, a budgeted optuna search with early stopping, and a
check that the fitted model really is monotone where the catalog says risk only goes one way."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from training.config import TrainConfig

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


@dataclass
class FitResult:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    validation_auc: float
    trials: list[dict[str, Any]]


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


def _train(
    params: dict[str, Any],
    cfg: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    categorical: list[int],
) -> tuple[lgb.Booster, float]:
    train = lgb.Dataset(x_train, y_train, categorical_feature=categorical, free_raw_data=False)
    valid = lgb.Dataset(x_val, y_val, reference=train, categorical_feature=categorical)
    booster = lgb.train(
        {**params, "metric": "auc"},
        train,
        num_boost_round=cfg.max_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    raw = booster.predict(x_val, raw_score=True, num_iteration=booster.best_iteration)
    auc = float(roc_auc_score(y_val, raw)) if len(np.unique(y_val)) == 2 else float("nan")
    return booster, auc


def fit_model(
    cfg: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    categorical: list[int],
    monotone: list[int] | None = None,
    progress: bool = False,
) -> FitResult:
    """Search hyper-parameters on the validation AUC (TPE, fixed seed, `cfg.n_trials` trials, the
    regularised defaults first) and return the best booster, cut at its best iteration.

    With more than `cfg.search_rows` training rows the search sees a seeded sample of them, and the
    winner is refitted on every row (there is then no full-data booster of the search to keep)."""
    base = _base_params(cfg)
    full_train, full_y = x_train, y_train
    sampled = len(y_train) > cfg.search_rows
    if sampled:
        keep = np.sort(
            np.random.default_rng(cfg.seed).choice(len(y_train), cfg.search_rows, replace=False)
        )
        x_train, y_train = x_train[keep], y_train[keep]
    if monotone is not None and any(monotone):
        base |= {
            "monotone_constraints": monotone,
            "monotone_constraints_method": cfg.monotone_method,
        }
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
    )
    study.enqueue_trial(DEFAULTS)
    boosters: dict[int, lgb.Booster] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {
            "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 400, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 50.0, log=True),
        }
        booster, auc = _train(
            base | params, cfg, x_train, y_train, x_val, y_val, categorical=categorical
        )
        trial.set_user_attr("best_iteration", booster.best_iteration)
        boosters[trial.number] = booster
        return auc if np.isfinite(auc) else 0.0

    bar = tqdm(total=cfg.n_trials, desc="search", unit="trial", disable=not progress)

    def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update()

    study.optimize(objective, n_trials=cfg.n_trials, callbacks=[advance])
    bar.close()
    best = study.best_trial
    booster = boosters[best.number]
    best_auc = float(best.value or float("nan"))
    params = base | best.params
    # The search runs at a coarse learning rate to fit its budget; the winner is refitted at a
    # finer one and kept only if the validation AUC agrees (always, when the search saw a sample).
    fine = {**params, "learning_rate": cfg.learning_rate * cfg.refit_learning_rate_factor}
    fine_cfg = replace(cfg, max_rounds=int(cfg.max_rounds / cfg.refit_learning_rate_factor))
    if cfg.refit_learning_rate_factor < 1 or sampled:
        refit, refit_auc = _train(
            fine, fine_cfg, full_train, full_y, x_val, y_val, categorical=categorical
        )
        if refit_auc > best_auc or sampled:
            booster, best_auc, params = refit, refit_auc, fine
    trials = [
        {"number": t.number, "auc": t.value, **t.params, **t.user_attrs} for t in study.trials
    ]
    # Keep only the trees up to the best iteration: the deployed model is exactly what was validated.
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    return FitResult(
        booster=booster,
        params=params,
        best_iteration=int(booster.num_trees()),
        validation_auc=best_auc,
        trials=trials,
    )


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
