"""Training end to end, without tracking: split, search, fit, check, calibrate, evaluate, benchmark.

Two ways to judge a model, one function each: `train_out_of_time` for a table with a time column
(the ledger models: trained on the earliest dates, validated on the next, tested on the latest,
each window on its own clients), `train_cross_validated` for a table without one (stratified
k-fold, grouped when the table has a group column). `train_model` picks by the spec; both end in
the same `TrainResult`.

Why the clients are held out, not only the dates: a client's snapshots are nearly alike from one
month to the next and its static values (registered capital, age, revenue) nearly identify it,
while consecutive snapshots' 12-month outcome windows overlap. Trained and tested on the same
clients, a model learns who defaults and is judged on those same clients a few months later: the
demo's champion scored 0.85 AUC on its own clients and 0.77 on another ledger's (issue 22).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.errors import InputError
from scoring.bundle import MasterScale, ModelBundle
from scoring.reasons import typical_values
from scoring.scorecard import Scorecard
from scoring.stability import population_reference
from training.calibrate import MAX_TIE_SHARE, fit_calibrator, tie_share
from training.config import TrainConfig
from training.directions import infer_directions
from training.evaluate import evaluate, evaluate_segments
from training.fit import FitResult, MonotonicityError, check_monotone, fit_model_cv
from training.scorecard import fit_scorecard, plain_scorecard
from training.specs import ModelSpec
from training.split import held_out_groups, stratified_folds

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
    # the same metrics on the training clients' rows of the test window (ledger models): the
    # figure an out-of-time split on the same clients reports, beside the new clients' above
    same_client_metrics: dict[str, float] = field(default_factory=dict)
    # the groups (clients) the model learned from or was tuned on; none evaluates it
    learned_groups: list[str] = field(default_factory=list)


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
    same_client_metrics: dict[str, float] = field(default_factory=dict)
    learned_groups: list[str] = field(default_factory=list)


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


BLEND_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 1)  # the booster's weight in the blend, 0 to 1


def choose_blend(
    booster_raw: np.ndarray, card_raw: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The booster's weight in a log-odds blend with the scorecard that ranks `y` best (1: the
    booster alone, 0: the scorecard alone; a tie goes to the booster's side), and each candidate's
    AUC. `y` are rows neither candidate learned from."""
    if len(np.unique(y)) < 2:
        return 1.0, {}
    raws = [w * booster_raw + (1 - w) * card_raw for w in BLEND_WEIGHTS]
    aucs = [float(roc_auc_score(y, raw)) for raw in raws]
    # A raw score that ties many clients (every tree's best leaf) ties their PDs whatever the
    # calibration: a candidate that ties at most MAX_TIE_SHARE of the rows is preferred.
    spread = [i for i, raw in enumerate(raws) if tie_share(raw, digits=9) <= MAX_TIE_SHARE]
    best = max(spread or range(len(aucs)), key=lambda i: (round(aucs[i], 6), i))
    return float(BLEND_WEIGHTS[best]), {
        "booster_auc": aucs[-1],
        "scorecard_auc": aucs[0],
        "blend_auc": aucs[best],
        "blend_weight": float(BLEND_WEIGHTS[best]),
    }


def _scorecard(
    cfg: TrainConfig,
    spec: ModelSpec,
    bundle: ModelBundle,
    rows: pd.DataFrame,
    x: np.ndarray,
    directions: dict[str, int],
) -> Scorecard:
    """The scorecard fitted on `rows` (a seeded sample of a large table), as plain data."""
    if len(rows) > cfg.search_rows:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(rows), cfg.search_rows, False))
        rows, x = rows.iloc[keep], x[keep]
    card = fit_scorecard(
        rows[spec.features],
        rows[spec.target].to_numpy(int),
        categorical=spec.categorical,
        directions=directions,
    )
    return plain_scorecard(card, spec.features, bundle.categories, x)


def _directions(
    cfg: TrainConfig, spec: ModelSpec, train: pd.DataFrame, y: np.ndarray
) -> tuple[dict[str, int], dict[str, int]]:
    """Every feature's direction (given, else inferred from these training rows) and the
    inferred ones alone."""
    given = {name: int(d) for name, d in spec.directions.items()}
    inferred = (
        infer_directions(
            train, y, spec.features, categorical=spec.categorical, given=spec.directions
        )
        if cfg.infer_directions
        else {}
    )
    return {**inferred, **given}, {k: v for k, v in inferred.items() if v}


def _fit_one(
    cfg: TrainConfig,
    spec: ModelSpec,
    bundle: ModelBundle,
    train: pd.DataFrame,
    *,
    progress: bool,
) -> tuple[ModelBundle, FitResult]:
    """Search, fit, check and calibrate one model on `train` by k-fold CV (grouped by client
    where the spec has clients): each trial is scored on the folds, and the deployed booster
    learns from every row (`training.fit.fit_model_cv`).

    Three candidates are judged on the same out-of-fold scores: the booster, the scorecard and
    their blend in log-odds; the weight that ranks them best is deployed (1: the booster alone)
    and calibrated on them. Risk directions come from the spec, or are inferred from `train`."""
    x_train = bundle.matrix(train)
    y_train = train[spec.target].to_numpy(dtype=int)
    categorical = [spec.features.index(c) for c in spec.categorical]
    directions, inferred = _directions(cfg, spec, train, y_train)
    monotone = [directions.get(f, 0) if f not in spec.categorical else 0 for f in spec.features]
    use_monotone = cfg.monotone and any(monotone)
    fit, booster_raw = fit_model_cv(
        cfg,
        x_train,
        y_train,
        categorical=categorical,
        monotone=monotone if use_monotone else None,
        groups=train[spec.group_column].to_numpy() if spec.group_column else None,
        progress=progress,
    )
    if use_monotone:
        try:
            check_monotone(fit.booster, x_train, monotone, spec.features)
        except MonotonicityError as error:
            if cfg.monotone_method == "basic":
                raise
            log.warning("%s; refitting with LightGBM's basic monotone method", error)
            return _fit_one(
                replace(cfg, monotone_method="basic"), spec, bundle, train, progress=progress
            )
    card: Scorecard | None = None
    card_raw = np.zeros(len(y_train))
    weight = 1.0
    candidates: dict[str, float] = {}
    if cfg.blend:
        assert fit.folds is not None
        for fold, held in fit.folds:  # each row scored by a scorecard that did not learn from it
            fold_card = _scorecard(cfg, spec, bundle, train.iloc[fold], x_train[fold], directions)
            card_raw[held] = fold_card.raw_score(x_train[held])
        card = _scorecard(cfg, spec, bundle, train, x_train, directions)
        weight, candidates = choose_blend(booster_raw, card_raw, y_train)
    calibrator, calib_info = fit_calibrator(
        weight * booster_raw + (1 - weight) * card_raw, y_train, seed=cfg.seed
    )
    fitted = replace(
        bundle,
        model_string=fit.booster.model_to_string(),
        calibrator=calibrator,
        scorecard=card,
        blend=weight,
        metadata={
            "calibration": calibrator.method,
            "search": f"{cfg.cv_folds}-fold CV"
            + (f" grouped by {spec.group_column}" if spec.group_column else ""),
            "monotone_method": cfg.monotone_method if use_monotone else "",
            "model": _candidate(weight),
            "candidates": candidates,
            "directions_inferred": inferred,
            **calib_info,
        },
    )
    return fitted, fit


def _scorecard_pd(
    cfg: TrainConfig,
    spec: ModelSpec,
    bundle: ModelBundle,
    train: pd.DataFrame,
    test: pd.DataFrame,
    x_test: np.ndarray,
) -> np.ndarray:
    """The scorecard's own PD on the test rows (the benchmark beside the deployed model): the
    bundle's candidate scorecard, or one fitted on `train` when training considered none."""
    card = bundle.scorecard
    if card is None:
        directions, _ = _directions(cfg, spec, train, train[spec.target].to_numpy(int))
        card = _scorecard(cfg, spec, bundle, train, bundle.matrix(train), directions)
    return 1.0 / (1.0 + np.exp(-card.raw_score(x_test)))


def _candidate(weight: float) -> str:
    if weight >= 1.0:
        return "booster"
    if weight <= 0.0:
        return "scorecard"
    return f"blend ({weight:.1f} booster, {1 - weight:.1f} scorecard)"


def _size_band(frame: pd.DataFrame) -> pd.Series:
    volume = frame.get("invoice_amount_365", pd.Series(np.nan, index=frame.index))
    bands = pd.cut(volume, [-np.inf, 50_000, 500_000, np.inf], labels=["small", "medium", "large"])
    return bands.astype(object).fillna("unknown")


def _date_parts(times: pd.Series, cfg: TrainConfig, test_from: object | None) -> pd.Series:
    """'train' / 'test' per row by date: the test window is the last `cfg.test_fraction` of the
    distinct dates (or every date from `test_from`); with `cfg.gap_days`, the training rows
    within that many days before it are dropped ('gap'), so that their outcome windows end
    before the test's begins."""
    if test_from is None:
        dates = np.sort(times.unique())
        if len(dates) < 2:
            raise ValueError(
                f"an out-of-time split needs at least 2 distinct dates, got {len(dates)}"
            )
        n_test = min(len(dates) - 1, max(1, round(len(dates) * cfg.test_fraction)))
        start = pd.Timestamp(dates[len(dates) - n_test])
    else:
        start = pd.Timestamp(test_from)
    part = pd.Series(np.where(times >= start, "test", "train"), index=times.index, name="part")
    if cfg.gap_days > 0:
        part[(part == "train") & (times > start - pd.Timedelta(days=cfg.gap_days))] = "gap"
    return part


def _held_out(part: pd.Series, rows: pd.DataFrame, spec: ModelSpec, cfg: TrainConfig) -> pd.Series:
    """The date parts restricted to their clients: `cfg.test_clients` of the clients are held out
    and only their test-window rows test; the other clients' rows before the window train, and
    their rows in it are `same_clients` (the figure a split by date alone reports, beside)."""
    if spec.group_column is None:
        return part
    side = held_out_groups(rows[spec.group_column], seed=cfg.seed, test_share=cfg.test_clients)
    by_date = part.to_numpy()
    out = np.where(
        by_date == "gap",
        "gap",
        np.where(by_date == side, by_date, np.where(by_date == "test", "same_clients", "other")),
    )
    return pd.Series(out, index=part.index, name=part.name)


def train_out_of_time(
    rows: pd.DataFrame,
    spec: ModelSpec,
    cfg: TrainConfig,
    base: ModelBundle,
    *,
    test_from: object | None = None,
    progress: bool = False,
) -> _Evaluated:
    """Test on the latest dates, on clients the model never saw; learn from the other clients'
    earlier rows, searched, stopped, calibrated and the candidates judged by k-fold CV grouped by
    client (`_fit_one`), so that no client is ever on both sides of a fold or of the test.

    `test_from` fixes the start of the test window (default: the last `cfg.test_fraction` of the
    dates)."""
    assert spec.time_column is not None
    times = rows[spec.time_column]
    part = _held_out(_date_parts(times, cfg, test_from), rows, spec, cfg)
    train, test = rows[part == "train"], rows[part == "test"]
    if train.empty or test.empty or train[spec.target].nunique() < 2:
        held = (
            f", {cfg.test_clients:.0%} of the {spec.group_column}s held out for the test"
            if spec.group_column
            else ""
        )
        raise ValueError(
            f"the out-of-time split left too few rows (train {len(train):,} with "
            f"{int(train[spec.target].sum())} positive, test {len(test):,}{held}); use more "
            f"snapshot dates, more clients or a smaller gap_days (now {cfg.gap_days})"
        )
    bundle, fit = _fit_one(cfg, spec, base, train, progress=progress)
    x_test = bundle.matrix(test)
    raw = bundle.raw_score(x_test, threads=cfg.threads)
    split_info: dict[str, object] = {
        "rows_train": float(len(train)),
        "rows_test": float(len(test)),
        "gap_days": float(cfg.gap_days),
        "rows_gap": float((part == "gap").sum()),
        "test_from": str(pd.Timestamp(test[spec.time_column].min()).date()),
        "cv_folds": float(cfg.cv_folds),
    }
    same_metrics: dict[str, float] = {}
    learned: list[str] = []
    if spec.group_column is not None:
        same = rows[part == "same_clients"]
        if same[spec.target].nunique() == 2:
            same_raw = bundle.raw_score(bundle.matrix(same), threads=cfg.threads)
            same_metrics = evaluate(same[spec.target].to_numpy(int), bundle.probability(same_raw))
        learned = sorted(train[spec.group_column].astype(str).unique())
        split_info |= {
            "group_column": spec.group_column,
            "test_clients": cfg.test_clients,
            "clients_train": float(train[spec.group_column].nunique()),
            "clients_test": float(test[spec.group_column].nunique()),
            "rows_same_clients": float(len(same)),
        }
    return _Evaluated(
        bundle=bundle,
        fit=fit,
        evaluation=test,
        raw=raw,
        pd_=bundle.probability(raw),
        scorecard_pd=_scorecard_pd(cfg, spec, bundle, train, test, x_test),
        population=train,
        split_info=split_info,
        same_client_metrics=same_metrics,
        learned_groups=learned,
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
    groups = rows[spec.group_column] if spec.group_column else None
    chosen: list[dict[str, object]] = []
    for train_idx, test_idx in stratified_folds(
        y_all, folds=cfg.cv_folds, seed=cfg.seed, groups=groups
    ):
        # each fold's model is trained exactly as the deployed one: CV within its training part
        fold_bundle, _ = _fit_one(cfg, spec, base, rows.iloc[train_idx], progress=progress)
        raw[test_idx] = fold_bundle.raw_score(
            fold_bundle.matrix(rows.iloc[test_idx]), threads=cfg.threads
        )
        p[test_idx] = fold_bundle.probability(raw[test_idx])
        chosen.append(
            {k: fold_bundle.metadata.get(k) for k in ("model", "candidates", "directions_inferred")}
        )
        card_p[test_idx] = _scorecard_pd(
            cfg,
            spec,
            fold_bundle,
            rows.iloc[train_idx],
            rows.iloc[test_idx],
            fold_bundle.matrix(rows.iloc[test_idx]),
        )
    bundle, fit = _fit_one(cfg, spec, base, rows, progress=progress)
    return _Evaluated(
        bundle=bundle,
        fit=fit,
        evaluation=rows,
        raw=raw,
        pd_=p,
        scorecard_pd=card_p,
        population=rows,
        split_info={
            "rows_train": float(len(rows)),
            "cv_folds": float(cfg.cv_folds),
            "outer_folds": chosen,  # what each evaluation fold's training chose
        },
    )


MIN_EVENTS = 10  # of each class in the usable rows: fewer, and a model learns noise


class InsufficientEventsError(InputError):
    """Too few events (or non-events) of a model's target to train or test it."""


def check_events(table: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The usable rows of `table` for `spec`, refused (`InsufficientEventsError`) when either
    class of the target has fewer than `MIN_EVENTS` rows: a single-class window (a ledger too
    short for the label's horizon) must stop a training, not register a model of AUC nan."""
    rows = usable_rows(table, spec)
    events = int((rows[spec.target] == 1).sum())
    others = len(rows) - events
    if min(events, others) < MIN_EVENTS:
        raise InsufficientEventsError(
            f"{spec.name}: the training rows hold {events:,} {spec.target} event(s) and "
            f"{others:,} non-event(s); training needs at least {MIN_EVENTS} of each (a ledger "
            "too short or too small for the label's window: nothing was registered)"
        )
    return rows


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
    rows = check_events(table, spec)
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
    if len(np.unique(y)) < 2:
        raise InsufficientEventsError(
            f"{spec.name}: the test rows ({len(y):,}) hold a single class of {spec.target}: the "
            "model cannot be tested (too few events in the latest window); nothing was registered"
        )
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
        **(
            {"same_client_auc": done.same_client_metrics["auc"]} if done.same_client_metrics else {}
        ),
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
        same_client_metrics=done.same_client_metrics,
        learned_groups=done.learned_groups,
    )
