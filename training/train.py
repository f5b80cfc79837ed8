"""Training end to end, without tracking: split, search, fit, check, calibrate, evaluate, benchmark.

Two ways to judge a model, one function each: `train_out_of_time` for a table with a time column
(the ledger models: trained on the earliest dates, validated on the next, tested on the latest),
`train_cross_validated` for a table without one (stratified k-fold). `train_model` picks by the
spec; both end in the same `TrainResult`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import MasterScale, ModelBundle
from scoring.reasons import typical_values
from scoring.stability import population_reference
from training.calibrate import fit_calibrator
from training.config import TrainConfig
from training.evaluate import evaluate, evaluate_segments
from training.fit import FitResult, MonotonicityError, check_monotone, fit_model, fit_model_cv
from training.scorecard import fit_scorecard, predict_scorecard
from training.specs import ModelSpec
from training.split import split_by_time, stratified_folds

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Everything a training run produced, ready to be logged."""

    bundle: ModelBundle
    spec: ModelSpec
    metrics: dict[str, float]
    scorecard_metrics: dict[str, float]
    # evaluation rows: y, pd, raw_score, grade, scorecard
    predictions: pd.DataFrame
    evaluation_rows: pd.DataFrame  # the evaluation rows, every column, for promotion
    segments: pd.DataFrame
    trials: list[dict[str, Any]]
    data_hash: str
    profile: dict[str, Any]
    fit: FitResult


@dataclass
class _Evaluated:
    """A fitted bundle and how it scored on rows it never learned from."""

    bundle: ModelBundle
    fit: FitResult
    evaluation: pd.DataFrame  # the rows judged
    raw: np.ndarray  # their raw scores, PDs and the scorecard's PDs
    pd_: np.ndarray
    scorecard_pd: np.ndarray
    population: pd.DataFrame  # the training population, for monitoring's reference
    split_info: dict[str, object]


def data_hash(table: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, table.columns)).encode()).hexdigest()


def usable_rows(table: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Rows a model may learn from: known outcome (not censored), not already in default."""
    keep = table[spec.target].notna()
    if "censored" in table:
        keep &= ~table["censored"].astype(bool)
    if "defaulted_before" in table:
        keep &= ~table["defaulted_before"].astype(bool)
    return table[keep].reset_index(drop=True)


def _bundle(spec: ModelSpec, table: pd.DataFrame) -> ModelBundle:
    """An unfitted bundle that knows the feature order, the fixed category codes and the
    features' wording."""
    categories = {
        c: sorted(table[c].dropna().astype("str").unique().tolist()) for c in spec.categorical
    }
    return ModelBundle(
        name=spec.name,
        target=spec.target,
        model_string="",
        features=list(spec.features),
        categories=categories,
        calibrator=None,  # type: ignore[arg-type]  # set once the booster is fitted
        master_scale=MasterScale.load(),
        catalog={s.name: s for s in spec.catalog() if s.name in spec.features},
    )


def _fit_one(
    cfg: TrainConfig,
    spec: ModelSpec,
    bundle: ModelBundle,
    train: pd.DataFrame,
    val: pd.DataFrame | None,
    *,
    progress: bool,
) -> tuple[ModelBundle, FitResult]:
    """Search, fit, check and calibrate one model: on `train` with `val` as the out-of-time
    validation window, or, with `val` None (a table without a time column), by k-fold CV within
    `train`, the deployed booster then learning from every row of it."""
    x_train = bundle.matrix(train)
    y_train = train[spec.target].to_numpy(dtype=int)
    categorical = [spec.features.index(c) for c in spec.categorical]
    monotone = [
        int(spec.directions.get(f, 0)) if f not in spec.categorical else 0 for f in spec.features
    ]
    use_monotone = cfg.monotone and any(monotone)
    constraints = monotone if use_monotone else None
    if val is None:
        fit, out_of_fold = fit_model_cv(
            cfg, x_train, y_train, categorical=categorical, monotone=constraints, progress=progress
        )
        # every row's score from a fold model that did not learn from it
        calibrator, calib_info = fit_calibrator(out_of_fold, y_train, seed=cfg.seed)
        x_check = x_train
    else:
        x_val, y_val = bundle.matrix(val), val[spec.target].to_numpy(dtype=int)
        fit = fit_model(
            cfg,
            x_train,
            y_train,
            x_val,
            y_val,
            categorical=categorical,
            monotone=constraints,
            progress=progress,
        )
        # The booster never learns from the validation window: its snapshots are the test clients
        # a few months earlier, with outcome windows reaching into the test period, so learning
        # from them leaks test labels (it lifted the demo's default AUC from 0.83 to 0.95).
        raw_val = fit.booster.predict(x_val, raw_score=True, num_threads=cfg.threads)
        calibrator, calib_info = fit_calibrator(np.asarray(raw_val), y_val, seed=cfg.seed)
        x_check = x_val if len(x_val) > 50 else x_train
    if use_monotone:
        try:
            check_monotone(fit.booster, x_check, monotone, spec.features)
        except MonotonicityError as error:
            if cfg.monotone_method == "basic":
                raise
            log.warning("%s; refitting with LightGBM's basic monotone method", error)
            return _fit_one(
                replace(cfg, monotone_method="basic"), spec, bundle, train, val, progress=progress
            )
    fitted = replace(
        bundle,
        model_string=fit.booster.model_to_string(),
        calibrator=calibrator,
        metadata={
            "calibration": calibrator.method,
            "search": "out-of-time validation" if val is not None else f"{cfg.cv_folds}-fold CV",
            "monotone_method": cfg.monotone_method if use_monotone else "",
            **calib_info,
        },
    )
    return fitted, fit


def _size_band(frame: pd.DataFrame) -> pd.Series:
    volume = frame.get("invoice_amount_365", pd.Series(np.nan, index=frame.index))
    bands = pd.cut(volume, [-np.inf, 50_000, 500_000, np.inf], labels=["small", "medium", "large"])
    return bands.astype(object).fillna("unknown")


def _purge(part: pd.Series, times: pd.Series, gap: pd.Timedelta) -> pd.Series:
    """Drop ("gap") the rows whose as_of lies within `gap` before the start of the next part."""
    out = part.copy()
    for earlier, later in (("train", "validation"), ("validation", "test")):
        starts = times[part == later]
        if starts.empty:
            continue
        out[(part == earlier) & (times > starts.min() - gap)] = "gap"
    return out


def _split_parts(times: pd.Series, cfg: TrainConfig, test_from: object | None) -> pd.Series:
    """'train' / 'validation' / 'test' (and 'gap') per row, by date."""
    if test_from is None:
        part = split_by_time(
            times, validation_fraction=cfg.validation_fraction, test_fraction=cfg.test_fraction
        )
    else:
        early = times < pd.Timestamp(test_from)
        share = cfg.validation_fraction / (1 - cfg.test_fraction)
        part = pd.Series("test", index=times.index)
        part[early] = split_by_time(
            times[early], validation_fraction=share, test_fraction=0.0
        ).to_numpy()
    if cfg.gap_days > 0:
        part = _purge(part, times, pd.Timedelta(days=cfg.gap_days))
    return part


def train_out_of_time(
    rows: pd.DataFrame,
    spec: ModelSpec,
    cfg: TrainConfig,
    base: ModelBundle,
    *,
    test_from: object | None = None,
    progress: bool = False,
) -> _Evaluated:
    """Train on the earliest dates, search and calibrate on the next, test on the latest.

    `test_from` fixes the start of the test window (default: the last `cfg.test_fraction` of the
    dates); the dates before it are split into train and validation."""
    assert spec.time_column is not None
    times = rows[spec.time_column]
    part = _split_parts(times, cfg, test_from)
    train, val, test = (rows[part == p] for p in ("train", "validation", "test"))
    if train.empty or val.empty or test.empty or train[spec.target].nunique() < 2:
        raise ValueError(
            f"the out-of-time split left too few rows (train {len(train):,}, validation "
            f"{len(val):,}, test {len(test):,}); use more snapshot dates or a smaller gap_days "
            f"(now {cfg.gap_days})"
        )
    bundle, fit = _fit_one(cfg, spec, base, train, val, progress=progress)
    raw = bundle.raw_score(bundle.matrix(test), threads=cfg.threads)
    card_rows = (
        train.sample(cfg.search_rows, random_state=cfg.seed)
        if len(train) > cfg.search_rows
        else train
    )
    card = fit_scorecard(
        card_rows[spec.features],
        card_rows[spec.target].to_numpy(int),
        categorical=spec.categorical,
        directions=spec.directions,
    )
    split_info: dict[str, object] = {
        f"rows_{k}": float(len(v))
        for k, v in (("train", train), ("validation", val), ("test", test))
    }
    split_info |= {
        "gap_days": float(cfg.gap_days),
        "rows_gap": float((part == "gap").sum()),
        "test_from": str(pd.Timestamp(test[spec.time_column].min()).date()),
        "validation_from": str(pd.Timestamp(val[spec.time_column].min()).date()),
    }
    return _Evaluated(
        bundle=bundle,
        fit=fit,
        evaluation=test,
        raw=raw,
        pd_=bundle.probability(raw),
        scorecard_pd=predict_scorecard(card, test[spec.features], categorical=spec.categorical),
        population=train,
        split_info=split_info,
    )


def train_cross_validated(
    rows: pd.DataFrame,
    spec: ModelSpec,
    cfg: TrainConfig,
    base: ModelBundle,
    *,
    progress: bool = False,
) -> _Evaluated:
    """Stratified k-fold: every row is judged by a model trained, exactly as the deployed one is,
    on the other folds; the deployed model then learns from every row."""
    y_all = rows[spec.target].astype(int)
    raw, p, card_p = (np.zeros(len(rows)) for _ in range(3))
    for train_idx, test_idx in stratified_folds(y_all, folds=cfg.cv_folds, seed=cfg.seed):
        # each fold's model is trained exactly as the deployed one: CV within its training part
        fold_bundle, _ = _fit_one(cfg, spec, base, rows.iloc[train_idx], None, progress=progress)
        raw[test_idx] = fold_bundle.raw_score(
            fold_bundle.matrix(rows.iloc[test_idx]), threads=cfg.threads
        )
        p[test_idx] = fold_bundle.probability(raw[test_idx])
        card = fit_scorecard(
            rows.iloc[train_idx][spec.features],
            y_all.iloc[train_idx].to_numpy(),
            categorical=spec.categorical,
            directions=spec.directions,
        )
        card_p[test_idx] = predict_scorecard(
            card, rows.iloc[test_idx][spec.features], categorical=spec.categorical
        )
    bundle, fit = _fit_one(cfg, spec, base, rows, None, progress=progress)
    return _Evaluated(
        bundle=bundle,
        fit=fit,
        evaluation=rows,
        raw=raw,
        pd_=p,
        scorecard_pd=card_p,
        population=rows,
        split_info={"rows_train": float(len(rows)), "cv_folds": float(cfg.cv_folds)},
    )


def train_model(
    table: pd.DataFrame,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    test_from: object | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train, calibrate and evaluate one model: out-of-time when the spec has a time column,
    stratified k-fold otherwise (see the two functions above)."""
    rows = usable_rows(table, spec)
    if rows[spec.target].nunique() < 2:
        raise ValueError(f"{spec.target} has a single class in the usable rows; nothing to learn")
    base = _bundle(spec, rows)
    if spec.time_column is not None:
        done = train_out_of_time(rows, spec, cfg, base, test_from=test_from, progress=progress)
    else:
        done = train_cross_validated(rows, spec, cfg, base, progress=progress)
    return _result(table, rows, spec, cfg, done)


def _result(
    table: pd.DataFrame, rows: pd.DataFrame, spec: ModelSpec, cfg: TrainConfig, done: _Evaluated
) -> TrainResult:
    """Metrics, segments, the population reference and the profile of a trained model."""
    bundle, evaluation = done.bundle, done.evaluation
    y = evaluation[spec.target].to_numpy(dtype=int)
    predictions = pd.DataFrame(
        {
            "y": y,
            "pd": done.pd_,
            "raw_score": done.raw,
            "grade": bundle.master_scale.grade(done.pd_),
            "scorecard": done.scorecard_pd,
        }
    )
    segments = pd.DataFrame()
    if spec.segment_columns:
        seg_cols = {
            c: (_size_band(evaluation) if c == "size_band" else evaluation[c]).reset_index(
                drop=True
            )
            for c in spec.segment_columns
            if c == "size_band" or c in evaluation
        }
        segments = evaluate_segments(predictions, y="y", p="pd", segments=seg_cols)
    population = done.population
    sample = population.sample(min(len(population), 200_000), random_state=cfg.seed)
    sample_pd = bundle.probability(bundle.raw_score(bundle.matrix(sample), threads=cfg.threads))
    bundle.metadata |= {
        # the training population, binned, for monitoring (PSI of the PD, CSI of each feature)
        "reference": population_reference(sample, spec.features, spec.categorical, sample_pd),
        # what a reason compares a client's value with: the good grades' typical value
        "typical": typical_values(
            sample, spec.features, spec.categorical, bundle.master_scale.grade(sample_pd)
        ),
        "unit": spec.unit,
        "best_iteration": done.fit.best_iteration,
        "validation_auc": done.fit.validation_auc,
        **done.split_info,
    }
    profile = {
        "rows": len(table),
        "usable_rows": len(rows),
        "target_rate": float(rows[spec.target].mean()),
        "features": len(spec.features),
        "categorical": spec.categorical,
        "missing_share": {c: float(rows[c].isna().mean()) for c in spec.features},
        **done.split_info,
    }
    return TrainResult(
        bundle=bundle,
        spec=spec,
        metrics=evaluate(y, done.pd_),
        scorecard_metrics=evaluate(y, done.scorecard_pd),
        predictions=predictions,
        evaluation_rows=evaluation.reset_index(drop=True),
        segments=segments,
        trials=done.fit.trials,
        data_hash=data_hash(table),
        profile=profile,
        fit=done.fit,
    )
