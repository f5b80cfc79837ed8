"""Training a ledger model end to end: calibration, reproducibility, MLflow logging of a plain-data
bundle, the pyfunc, promotion, the CLI and the model report notebook."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditguard.cli import app
from scoring.store import load_bundle
from tests.models import FAST
from training.fit import check_monotone
from training.registry import promote
from training.specs import ledger_spec
from training.train import TrainResult, train_model


@pytest.fixture(scope="module")
def client_table(small_feature_tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return small_feature_tables["default"]


@pytest.fixture(scope="module")
def trained(trained_models: dict[str, TrainResult]) -> TrainResult:
    return trained_models["default"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a non-default store keeps its artifacts beside the run, here
    yield uri


def test_a_gap_longer_than_the_history_is_refused(client_table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="gap_days"):
        train_model(client_table, ledger_spec("default"), replace(FAST, gap_days=2000))


def test_training_gives_a_calibrated_discriminating_model(trained) -> None:  # type: ignore[no-untyped-def]
    # the grouped cross-validation scores every training row on a model that never saw its
    # client; the test window of the small ledger's held-out clients has few defaults (18 of
    # 265 rows), so its figure is only required to beat chance
    assert trained.fit.validation_auc > 0.7
    assert trained.metrics["auc"] > 0.55
    assert trained.metrics["rows"] > 200 and trained.same_client_metrics["rows"] > 500
    assert trained.bundle.metadata["calibration"] in (
        "platt",
        "beta",
        "isotonic",
        "isotonic_interpolated",
    )
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


def test_a_model_lightgbm_leaves_non_monotone_is_refitted_with_the_basic_method(
    small_feature_tables: dict[str, pd.DataFrame],
) -> None:
    """On the small ledger's invoices at issue (the late model, the fast configuration, seed 7),
    LightGBM's intermediate method grows a tree whose leaves break a constraint: the run refits
    with the basic method instead of failing, and the model it keeps passes the check. Which
    seed shows it moves with the features (seed 0 before issue 22 and with the country risk
    class, seed 2 between, seed 3 with the cross-border clients, seed 7 since the instalment
    schedules; the IBM sample with seed 0 too): when none does, scan seeds with
    `train_model(..., replace(FAST, seed=s))` and pin one that does."""
    late = train_model(small_feature_tables["late"], ledger_spec("late"), replace(FAST, seed=7))
    assert late.bundle.metadata["monotone_method"] == "basic"
    assert late.fit.params["monotone_constraints_method"] == "basic"
    spec = late.spec
    monotone = [
        int(spec.directions.get(f, 0)) if f not in spec.categorical else 0 for f in spec.features
    ]
    x = late.bundle.matrix(small_feature_tables["late"])
    check_monotone(late.bundle.booster, x, monotone, spec.features)
    assert late.metrics["auc"] > 0.6


def test_the_logged_model_predicts_pd_grade_and_reasons(store: str, trained) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from training.tracking import log_training

    logged = log_training(trained, FAST, plots=True)
    assert logged.get("champion") is True  # the first version becomes champion
    # the model is code plus plain data: no file of it is a pickle, and MLflow loads it from code
    folder = Path(mlflow.artifacts.download_artifacts("models:/creditguard-default@champion"))
    files = [f for f in folder.rglob("*") if f.is_file()]
    assert (folder / "artifacts" / "bundle" / "bundle.json").exists()
    assert not [f for f in files if f.read_bytes()[:1] == b"\x80"]  # pickle's PROTO opcode
    assert not [f for f in files if f.suffix in (".pkl", ".pickle", ".cloudpickle")]
    assert "model_code_path" in (folder / "MLmodel").read_text()
    requirements = (folder / "requirements.txt").read_text()
    assert all(name in requirements for name in ("lightgbm==", "numba==", "pyarrow=="))
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
    # two categories give a handful of PDs: the gate refuses it for its collapsed scale first
    assert not decision.promoted and "PD scale collapses" in decision.reason
    assert load_bundle("creditguard-default", "champion").features == trained.bundle.features
    with pytest.raises(ValueError, match="needs a reason"):
        promote("creditguard-default", cfg=FAST, force=True)
    forced = promote(
        "creditguard-default", cfg=FAST, force=True, reason="regulator asked for a simpler model"
    )
    assert forced.promoted and forced.forced and "regulator" in forced.reason
    assert load_bundle("creditguard-default", "champion").features == ["industry", "country"]


def test_promotion_refuses_a_challenger_whose_scale_collapses(store: str, trained) -> None:  # type: ignore[no-untyped-def]
    """A calibrator of three steps ties most test clients to one PD: refused, saying so, even
    as the first version (a newcomer's champion must tell its clients apart)."""
    from scoring.calibration import IsotonicCalibrator
    from training.tracking import log_training

    raw = trained.predictions["raw_score"].to_numpy()
    steps = IsotonicCalibrator(x=np.quantile(raw, [0.0, 0.9, 1.0]), y=np.array([0.01, 0.01, 0.2]))
    flat = replace(trained, bundle=replace(trained.bundle, calibrator=steps))
    log_training(flat, FAST, plots=False)
    decision = promote("creditguard-default", cfg=FAST)
    assert not decision.promoted and "PD scale collapses" in decision.reason, decision.reason
    log_training(trained, FAST, plots=False)
    assert promote("creditguard-default", cfg=FAST).promoted


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


def test_the_model_report_notebook_runs_top_to_bottom(store: str, trained) -> None:  # type: ignore[no-untyped-def]
    import nbformat
    from nbclient import NotebookClient

    from training.tracking import log_training

    log_training(trained, FAST, plots=True)
    notebook = nbformat.read(
        Path(__file__).resolve().parents[2] / "notebooks" / "model_report.ipynb", as_version=4
    )
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    outputs = "".join(str(o) for cell in notebook.cells for o in cell.get("outputs", []))
    assert "champion: version 1" in outputs and "image/png" in outputs
