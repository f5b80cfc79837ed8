"""Shared fixtures: a seeded synthetic ledger, the small models trained once a session and logged
as champions to a session MLflow store, and the real data folder (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from features.contract import Ledger
from features.io import load_ledger
from features.synthetic import GeneratorConfig, generate_ledger
from tests.models import FAST, small_tables, train_small_models
from training.timing import TimingResult, log_timing, train_timing
from training.train import TrainResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

SMALL = GeneratorConfig(clients=400, months=30, seed=7)


@pytest.fixture(scope="session")
def small_ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ledger") / "small"
    generate_ledger(SMALL, out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_ledger(small_ledger_dir: Path) -> Ledger:
    return load_ledger(small_ledger_dir)


@pytest.fixture(scope="session")
def small_feature_tables(small_ledger: Ledger) -> dict[str, pd.DataFrame]:
    """Client snapshots and invoices at issue of the small ledger, with labels."""
    return small_tables(small_ledger)


@pytest.fixture(scope="session")
def trained_models(small_feature_tables: dict[str, pd.DataFrame]) -> dict[str, TrainResult]:
    """Both small models, trained once for every test that needs one ("default", "late")."""
    return train_small_models(small_feature_tables)


@pytest.fixture(scope="session")
def trained_timing(small_feature_tables: dict[str, pd.DataFrame]) -> TimingResult:
    """The small payment-timing model."""
    return train_timing(small_feature_tables["timing"], FAST)


@pytest.fixture(scope="session")
def champion_store(
    trained_models: dict[str, TrainResult],
    trained_timing: TimingResult,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The URI of an MLflow store in which the three small models are registered champions.
    Tests point `MLFLOW_TRACKING_URI` at it; none of them moves its aliases."""
    from training.tracking import log_training

    uri = f"sqlite:///{tmp_path_factory.mktemp('champions') / 'mlflow.db'}"
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        for result in trained_models.values():
            log_training(result, FAST, plots=False)
        log_timing(trained_timing, FAST)
    finally:
        if before is None:
            del os.environ["MLFLOW_TRACKING_URI"]
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
    return uri


@pytest.fixture(scope="session")
def ibm_csv() -> Path:
    path = SHARED_DATA / "ibm_accounts_receivable" / "WA_Fn-UseC_-Accounts-Receivable.csv"
    if not path.exists():
        pytest.skip("../shared/data is absent: real-data test skipped")
    return path


@pytest.fixture(scope="session")
def taiwan_csv() -> Path:
    path = SHARED_DATA / "uci_taiwan_default" / "UCI_Credit_Card.csv"
    if not path.exists():
        pytest.skip("../shared/data is absent: real-data test skipped")
    return path
