"""Prospective clients: a one-client ledger from what the applicant hands in, scored by the same
feature code and models as everyone else, plus what its trade references say.

An applicant has no payment history with us, so every payment feature is missing and the file is
thin; the default model still reads its firmographics and financial statements, and the limit
policy treats it as a new client (start cap, referral of anything above the recommendation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from features.contract import Ledger, LedgerValidationError, check_ledger, empty_table
from scoring.limits import LimitDecision

APPLICANT_ID = "APPLICANT"
ADVERSE_DAYS_BEYOND_TERMS = (
    60.0  # a reference this late (or a write-off) sends any request to an analyst
)


@dataclass(frozen=True)
class TradeReference:
    """Another supplier's experience with the applicant."""

    supplier: str
    average_days_beyond_terms: float
    max_days_beyond_terms: float
    credit_limit: float | None = None
    written_off: bool = False


def applicant_ledger(
    profile: dict[str, Any], statements: Sequence[dict[str, Any]], as_of: pd.Timestamp
) -> Ledger:
    """The applicant as a one-client ledger known on the day before `as_of`; statements are taken
    as handed in that day unless they say when they were published. Contract violations raise
    `LedgerValidationError`, whose rows name the table ("clients" is the profile), row and column."""
    known = as_of - pd.Timedelta(days=1)
    client = {
        "client_id": APPLICANT_ID,
        "onboarded_on": known,
        **profile,
    }
    rows = []
    for s in statements:
        row = {"client_id": APPLICANT_ID, "published_on": known, **s}
        if row.get("published_on") is None:
            row["published_on"] = known
        rows.append(row)
    financials = pd.DataFrame(rows) if rows else empty_table("financials")
    ledger, violations = check_ledger(
        {
            "clients": pd.DataFrame([client]),
            "invoices": empty_table("invoices"),
            "financials": financials,
        },
        extracted_on=known,
    )
    if len(violations):
        raise LedgerValidationError(violations)
    return ledger


def trade_reference_findings(references: Sequence[TradeReference]) -> tuple[list[str], bool]:
    """Plain-language findings of the trade references, and whether any is adverse."""
    findings: list[str] = []
    adverse = False
    for r in references:
        if r.written_off:
            findings.append(f"{r.supplier} wrote off a debt of the applicant")
            adverse = True
        elif r.max_days_beyond_terms > ADVERSE_DAYS_BEYOND_TERMS:
            findings.append(
                f"{r.supplier} was paid up to {r.max_days_beyond_terms:.0f} days beyond terms "
                f"(more than {ADVERSE_DAYS_BEYOND_TERMS:.0f})"
            )
            adverse = True
        else:
            findings.append(
                f"{r.supplier} reports payment on average {r.average_days_beyond_terms:.0f} days beyond terms"
            )
    if not references:
        findings.append("no trade references given")
    return findings, adverse


def apply_trade_references(
    decision: LimitDecision | None, references: Sequence[TradeReference]
) -> tuple[LimitDecision | None, list[str]]:
    """An adverse trade reference turns an approval into a referral to an analyst."""
    findings, adverse = trade_reference_findings(references)
    if decision is None or not adverse or decision.decision not in ("approve", "approve_in_part"):
        return decision, findings
    rules = [*decision.rules, "adverse trade reference: an analyst decides"]
    return replace(decision, decision="refer", rules=rules), findings
