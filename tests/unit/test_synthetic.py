"""The synthetic ledger: deterministic, valid, and realistic enough to learn from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import Ledger
from features.io import inspect_ledger, load_ledger
from features.labels import default_dates, label_default
from features.synthetic import GeneratorConfig, generate_ledger
from tests.conftest import SMALL

TABLES = ("clients", "invoices", "payments", "financials", "insolvencies")


def test_the_same_seed_gives_byte_identical_tables(small_ledger_dir: Path, tmp_path: Path) -> None:
    generate_ledger(SMALL, tmp_path / "again", progress=False)
    for name in TABLES:
        assert (tmp_path / "again" / f"{name}.parquet").read_bytes() == (
            small_ledger_dir / f"{name}.parquet"
        ).read_bytes(), name


def test_another_seed_gives_another_ledger(small_ledger_dir: Path, tmp_path: Path) -> None:
    generate_ledger(
        GeneratorConfig(clients=SMALL.clients, months=SMALL.months, seed=8),
        tmp_path / "other",
        progress=False,
    )
    assert (tmp_path / "other" / "invoices.parquet").read_bytes() != (
        small_ledger_dir / "invoices.parquet"
    ).read_bytes()


def test_the_contract_accepts_the_generators_output(small_ledger_dir: Path) -> None:
    _, violations = inspect_ledger(small_ledger_dir)
    assert violations.empty, violations.head()


def test_the_extraction_date_is_the_end_of_the_period() -> None:
    assert GeneratorConfig(months=36, start="2023-01-01").extracted_on == pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def default_ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The generator's defaults (2,000 clients x 36 months)."""
    out = tmp_path_factory.mktemp("default") / "ledger"
    generate_ledger(GeneratorConfig(), out, progress=False)
    return load_ledger(out)


def test_default_and_lateness_rates_are_in_the_target_ranges(default_ledger: Ledger) -> None:
    inv = default_ledger.invoices
    paid = inv[inv["paid_on"].notna()]
    days_late = (paid["paid_on"] - paid["due_on"]).dt.days
    assert 0.10 <= (days_late > 30).mean() <= 0.30

    clients = default_ledger.clients
    rates = []
    for as_of in pd.date_range("2023-12-31", "2024-12-31", freq="ME"):
        ids = clients.loc[clients["onboarded_on"] < as_of, "client_id"]
        labels = label_default(default_ledger, pd.DataFrame({"client_id": ids, "as_of": as_of}))
        labels = labels[~labels["defaulted_before"] & ~labels["censored"]]
        rates.append(labels["default_12m"].mean())
    assert 0.02 <= float(np.mean(rates)) <= 0.06, rates


def test_there_are_thin_file_clients_onboarded_late(default_ledger: Ledger) -> None:
    onboarded = default_ledger.clients["onboarded_on"]
    assert (onboarded > pd.Timestamp("2025-06-30")).mean() > 0.03
    assert (onboarded < pd.Timestamp("2023-01-01")).mean() > 0.3


def test_payment_delay_rises_in_the_months_before_default(default_ledger: Ledger) -> None:
    first = default_dates(default_ledger)
    inv = default_ledger.invoices
    inv = inv[inv["client_id"].isin(first.index)]
    event = inv["client_id"].map(first)
    months_before = (event - inv["due_on"]).dt.days / 30.44
    settled = inv["paid_on"].where(inv["paid_on"].notna() & (inv["paid_on"] < event), event)
    dpd = (settled - inv["due_on"]).dt.days.clip(lower=0)
    early = dpd[(months_before > 9) & (months_before <= 12)].mean()
    late = dpd[(months_before > 0) & (months_before <= 3)].mean()
    assert late > 1.5 * early, (early, late)


def test_financials_worsen_before_insolvency(default_ledger: Ledger) -> None:
    fin = default_ledger.financials
    insolvent = set(default_ledger.insolvencies["client_id"])
    ratio = fin["equity"] / fin["total_assets"]
    assert (
        ratio[fin["client_id"].isin(insolvent)].median()
        < ratio[~fin["client_id"].isin(insolvent)].median()
    )


def test_early_clients_bring_their_history_and_most_sit_inside_their_limit(
    default_ledger: Ledger,
) -> None:
    """Clients onboarded before the period have invoices and statements from before it (up to
    `history_months`), and about one in ten live clients is over its current limit."""
    from features.labels import in_default
    from features.payment_behaviour import build_client_features

    start = pd.Timestamp(GeneratorConfig().start)
    inv = default_ledger.invoices
    early = default_ledger.clients.loc[default_ledger.clients["onboarded_on"] < start, "client_id"]
    before = inv.loc[inv["issued_on"] < start, "client_id"]
    assert before.nunique() > 0.8 * len(early)
    assert inv["issued_on"].min() >= start - pd.DateOffset(months=GeneratorConfig().history_months)
    assert (default_ledger.financials["published_on"] < start).any()
    features = build_client_features(default_ledger, as_of_dates=["2026-01-01"])
    live = features[~in_default(features)]
    limit = live["client_id"].map(default_ledger.clients.set_index("client_id")["credit_limit"])
    over = (live["open_balance"] > limit).mean()
    assert 0.03 <= over <= 0.15, over
