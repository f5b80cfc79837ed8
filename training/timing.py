"""The payment-timing model: the settlement bucket of an invoice (`features.labels.TIMING_EDGES`)
from its features at issue, a LightGBM multi-class model, for the cash-collection forecast
(`scoring.timing`).

Why multi-class over delay buckets: the forecast needs the whole distribution of the settlement
day, including "not within 180 days"; a quantile model gives a few quantiles of a distribution
whose mass sits at and around the due date and a survival model needs a time grid anyway. The
buckets are that grid, and the multi-class log loss is a proper scoring rule to search, gate and
compare on (`benchmarks/cash_forecast.py` judges the forecast itself against naive ones).

The split is the ledger models' (issue 22): test on the latest 20 % of issue dates of clients the
model never learned from; train on the other clients' earlier invoices, with the last fifth of
those clients held out to stop the boosting; the deployed model is refitted on every training
client at the iteration found. Invoices whose bucket is not known at extraction (open, less than
180 days past due) never train.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd

from features.labels import TIMING_NEVER
from scoring.bundle import ModelBundle
from scoring.calibration import PlattCalibrator
from scoring.store import CHAMPION, TIMING_MODEL, load_bundle
from scoring.timing import BUCKETS, bucket_labels, bucket_probabilities
from training.config import TrainConfig
from training.specs import ModelSpec, ledger_spec
from training.split import held_out_groups
from training.train import _bundle, _date_parts, _held_out

GATE_TOLERANCE = 0.002  # a challenger's log loss may exceed the champion's by this much


def timing_spec() -> ModelSpec:
    """The late model's features at issue, another target."""
    late = ledger_spec("late")
    return replace(
        late,
        name=TIMING_MODEL,
        target="payment_bucket",
        directions={},  # a direction means nothing for one class of many
        purpose="Distribution of an invoice's settlement day relative to its due date, in "
        "buckets (paid early ... not within 180 days), scored at issue.",
    )


@dataclass
class TimingResult:
    bundle: ModelBundle
    spec: ModelSpec
    metrics: dict[str, float]
    evaluation_rows: pd.DataFrame
    data_hash: str
    params: dict[str, Any]
    learned_groups: list[str] = field(default_factory=list)


def _params(cfg: TrainConfig) -> dict[str, Any]:
    return {
        "objective": "multiclass",
        "num_class": BUCKETS,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 200,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_bin": 255,
        "max_cat_to_onehot": 8,
        "cat_smooth": 10.0,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.threads,
        "verbosity": -1,
    }


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean multi-class log loss."""
    chosen = np.clip(p[np.arange(len(y)), y.astype(int)], 1e-12, 1.0)
    return float(-np.log(chosen).mean())


def usable_timing_rows(table: pd.DataFrame) -> pd.DataFrame:
    keep = table["payment_bucket"].notna() & ~table["timing_censored"].astype(bool)
    return table[keep].reset_index(drop=True)


def train_timing(table: pd.DataFrame, cfg: TrainConfig) -> TimingResult:
    """Fit, evaluate on held-out clients, and return the bundle (booster: multi-class)."""
    spec = timing_spec()
    rows = usable_timing_rows(table)
    if len(rows) < 1000:
        raise ValueError(f"the timing model needs at least 1,000 settled invoices, got {len(rows)}")
    part = _held_out(_date_parts(rows[spec.time_column], cfg, None), rows, spec, cfg).to_numpy()
    train, test = rows[part == "train"], rows[part == "test"]
    base = _bundle(spec, rows)
    y_train = train["payment_bucket"].to_numpy(dtype=int)
    x_train = base.matrix(train)
    inner = (
        np.asarray(held_out_groups(train["client_id"], seed=cfg.seed + 1, test_share=0.2)) == "test"
    )
    categorical = [base.features.index(c) for c in base.categories]
    params = _params(cfg)

    def dataset(mask: np.ndarray) -> lgb.Dataset:
        return lgb.Dataset(
            x_train[mask], y_train[mask], categorical_feature=categorical, free_raw_data=False
        )

    fit = dataset(~inner)
    stopped = lgb.train(
        params,
        fit,
        num_boost_round=cfg.max_rounds,
        valid_sets=[dataset(inner)],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    rounds = max(1, int(stopped.best_iteration or cfg.max_rounds))
    booster = lgb.train(params, dataset(np.ones(len(train), bool)), num_boost_round=rounds)
    frequency = np.bincount(y_train, minlength=BUCKETS) / len(y_train)
    bundle = replace(
        base,
        model_string=booster.model_to_string(),
        calibrator=PlattCalibrator(1.0, 0.0),  # unused: the classes' probabilities are the output
        metadata={
            "kind": "timing",
            "buckets": bucket_labels(),
            "rounds": rounds,
            "training_frequency": frequency.tolist(),
            "learned_groups": sorted(train["client_id"].astype(str).unique().tolist()),
        },
    )
    y_test = test["payment_bucket"].to_numpy(dtype=int)
    p_test = bucket_probabilities(bundle, bundle.matrix(test))
    naive = np.tile(frequency, (len(test), 1))
    metrics = {
        "log_loss": log_loss(p_test, y_test),
        "naive_log_loss": log_loss(naive, y_test),
        "never_rate": float((y_test == TIMING_NEVER).mean()),
        "rows": float(len(test)),
        "train_rows": float(len(train)),
        "rounds": float(rounds),
    }
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(rows[["invoice_id", "payment_bucket"]], index=False).to_numpy()
    ).hexdigest()
    return TimingResult(
        bundle=bundle,
        spec=spec,
        metrics=metrics,
        evaluation_rows=test.reset_index(drop=True),
        data_hash=digest,
        params=params,
        learned_groups=bundle.metadata["learned_groups"],  # type: ignore[arg-type]
    )


def gate(result: TimingResult, champion: ModelBundle) -> tuple[bool, str]:
    """Promote when the challenger's log loss on its test invoices of clients the champion never
    learned from is no worse than the champion's (within `GATE_TOLERANCE`)."""
    learned = {str(g) for g in champion.metadata.get("learned_groups") or []}  # type: ignore[attr-defined]
    rows = result.evaluation_rows
    rows = rows[~rows["client_id"].astype(str).isin(learned)]
    if len(rows) < 100:
        return False, f"only {len(rows)} test invoices of clients neither model learned from"
    y = rows["payment_bucket"].to_numpy(dtype=int)
    ours = log_loss(bucket_probabilities(result.bundle, result.bundle.matrix(rows)), y)
    theirs = log_loss(bucket_probabilities(champion, champion.matrix(rows)), y)
    verdict = ours <= theirs + GATE_TOLERANCE
    why = (
        f"log loss {ours:.4f} against the champion's {theirs:.4f} on {len(rows):,} invoices of "
        f"clients neither learned from (tolerance {GATE_TOLERANCE})"
    )
    return verdict, why


def log_timing(result: TimingResult, cfg: TrainConfig) -> dict[str, Any]:
    """One MLflow run (parameters, metrics, the bundle as a pyfunc from code), registered as
    challenger; the first version becomes champion, later ones by `gate`."""
    from scoring.pyfunc import predict_timing
    from training.tracking import log_bundle_model, register_challenger, tag_run, use_store

    client = use_store()
    spec = result.spec
    with mlflow.start_run(run_name=spec.name) as run, tempfile.TemporaryDirectory() as tmp:
        tag_run(spec, result.data_hash)
        mlflow.log_params(
            {f"cfg_{k}": v for k, v in cfg.__dict__.items()}
            | {f"lgbm_{k}": v for k, v in result.params.items()}
            | {"buckets": json.dumps(result.bundle.metadata["buckets"])}
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in result.metrics.items()})
        example = result.evaluation_rows[result.bundle.features].head(5).reset_index(drop=True)
        info = log_bundle_model(
            result.bundle, Path(tmp), example, predict_timing(result.bundle, example)
        )
        run_id = run.info.run_id
    version, first = register_challenger(client, spec.name, info.model_uri)
    out: dict[str, Any] = {"run_id": run_id, "version": version}
    if first:
        out["champion"], out["gate"] = True, "first version: champion by default"
        return out
    promoted, why = gate(result, load_bundle(spec.name, CHAMPION))
    if promoted:
        client.set_registered_model_alias(spec.name, CHAMPION, version)
    client.set_model_version_tag(spec.name, version, "promotion", why)
    out["champion"], out["gate"] = promoted, why
    return out
