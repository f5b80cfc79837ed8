"""Training's parts on small arrays: the out-of-time split on held-out clients and its gap,
grouped folds, metrics, the search and refit, the monotone check (no ledger model is trained
here)."""

from __future__ import annotations

from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tests.models import FAST
from training.evaluate import evaluate, expected_calibration_error
from training.fit import MonotonicityError, check_monotone, fit_model_cv
from training.specs import ModelSpec, ledger_spec
from training.split import stratified_folds
from training.train import _date_parts, _held_out


def _snapshots() -> pd.DataFrame:
    """Ten month-ends of 400 clients."""
    months = pd.to_datetime([f"2024-{m:02d}-28" for m in range(1, 11)])
    return pd.DataFrame(
        {
            "client_id": np.tile([f"C{i:07d}" for i in range(400)], len(months)),
            "as_of": np.repeat(months, 400),
        }
    )


def test_the_test_is_the_latest_dates_on_clients_never_trained_on() -> None:
    rows = _snapshots()
    spec = replace(ledger_spec("default"), group_column="client_id")
    part = _held_out(_date_parts(rows["as_of"], FAST, None), rows, spec, FAST)
    train, test = rows[part == "train"], rows[part == "test"]
    assert set(test["as_of"].dt.month) == {9, 10} and train["as_of"].max() < test["as_of"].min()
    assert not set(train["client_id"]) & set(test["client_id"])  # no client on both sides
    share = test["client_id"].nunique() / rows["client_id"].nunique()
    assert share == pytest.approx(FAST.test_clients, abs=0.06)
    # the training clients' test-window rows: the same-client figure, reported beside
    same = rows[part == "same_clients"]
    assert set(same["client_id"]) == set(train["client_id"]) and set(same["as_of"].dt.month) == {
        9,
        10,
    }
    # the same seed holds out the same clients in every table; another seed, others
    again = _held_out(_date_parts(rows["as_of"], FAST, None), rows, spec, FAST)
    assert again.equals(part)
    other = _held_out(_date_parts(rows["as_of"], FAST, None), rows, spec, replace(FAST, seed=9))
    assert not other.equals(part)


def test_a_gap_drops_the_training_rows_whose_outcome_window_reaches_the_test() -> None:
    times = _snapshots()["as_of"]
    part = _date_parts(times, replace(FAST, gap_days=40), None)
    # the test starts 09-28: 08-28 falls in the gap
    assert set(times[part == "gap"].dt.month) == {8}
    assert times[part == "train"].max() + pd.Timedelta(days=40) <= times[part == "test"].min()


def test_grouped_folds_keep_each_client_on_one_side() -> None:
    rows = _snapshots()
    y = (np.arange(len(rows)) % 7 == 0).astype(int)
    for fit_rows, held in stratified_folds(y, folds=4, seed=0, groups=rows["client_id"]):
        assert not set(rows["client_id"].iloc[fit_rows]) & set(rows["client_id"].iloc[held])


def test_metrics_of_a_perfectly_calibrated_and_ranked_score() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    m = evaluate(y, p)
    assert expected_calibration_error(y, p) < 0.02
    assert 0.8 < m["auc"] < 0.9 and m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert m["capture_top10"] > 0.1 and m["lift_top10"] == pytest.approx(m["capture_top10"] / 0.1)


def _against_the_grain() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 3))
    y = (rng.uniform(size=3000) < 1 / (1 + np.exp(2 * x[:, 0] - x[:, 1]))).astype(
        int
    )  # risk falls with x0
    return x, y


def test_the_monotone_check_names_a_violated_feature() -> None:
    x, y = _against_the_grain()
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1}, lgb.Dataset(x, y), 50
    )
    with pytest.raises(
        MonotonicityError, match=r"not monotone in days_past_due \(constraint \+1\)"
    ):
        check_monotone(booster, x, [1, 0, 0], ["days_past_due", "b", "c"])


def test_constrained_fits_pass_the_monotone_check() -> None:
    x, y = _against_the_grain()
    fit, _ = fit_model_cv(FAST, x, y, categorical=[], monotone=[1, 1, 0])
    check_monotone(fit.booster, x, [1, 1, 0], ["a", "b", "c"])


def test_a_table_without_time_is_searched_by_cv_and_deployed_on_every_row() -> None:
    x, y = _against_the_grain()
    cfg = replace(FAST, cv_folds=4)
    fit, out_of_fold = fit_model_cv(cfg, x, y, categorical=[])
    # the deployed booster: the winner's parameters on all 3,000 rows, its rounds the folds'
    # best iteration scaled by the rows it gains (4/3)
    full = lgb.train(fit.params, lgb.Dataset(x, y), num_boost_round=fit.best_iteration)
    np.testing.assert_allclose(
        fit.booster.predict(x, raw_score=True), full.predict(x, raw_score=True)
    )
    assert fit.booster.num_trees() == fit.best_iteration
    assert len(fit.trials) == cfg.n_trials and all(t["best_iteration"] for t in fit.trials)
    # every row has an out-of-fold score (what calibration learns from); scored by models that
    # did not see it, they rank worse than the deployed model does on its own training rows
    folds = stratified_folds(y, folds=4, seed=cfg.seed)
    fold_aucs = [roc_auc_score(y[held], out_of_fold[held]) for _, held in folds]
    assert np.mean(fold_aucs) == pytest.approx(fit.validation_auc, abs=1e-9)
    assert roc_auc_score(y, fit.booster.predict(x, raw_score=True)) > np.mean(fold_aucs)
    # a large table: the search sees a sample, the fine CV and the deployed booster every row
    sampled, _ = fit_model_cv(replace(cfg, search_rows=1000), x, y, categorical=[])
    assert sampled.params["learning_rate"] == pytest.approx(
        cfg.learning_rate * cfg.refit_learning_rate_factor
    )
    again = lgb.train(sampled.params, lgb.Dataset(x, y), num_boost_round=sampled.best_iteration)
    np.testing.assert_allclose(
        sampled.booster.predict(x, raw_score=True), again.predict(x, raw_score=True)
    )


def test_spec_of_the_late_model_includes_invoice_attributes() -> None:
    spec: ModelSpec = ledger_spec("late")
    assert (
        "invoice_terms_days" in spec.features
        and spec.target == "late"
        and "invoice_currency" in spec.categorical
    )
