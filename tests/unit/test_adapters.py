"""Real data through the adapters (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.adapters import load_ibm_accounts_receivable
from features.contract import check_ledger


def test_the_ibm_sample_maps_onto_a_valid_ledger(ibm_csv: Path) -> None:
    ledger = load_ibm_accounts_receivable(ibm_csv)
    assert len(ledger.clients) == 100
    assert len(ledger.invoices) == 2466
    assert set(ledger.clients["country"]) == {"XA", "XB", "XC", "XD", "XE"}
    assert ledger.extracted_on == ledger.invoices["paid_on"].max()
    _, violations = check_ledger(ledger.tables(), extracted_on=ledger.extracted_on)
    assert violations.empty


def test_the_ibm_days_late_survive_the_mapping(ibm_csv: Path) -> None:
    raw = pd.read_csv(ibm_csv, dtype={"invoiceNumber": str})
    ledger = load_ibm_accounts_receivable(ibm_csv.parent)
    days = (ledger.invoices["paid_on"] - ledger.invoices["due_on"]).dt.days.clip(lower=0)
    assert days.tolist() == raw["DaysLate"].tolist()


def test_ibm_invoice_features_cover_every_invoice_without_its_outcome(ibm_csv: Path) -> None:
    from features.pipeline import build_feature_table

    ledger = load_ibm_accounts_receivable(ibm_csv)
    table = build_feature_table(ledger, unit="invoice")
    assert len(table) == 2466 and table["invoice_id"].is_unique
    assert not table["censored"].any()
    assert table["late"].mean() == pytest.approx(0.356, abs=0.001)  # DaysLate > 0 in the raw file
    assert "disputed" not in table.columns and "paid_on" not in table.columns
    # The first invoice of a customer has no history; later ones do.
    client = table["invoice_id"].map(ledger.invoices.set_index("invoice_id")["client_id"])
    first = table.assign(client=client).sort_values("as_of").groupby("client").head(1)
    assert (first["paid_invoices_total"] == 0).all()
