"""Shared fixtures: a seeded synthetic ledger and the real data folder (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.contract import Ledger
from features.io import load_ledger
from features.synthetic import GeneratorConfig, generate_ledger

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
