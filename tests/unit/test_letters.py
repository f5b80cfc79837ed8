"""Dunning letters: every template in every language renders a real client's overdue invoices,
amounts and charges, with nothing left unrendered; which clients get which letter."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from portfolio.letters import TEMPLATES, client_letters, render, template_of
from scoring.collections import LETTER_LANGUAGES, client_worklist
from scoring.interest import late_charges
from scoring.policy import CreditPolicy
from scoring.receivables import open_invoices, with_stage
from tests.ledgers import make_ledger

AS_OF = pd.Timestamp("2026-01-01")


def _invoices() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A German client with two overdue invoices (EUR and USD) and one not yet due."""
    ledger = make_ledger(
        clients=[
            {
                "client_id": "C1",
                "name": "Müller & Söhne <GmbH>",
                "country": "DE",
                "onboarded_on": "2024-01-01",
            }
        ],
        invoices=[
            {
                "invoice_id": "INV-7",
                "client_id": "C1",
                "issued_on": "2025-10-01",
                "due_on": "2025-10-31",
                "amount": 12345.67,
            },
            {
                "invoice_id": "INV-8",
                "client_id": "C1",
                "issued_on": "2025-11-02",
                "due_on": "2025-12-02",
                "amount": 999.5,
                "currency": "USD",
            },
            {
                "invoice_id": "INV-9",
                "client_id": "C1",
                "issued_on": "2025-12-20",
                "due_on": "2026-01-19",
                "amount": 50.0,
            },
        ],
        fx_rates=[{"date": "2025-09-01", "currency": "USD", "rate": 0.9}],
        reporting_currency="EUR",
        extracted_on="2025-12-31",
    )
    inv = with_stage(open_invoices(ledger, AS_OF), AS_OF)
    charges = late_charges(
        inv,
        np.array(["DE"] * len(inv), dtype=object),
        AS_OF,
        CreditPolicy.load().late_interest,
        ledger.rates,
    )
    stage = inv["escalation_stage"].to_numpy()
    inv = inv.assign(
        collection_queue="dunning",
        client_stage=np.where(stage > 0, stage.max(), 0).astype("int8"),
        avoidable_loss=0.0,
        late_interest=charges.interest * inv["fx_rate"],
        late_compensation=charges.compensation * inv["fx_rate"],
        late_charges_rule=charges.rule,
    )
    return inv, ledger.clients


@pytest.mark.parametrize("language", LETTER_LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_every_invoice_and_amount(template: str, language: str) -> None:
    inv, clients = _invoices()
    overdue = inv[inv["days_past_due"] > 0]
    client = {"id": "C1", "name": str(clients["name"].iloc[0]), "country": "DE"}
    html = render(template, language, client, overdue, AS_OF, pd.Timestamp("2026-01-20"))
    assert "{{" not in html and "{%" not in html and "}}" not in html
    assert "Müller &amp; Söhne &lt;GmbH&gt;" in html  # escaped, never raw markup
    for r in overdue.itertuples():
        assert r.invoice_id in html
        assert f"{r.outstanding_in_currency:,.2f} {r.currency}" in html
        interest = r.late_interest / r.fx_rate
        assert f"{interest:,.2f} {r.currency}" in html and interest > 0
    assert "INV-9" not in html  # not yet due: not in a dunning letter
    assert "40.00 EUR" in html  # Germany's fixed compensation on the EUR invoice
    assert "BGB §288" in html  # the legal basis of the charges
    total = overdue.loc[overdue["currency"] == "EUR"]
    due = total["outstanding_in_currency"].sum() + total["late_interest"].sum() + 40
    assert f"{due:,.2f} EUR" in html
    assert "2026-01-11" in html or "2026-01-08" in html  # pay by: 10 days (7 for the final)
    assert f'lang="{language}"' in html


def test_which_letter_a_worklist_row_calls_for() -> None:
    assert [template_of("dunning", s) for s in (0, 1, 2, 3, 4)] == [
        None,
        "reminder",
        "dunning",
        "final_notice",
        "final_notice",
    ]
    assert template_of("recovery", 4) == "final_notice"
    assert template_of("dispute", 2) is None and template_of("claim", 4) is None


def test_a_chunk_writes_one_letter_per_client_in_its_language() -> None:
    inv, clients = _invoices()
    worklist = client_worklist(
        inv, AS_OF, CreditPolicy.load(), countries=clients.set_index("client_id")["country"]
    )
    letters = client_letters(worklist, inv, clients, AS_OF)
    # INV-7 is 62 days past due: stage 3, the final notice, in German (the client's country)
    assert letters[["client_id", "language", "template"]].values.tolist() == [
        ["C1", "de", "final_notice"]
    ]
    assert re.search(r"<title>[^<]+ – Müller", letters["html"].iloc[0])


def test_a_bad_sender_file_is_refused_naming_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from portfolio.letters import sender
    from scoring.policy import PolicyError

    (tmp_path / "sender.yaml").write_text("name: Us\naddress: [x]\ncontact: c\nsignatory: s\n")
    with pytest.raises(PolicyError, match="bank_details is missing"):
        sender(tmp_path)
    (tmp_path / "sender.yaml").write_text(
        "name: Us\naddress: one line\ncontact: c\nbank_details: b\nsignatory: s\n"
    )
    sender.cache_clear()
    with pytest.raises(PolicyError, match="address must be a list of lines"):
        sender(tmp_path)
