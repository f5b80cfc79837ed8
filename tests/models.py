"""The small models the integration tests share: trained fast on the small ledger, once a session."""

from __future__ import annotations

import pandas as pd

from features.contract import Ledger
from features.pipeline import build_feature_table, month_ends
from training.config import TrainConfig
from training.specs import ledger_spec
from training.train import TrainResult, train_model

# the small ledger (400 clients) holds out 30 % of its clients for the test, so that the test
# window has defaults in it
FAST = TrainConfig(
    n_trials=2, max_rounds=150, early_stopping_rounds=20, shap_sample=200, test_clients=0.3
)


def small_tables(ledger: Ledger) -> dict[str, pd.DataFrame]:
    """Monthly client snapshots (default model), June 2024's invoices at issue (late model), and
    the invoices due in the year before the last 181 days (timing model)."""
    clients = build_feature_table(
        ledger, unit="client", as_of_dates=month_ends("2023-03-31", "2024-06-30")
    )
    recent = ledger.invoices.loc[ledger.invoices["issued_on"] >= "2024-06-01", "invoice_id"]
    due = ledger.invoices["due_on"]
    settled = ledger.invoices.loc[
        (due > ledger.extracted_on - pd.Timedelta(days=546))
        & (due <= ledger.extracted_on - pd.Timedelta(days=181)),
        "invoice_id",
    ]
    return {
        "default": clients,
        "late": build_feature_table(ledger, unit="invoice", invoices=recent),
        "timing": build_feature_table(ledger, unit="invoice", invoices=settled),
    }


def train_small_models(tables: dict[str, pd.DataFrame]) -> dict[str, TrainResult]:
    """Both models, trained with the fast configuration."""
    return {
        model: train_model(tables[model], ledger_spec(model), FAST)  # type: ignore[arg-type]
        for model in ("default", "late")
    }
