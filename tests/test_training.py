"""Training: out-of-time splits, search, monotone check, calibration, MLflow logging, promotion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from features.contract import Ledger
from features.pipeline import build_feature_table, month_ends
from serving.cli import app
from training.config import TrainConfig
from training.evaluate import evaluate, expected_calibration_error
from training.fit import MonotonicityError, _train, check_monotone, fit_model, fit_model_cv
from training.registry import load_bundle, promote
from training.split import split_by_time, stratified_folds
from training.train import ModelSpec, _purge, ledger_spec, train_model

FAST = TrainConfig(n_trials=2, max_rounds=150, early_stopping_rounds=20, shap_sample=200)


@pytest.fixture(scope="module")
def client_table(small_ledger: Ledger) -> pd.DataFrame:
    return build_feature_table(
        small_ledger, unit="client", as_of_dates=month_ends("2023-03-31", "2024-06-30")
    )


@pytest.fixture(scope="module")
def trained(client_table: pd.DataFrame):  # type: ignore[no-untyped-def]
    return train_model(client_table, ledger_spec("default"), FAST)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a non-default store keeps its artifacts beside the run, here
    yield uri


def test_the_split_is_by_date_with_the_latest_dates_for_test() -> None:
    times = pd.Series(pd.to_datetime([f"2024-{m:02d}-28" for m in range(1, 11)]).repeat(3))
    part = split_by_time(times, validation_fraction=0.2, test_fraction=0.2)
    assert set(times[part == "test"].dt.month) == {9, 10}
    assert set(times[part == "validation"].dt.month) == {7, 8}
    assert times[part == "train"].max() < times[part == "validation"].min()


def test_a_gap_drops_the_rows_whose_outcome_window_reaches_the_next_part() -> None:
    times = pd.Series(pd.to_datetime([f"2024-{m:02d}-28" for m in range(1, 11)]).repeat(3))
    part = split_by_time(times, validation_fraction=0.2, test_fraction=0.2)
    purged = _purge(part, times, pd.Timedelta(days=40))
    # validation starts 07-28, test 09-28: 06-28 (train) and 08-28 (validation) fall in the gaps
    assert set(times[purged == "gap"].dt.month) == {6, 8}
    assert set(times[purged == "test"].dt.month) == {9, 10}
    for earlier, later in (("train", "validation"), ("validation", "test")):
        assert (
            times[purged == earlier].max() + pd.Timedelta(days=40) <= times[purged == later].min()
        )


def test_a_gap_longer_than_the_history_is_refused(client_table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="gap_days"):
        train_model(client_table, ledger_spec("default"), replace(FAST, gap_days=2000))


def test_metrics_of_a_perfectly_calibrated_and_ranked_score() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    m = evaluate(y, p)
    assert expected_calibration_error(y, p) < 0.02
    assert 0.8 < m["auc"] < 0.9 and m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert m["capture_top10"] > 0.1 and m["lift_top10"] == pytest.approx(m["capture_top10"] / 0.1)


def test_training_gives_a_calibrated_discriminating_model(trained) -> None:  # type: ignore[no-untyped-def]
    assert trained.metrics["auc"] > 0.7
    assert trained.bundle.metadata["calibration"] in ("platt", "isotonic")
    assert 0 < trained.metrics["base_rate"] < 0.2
    pr = trained.predictions
    assert pr["pd"].between(0, 1).all() and pr["grade"].between(1, 10).all()
    assert not set(np.unique(pr["pd"])) <= {0.0, 1.0}  # probabilities, never bare labels
    assert "auc" in trained.scorecard_metrics
    assert set(trained.segments["segment"]) == {"industry", "country", "size_band", "thin_file"}


def test_training_is_reproducible(client_table: pd.DataFrame, trained) -> None:  # type: ignore[no-untyped-def]
    again = train_model(client_table, ledger_spec("default"), FAST)
    assert again.bundle.model_string == trained.bundle.model_string
    assert again.metrics == trained.metrics


def test_censored_and_defaulted_rows_never_train(client_table: pd.DataFrame, trained) -> None:  # type: ignore[no-untyped-def]
    usable = (~client_table["censored"] & ~client_table["defaulted_before"]).sum()
    assert trained.profile["usable_rows"] == usable < len(client_table)


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
    fit = fit_model(
        FAST, x[:2000], y[:2000], x[2000:], y[2000:], categorical=[], monotone=[1, 1, 0]
    )
    check_monotone(fit.booster, x, [1, 1, 0], ["a", "b", "c"])


def test_a_model_lightgbm_leaves_non_monotone_is_refitted_with_the_basic_method(
    ibm_csv: Path,
) -> None:
    """On the IBM sample, with the invoice's billing channel as an extra feature and seed 2,
    LightGBM's intermediate method grows a tree that splits twice on paydex_365 with its leaves
    out of order (the raw score rises 0.021 where it must fall): the run refits with the basic
    method instead of failing, and the model it keeps passes the check."""
    from features.adapters import load_ibm_accounts_receivable

    ledger = load_ibm_accounts_receivable(ibm_csv)
    table = build_feature_table(ledger, unit="invoice").sort_values(
        ["as_of", "invoice_id"], kind="stable", ignore_index=True
    )
    channel = ledger.invoices.set_index("invoice_id")["paperless_bill"]
    table["invoice_paperless"] = table["invoice_id"].map(channel).astype(float)
    spec = ledger_spec("late")
    spec = replace(spec, features=[*spec.features, "invoice_paperless"])
    test_from = table["as_of"].iloc[int(len(table) * 0.75)]
    result = train_model(table, spec, replace(TrainConfig(), seed=2), test_from=test_from)
    assert result.bundle.metadata["monotone_method"] == "basic"
    assert result.fit.params["monotone_constraints_method"] == "basic"
    assert result.metrics["auc"] > 0.8


def test_a_large_table_is_searched_on_a_sample_and_refitted_on_every_row() -> None:
    x, y = _against_the_grain()
    cfg = replace(FAST, search_rows=500)
    fit = fit_model(cfg, x[:2000], y[:2000], x[2000:], y[2000:], categorical=[])
    fine = cfg.learning_rate * cfg.refit_learning_rate_factor
    assert fit.params["learning_rate"] == pytest.approx(fine)
    # the deployed booster is the winner's parameters trained on all 2,000 rows, not the sample
    fine_cfg = replace(cfg, max_rounds=int(cfg.max_rounds / cfg.refit_learning_rate_factor))
    full, _ = _train(fit.params, fine_cfg, x[:2000], y[:2000], x[2000:], y[2000:], categorical=[])
    np.testing.assert_allclose(
        fit.booster.predict(x, raw_score=True),
        full.predict(x, raw_score=True, num_iteration=full.best_iteration),
    )


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


def test_the_logged_model_predicts_pd_grade_and_reasons(store: str, trained) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from training.tracking import log_training

    logged = log_training(trained, FAST, plots=True)
    assert logged.get("champion") is True  # the first version becomes champion
    model = mlflow.pyfunc.load_model("models:/creditguard-default@champion")
    rows = trained.evaluation_rows.head(20)
    out = model.predict(rows[trained.bundle.features])
    assert {"pd", "grade", "reason_1", "reason_2", "reason_3"} <= set(out.columns)
    np.testing.assert_allclose(out["pd"].to_numpy(), trained.bundle.predict(rows)["pd"].to_numpy())
    run = mlflow.get_run(logged["run_id"])
    assert run.data.tags["data_hash"] == trained.data_hash and "git_commit" in run.data.tags
    assert "test_auc" in run.data.metrics and "scorecard_test_auc" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(logged["run_id"], "report")}
    assert {
        "report/model_card.md",
        "report/feature_catalog.csv",
        "report/data_profile.json",
    } <= artifacts


def test_promotion_refuses_a_weaker_challenger_and_records_a_forced_one(
    store: str, client_table: pd.DataFrame, trained
) -> None:  # type: ignore[no-untyped-def]
    from training.tracking import log_training

    log_training(trained, FAST, plots=False)
    weak_spec = ledger_spec("default")
    weak_spec = replace(
        weak_spec,
        features=["industry", "country"],
        categorical=["industry", "country"],
        directions={},
    )
    weak = train_model(client_table, weak_spec, FAST)
    log_training(weak, FAST, plots=False)
    decision = promote("creditguard-default", cfg=FAST)
    assert not decision.promoted and "worse" in decision.reason
    assert decision.challenger_auc < decision.champion_auc
    assert load_bundle("creditguard-default", "champion").features == trained.bundle.features
    with pytest.raises(ValueError, match="needs a reason"):
        promote("creditguard-default", cfg=FAST, force=True)
    forced = promote(
        "creditguard-default", cfg=FAST, force=True, reason="regulator asked for a simpler model"
    )
    assert forced.promoted and forced.forced and "regulator" in forced.reason
    assert load_bundle("creditguard-default", "champion").features == ["industry", "country"]


def test_the_cli_trains_any_table_with_stratified_folds(store: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 4))
    table = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(
        segment=rng.choice(["x", "y"], 1500),
        bad=(rng.uniform(size=1500) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype(int),
    )
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["train", "--table", str(path), "--target", "bad", "--trials", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "creditguard-bad" in result.output and "test AUC" in result.output
    again = CliRunner().invoke(app, ["promote", "--model", "creditguard-bad"])
    assert again.exit_code == 0 and "already is the champion" in again.output


def test_spec_of_the_late_model_includes_invoice_attributes() -> None:
    spec: ModelSpec = ledger_spec("late")
    assert (
        "invoice_terms_days" in spec.features
        and spec.target == "late"
        and "invoice_currency" in spec.categorical
    )


def test_the_model_report_notebook_runs_top_to_bottom(store: str, trained) -> None:  # type: ignore[no-untyped-def]
    import nbformat
    from nbclient import NotebookClient

    from training.tracking import log_training

    log_training(trained, FAST, plots=True)
    notebook = nbformat.read(
        Path(__file__).resolve().parents[1] / "notebooks" / "model_report.ipynb", as_version=4
    )
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    outputs = "".join(str(o) for cell in notebook.cells for o in cell.get("outputs", []))
    assert "champion: version 1" in outputs and "image/png" in outputs
