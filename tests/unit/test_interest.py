"""Late-payment interest and fixed compensation by jurisdiction, computed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.interest import late_charges, late_interest_rules
from scoring.policy import CreditPolicy, PolicyError
from scoring.receivables import open_invoices
from tests.ledgers import make_ledger

AS_OF = pd.Timestamp("2026-01-01")
DUE = "2025-11-30"  # 31 days of interest to 31 December


def _ledger():  # type: ignore[no-untyped-def]
    clients = [
        {"client_id": c, "country": c[:2], "onboarded_on": "2024-01-01"}
        for c in ("DE1", "GB1", "PL1", "CN1", "US1", "FR1")
    ]
    rows = [
        ("DE1", 1000.0, "EUR", DUE),
        ("GB1", 5000.0, "GBP", DUE),  # GBP 1,000-9,999.99: GBP 70
        ("PL1", 60000.0, "PLN", DUE),  # over PLN 50,000: EUR 100
        ("CN1", 20000.0, "CNY", DUE),
        ("US1", 3650.0, "USD", DUE),
        ("FR1", 500.0, "EUR", "2026-01-15"),  # not yet due: nothing
    ]
    invoices = [
        {
            "invoice_id": f"I-{c}",
            "client_id": c,
            "issued_on": "2025-10-31",
            "due_on": due,
            "amount": amount,
            "currency": currency,
        }
        for c, amount, currency, due in rows
    ]
    rates = [
        {"date": "2025-10-01", "currency": code, "rate": rate}
        for code, rate in (("GBP", 1.15), ("PLN", 0.25), ("CNY", 0.12), ("USD", 0.90))
    ]
    return make_ledger(
        clients=clients,
        invoices=invoices,
        fx_rates=rates,
        reporting_currency="EUR",
        extracted_on="2025-12-31",
    )


def test_interest_and_compensation_follow_the_debtors_jurisdiction() -> None:
    ledger = _ledger()
    inv = open_invoices(ledger, AS_OF)
    country = inv["client_id"].str[:2].to_numpy(dtype=object)
    charges = late_charges(inv, country, AS_OF, CreditPolicy.load().late_interest, ledger.rates)
    got = {
        c: (i, k, r)
        for c, i, k, r in zip(
            inv["client_id"], charges.interest, charges.compensation, charges.rule, strict=True
        )
    }
    # Germany: base rate 1.27 % + 9 points for 31 days, EUR 40
    assert got["DE1"][0] == pytest.approx(1000 * 0.1027 * 31 / 365)
    assert got["DE1"][1] == 40.0 and "BGB §288" in got["DE1"][2]
    # UK: Bank Rate 4.25 % + 8 points; GBP 70 on a GBP 5,000 debt, in its own currency
    assert got["GB1"][0] == pytest.approx(5000 * 0.1225 * 31 / 365)
    assert got["GB1"][1] == 70.0
    # Poland: NBP 5.00 % + 10 points; EUR 100 over PLN 50,000, in PLN at 0.25 EUR per PLN
    assert got["PL1"][0] == pytest.approx(60000 * 0.15 * 31 / 365)
    assert got["PL1"][1] == pytest.approx(400.0)
    # China: the contracts' daily penalty, 0.05 % a day, no fixed sum
    assert got["CN1"][0] == pytest.approx(20000 * 0.0005 * 31) and got["CN1"][1] == 0.0
    # the US: no statute here, the contract's 8 % a year
    assert got["US1"][0] == pytest.approx(3650 * 0.08 * 31 / 365)
    assert "contractual rate 8.0 %" in got["US1"][2]
    assert got["FR1"][:2] == (0.0, 0.0)


def test_a_compensation_without_a_rate_is_left_empty_not_guessed() -> None:
    ledger = _ledger()
    no_gbp = ledger.fx_rates[ledger.fx_rates["currency"] != "GBP"]
    ledger = make_ledger(
        clients=[{"client_id": "GB2", "country": "GB", "onboarded_on": "2024-01-01"}],
        invoices=[
            {
                "invoice_id": "I-GB2",
                "client_id": "GB2",
                "issued_on": "2025-10-31",
                "due_on": DUE,
                "amount": 500.0,
                "currency": "EUR",
            }
        ],
        fx_rates=no_gbp.astype({"date": str}).to_dict("records"),
        reporting_currency="EUR",
        extracted_on="2025-12-31",
    )
    inv = open_invoices(ledger, AS_OF)
    charges = late_charges(
        inv, np.array(["GB"], dtype=object), AS_OF, CreditPolicy.load().late_interest, ledger.rates
    )
    assert np.isnan(charges.compensation[0]) and charges.interest[0] > 0


def test_a_bad_rules_table_is_refused_naming_the_row(tmp_path: Path) -> None:
    good = (Path(__file__).parents[2] / "models" / "late_interest.csv").read_text()
    bad = tmp_path / "late_interest.csv"
    bad.write_text(
        good.replace(
            "DE,statute,Basiszinssatz (Deutsche Bundesbank),1.27,9,40,",
            "DE,statute,Basiszinssatz (Deutsche Bundesbank),,9,40,",
        )
    )
    with pytest.raises(PolicyError, match=r"row 1 \(DE\): reference_rate_pct is missing"):
        late_interest_rules(bad)
    bad.write_text(good.replace("40;70;100,GBP,1000;10000", "40;70,GBP,1000;10000"))
    with pytest.raises(PolicyError, match=r"\(GB\): compensation needs one amount more"):
        late_interest_rules(bad)
