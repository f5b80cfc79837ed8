"""Training end to end, without tracking: split, search, fit, check, calibrate, evaluate, benchmark."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from features.pipeline import feature_specs
from serving.bundle import MasterScale, ModelBundle
from serving.monitor import population_reference
from training.calibrate import fit_calibrator
from training.config import TrainConfig
from training.evaluate import evaluate, evaluate_segments
from training.fit import FitResult, MonotonicityError, check_monotone, fit_model, fit_model_cv
from training.scorecard import fit_scorecard, predict_scorecard
from training.split import split_by_time, stratified_folds

log = logging.getLogger(__name__)

KEY_COLUMNS = {
    "client_id",
    "invoice_id",
    "as_of",
    "censored",
    "defaulted_before",
    "default_12m",
    "late",
}


@dataclass(frozen=True)
class ModelSpec:
    """What a model predicts, from which columns, and what the data scientist should know of it."""

    name: str
    target: str
    time_column: str | None
    features: list[str]
    categorical: list[str]
    directions: dict[str, int]
    purpose: str
    unit: str = "table"
    segment_columns: tuple[str, ...] = ()


def ledger_spec(model: Literal["default", "late"]) -> ModelSpec:
    """The two ledger models and their catalogs."""
    unit: Literal["client", "invoice"] = "client" if model == "default" else "invoice"
    specs: list[FeatureSpec] = feature_specs(unit)
    return ModelSpec(
        name=f"creditguard-{model}",
        target="default_12m" if model == "default" else "late",
        time_column="as_of",
        features=[s.name for s in specs],
        categorical=[s.name for s in specs if s.categorical],
        directions={s.name: s.direction for s in specs if s.direction},
        purpose=(
            "Probability that a client defaults (90+ days past due, write-off or insolvency) within 12 months."
            if model == "default"
            else "Probability that an invoice is paid after its due date (plus grace), scored at issue."
        ),
        unit=unit,
        segment_columns=("industry", "country", "size_band", "thin_file"),
    )


def table_spec(
    table: pd.DataFrame, *, target: str, time_column: str | None, name: str
) -> ModelSpec:
    """A spec for any table a data scientist brings: every other column is a feature."""
    if target not in table.columns:
        raise KeyError(
            f"target column {target!r} is not in the table (columns: {', '.join(table.columns[:10])}...)"
        )
    if time_column is not None and time_column not in table.columns:
        raise KeyError(f"time column {time_column!r} is not in the table")
    drop = {target, time_column, "ID", "id"} | KEY_COLUMNS
    features = [c for c in table.columns if c not in drop]
    categorical = [
        c
        for c in features
        if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])
    ]
    return ModelSpec(
        name=name,
        target=target,
        time_column=time_column,
        features=features,
        categorical=categorical,
        directions={},
        purpose=f"Probability of {target} = 1.",
    )


@dataclass
class TrainResult:
    """Everything a training run produced, ready to be logged."""

    bundle: ModelBundle
    spec: ModelSpec
    metrics: dict[str, float]
    scorecard_metrics: dict[str, float]
    predictions: (
        pd.DataFrame
    )  # evaluation rows: y, pd, raw_score, grade, scorecard (+ time, segments)
    evaluation_rows: pd.DataFrame  # the evaluation window's rows, every column, for promotion
    segments: pd.DataFrame
    trials: list[dict[str, Any]]
    data_hash: str
    profile: dict[str, Any]
    fit: FitResult
    extra: dict[str, Any] = field(default_factory=dict)


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
    """An unfitted bundle that knows the feature order and the fixed category codes."""
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
        spec.directions.get(f, 0) if f not in spec.categorical else 0 for f in spec.features
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
    booster = fit.booster
    if use_monotone:
        try:
            check_monotone(booster, x_check, monotone, spec.features)
        except MonotonicityError as error:
            if cfg.monotone_method == "basic":
                raise
            log.warning("%s; refitting with LightGBM's basic monotone method", error)
            return _fit_one(
                replace(cfg, monotone_method="basic"), spec, bundle, train, val, progress=progress
            )
    fitted = ModelBundle(
        **{
            **bundle.__dict__,
            "model_string": booster.model_to_string(),
            "_booster": None,
            "_trees": None,
        }
    )
    fitted.calibrator = calibrator
    fitted.metadata = {
        "calibration": calibrator.method,
        "search": "out-of-time validation" if val is not None else f"{cfg.cv_folds}-fold CV",
        "monotone_method": cfg.monotone_method if use_monotone else "",
        **calib_info,
    }
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


def train_model(
    table: pd.DataFrame,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    test_from: object | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train, calibrate and evaluate one model; out-of-time when the spec has a time column,
    stratified k-fold otherwise (the deployed model then learns from all rows).

    `test_from` fixes the start of the out-of-time test window (default: the last
    `cfg.test_fraction` of the dates); the dates before it are split into train and validation.
    """
    rows = usable_rows(table, spec)
    if rows[spec.target].nunique() < 2:
        raise ValueError(f"{spec.target} has a single class in the usable rows; nothing to learn")
    base = _bundle(spec, rows)
    if spec.time_column is not None:
        times = rows[spec.time_column]
        if test_from is None:
            part = split_by_time(
                times, validation_fraction=cfg.validation_fraction, test_fraction=cfg.test_fraction
            )
        else:
            early = times < pd.Timestamp(test_from)
            share = cfg.validation_fraction / (1 - cfg.test_fraction)
            part = pd.Series("test", index=rows.index)
            part[early] = split_by_time(
                times[early], validation_fraction=share, test_fraction=0.0
            ).to_numpy()
        if cfg.gap_days > 0:
            part = _purge(part, times, pd.Timedelta(days=cfg.gap_days))
        train, val, test = (rows[part == p] for p in ("train", "validation", "test"))
        population = train
        if train.empty or val.empty or test.empty or train[spec.target].nunique() < 2:
            raise ValueError(
                f"the out-of-time split left too few rows (train {len(train):,}, validation "
                f"{len(val):,}, test {len(test):,}); use more snapshot dates or a smaller gap_days "
                f"(now {cfg.gap_days})"
            )
        bundle, fit = _fit_one(cfg, spec, base, train, val, progress=progress)
        evaluation = test
        raw = bundle.raw_score(bundle.matrix(test), threads=cfg.threads)
        p = bundle.probability(raw)
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
        card_p = predict_scorecard(card, test[spec.features], categorical=spec.categorical)
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
    else:
        y_all = rows[spec.target].astype(int)
        raw, p, card_p = (np.zeros(len(rows)) for _ in range(3))
        for train_idx, test_idx in stratified_folds(y_all, folds=cfg.cv_folds, seed=cfg.seed):
            # each fold's model is trained exactly as the deployed one: CV within its training part
            fold_bundle, _ = _fit_one(
                cfg, spec, base, rows.iloc[train_idx], None, progress=progress
            )
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
        evaluation = rows
        population = rows
        split_info = {"rows_train": float(len(rows)), "cv_folds": float(cfg.cv_folds)}

    y = evaluation[spec.target].to_numpy(dtype=int)
    metrics = evaluate(y, p)
    predictions = pd.DataFrame(
        {
            "y": y,
            "pd": p,
            "raw_score": raw,
            "grade": bundle.master_scale.grade(p),
            "scorecard": card_p,
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
    sample = population.sample(min(len(population), 200_000), random_state=cfg.seed)
    bundle.metadata |= {
        # the training population, binned, for monitoring (PSI of the PD, CSI of each feature)
        "reference": population_reference(
            sample,
            spec.features,
            spec.categorical,
            bundle.probability(bundle.raw_score(bundle.matrix(sample), threads=cfg.threads)),
        ),
        "unit": spec.unit,
        "best_iteration": fit.best_iteration,
        "validation_auc": fit.validation_auc,
        **split_info,
    }
    profile = {
        "rows": len(table),
        "usable_rows": len(rows),
        "target_rate": float(rows[spec.target].mean()),
        "features": len(spec.features),
        "categorical": spec.categorical,
        "missing_share": {c: float(rows[c].isna().mean()) for c in spec.features},
        **split_info,
    }
    return TrainResult(
        bundle=bundle,
        spec=spec,
        metrics=metrics,
        scorecard_metrics=evaluate(y, card_p),
        predictions=predictions,
        evaluation_rows=evaluation.reset_index(drop=True),
        segments=segments,
        trials=fit.trials,
        data_hash=data_hash(table),
        profile=profile,
        fit=fit,
    )
