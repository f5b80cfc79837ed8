"""The service's request and response documents (pydantic, at the HTTP edge only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contract import ACTIONS, MAX_AMOUNT

MAX_BATCH = 500


class Request(BaseModel):
    """A request body: strict types (no "100" for a number, no true for an amount, no 0 for a
    date) and no unknown field (a misspelt one is refused, naming it)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Reason(BaseModel):
    feature: str = Field(description="Feature name in the catalog.")
    value: Any = Field(description="The client's value of the feature.")
    contribution: float = Field(
        description="Exact TreeSHAP contribution to the raw score (log-odds)."
    )
    text: str = Field(
        description="The reason in plain words: the value, and how it compares with the value "
        "typical of grades 1-3.",
        examples=[
            "34% of invoices paid in the last 90 days were paid more than 30 days late, higher "
            "than the 2% typical of grades 1-3"
        ],
    )
    typical: Any = Field(default=None, description="The value typical of grade 1-3 clients.")


class LimitDecisionOut(BaseModel):
    requested_amount: float
    decision: str = Field(
        description="approve, approve_in_part (a request above the recommendation), reduce (the "
        "limit in force above it: the first of the stepped cuts), hold (no new orders until the "
        "balance falls to approved_amount), refuse, or refer (an analyst adds what the model "
        "lacks)."
    )
    approved_amount: float
    rules: list[str] = Field(description="The policy rules that fired.")


class ScoreDocument(BaseModel):
    client_id: str
    as_of: dt.date
    status: str = Field(
        description="in_default, undetermined, dormant, new or active: decided before any score.",
        examples=["active"],
    )
    status_reason: str = Field(description="Why, in words ('' for an active client).")
    pd_12m: float = Field(
        description="Point-in-time probability of default within 12 months (1 in default); "
        "drives expected loss."
    )
    decision_pd: float = Field(
        description="The PD smoothed over the nightly runs (hard events move it at once); "
        "drives grade, limit and warnings."
    )
    grade: str = Field(
        description="Master-scale grade of the decision PD: '1' (best) to '10', 'D' in default.",
        examples=["4"],
    )
    late_payment_probability: float = Field(
        description="Probability a typical new invoice is paid late."
    )
    expected_loss: float = Field(
        description="PD x LGD x EAD under the limit policy (LGD x exposure in default)."
    )
    recommended_limit: float
    limit_rule: str = Field(description="The policy rule that set the recommended limit.")
    # (a default keeps the null in BentoML's flattened copy of a response's top-level fields)
    current_limit: float | None = Field(default=None, description="The limit granted today.")
    over_limit: bool = Field(description="The open balance exceeds the limit materially.")
    over_limit_amount: float
    open_balance: float
    overdue_balance: float
    max_days_past_due: float = Field(description="Days past due of the most overdue invoice.")
    usual_terms_days: float | None = Field(
        default=None, description="Amount-weighted payment terms of the last year's invoices."
    )
    thin_file: bool = Field(
        description="Data sufficiency: too little history for a full payment profile."
    )
    data_sufficiency: str = Field(
        description="'full', or why the file is thin.",
        examples=["thin file: too little payment history for a full profile"],
    )
    country_risk: str = Field(
        description="OECD country risk class of the client's country, '0' (lowest) to '7', or "
        "'unrated' (models/country_risk.csv; high-income OECD and euro-area members count as 0).",
        examples=["2"],
    )
    transfer_risk: bool = Field(
        description="The country's class is at or above the policy's transfer-risk class (or "
        "unrated): payments may be blocked by the country itself."
    )
    current_terms: str = Field(
        default="",
        description="The terms seen on the client's recent invoices.",
        examples=["open account, 60 days"],
    )
    recommended_terms: str = Field(
        default="",
        description="Payment terms by risk (models/terms_policy.yaml), from the safest: advance "
        "payment, letter of credit or bank guarantee, instalments, open account by days.",
        examples=["instalments: 30 % on order, 40 % at 30 days, 30 % at 60 days"],
    )
    terms_rule: str = Field(default="", description="The terms policy's rule that fired.")
    risk_reasons: list[Reason] = Field(description="What raises the risk most.")
    strengths: list[Reason] = Field(description="What lowers the risk most.")
    limit_decision: LimitDecisionOut | None = None
    model_versions: dict[str, str]


class ApplicantProfile(Request):
    """Who the prospective client is (the contract's clients table, without our own dates)."""

    name: str = Field(min_length=1, max_length=200, examples=["Nordlicht Logistik GmbH"])
    country: str = Field(
        min_length=2, max_length=2, description="ISO 3166-1 alpha-2.", examples=["DE"]
    )
    industry: str = Field(min_length=1, max_length=64, examples=["wholesale"])
    registered_capital: float | None = Field(default=None, ge=0, le=1e13)
    founded_on: dt.date | None = Field(default=None, description="Date of incorporation.")
    external_rating: str | None = Field(
        default=None, max_length=8, description="Agency rating, e.g. BBB.", examples=["BBB"]
    )


class Statement(Request):
    """One financial statement of the applicant (the contract's financials table)."""

    period_end: dt.date
    published_on: dt.date | None = Field(
        default=None, description="When it became available (default: handed in today)."
    )
    revenue: float | None = Field(default=None, ge=0, le=1e13)
    total_assets: float | None = Field(default=None, ge=0, le=1e13)
    total_liabilities: float | None = Field(default=None, ge=0, le=1e13)
    current_assets: float | None = Field(default=None, ge=0, le=1e13)
    current_liabilities: float | None = Field(default=None, ge=0, le=1e13)
    cash: float | None = Field(default=None, ge=0, le=1e13)
    operating_cash_flow: float | None = Field(default=None, ge=-1e13, le=1e13)
    equity: float | None = Field(default=None, ge=-1e13, le=1e13)


class TradeReferenceIn(Request):
    """Another supplier's payment experience with the applicant."""

    supplier: str = Field(min_length=1, max_length=200)
    average_days_beyond_terms: float = Field(ge=-365, le=3650)
    max_days_beyond_terms: float = Field(ge=-365, le=3650)
    credit_limit: float | None = Field(default=None, ge=0, le=1e13)
    written_off: bool = False

    @model_validator(mode="after")
    def _average_within_worst(self) -> TradeReferenceIn:
        if self.average_days_beyond_terms > self.max_days_beyond_terms:
            raise ValueError(
                "average_days_beyond_terms exceeds max_days_beyond_terms: an average cannot be "
                "worse than the worst"
            )
        return self


class ApplicantDocument(ScoreDocument):
    trade_reference_findings: list[str] = Field(
        description="What the trade references say; an adverse one sends any request to an analyst."
    )


class BatchItem(BaseModel):
    client_id: str
    score: ScoreDocument | None = Field(default=None, description="The score (none: see error).")
    error: str | None = Field(
        default=None, description="Why this client has no score (unknown, not yet onboarded)."
    )


class BatchOut(BaseModel):
    results: list[BatchItem] = Field(description="One per requested id, in request order.")


class ClientMatch(BaseModel):
    client_id: str
    name: str
    country: str
    industry: str


class SearchOut(BaseModel):
    matches: list[ClientMatch] = Field(description="Up to 20 clients, an exact id first.")


class WaterfallStep(BaseModel):
    label: str = Field(description="The contribution in words (first: the model's expected value).")
    value: float = Field(description="Log-odds; all steps add up to the raw score.")


class GradeBand(BaseModel):
    grade: int
    upper_pd: float
    label: str


class HistoryMonth(BaseModel):
    month: str = Field(examples=["2025-03"])
    invoices: int = Field(description="Invoices settled in the month.")
    mean_days_past_due: float
    max_days_past_due: int


class AgingBucket(BaseModel):
    bucket: str
    amount: float
    invoices: int


class OpenInvoice(BaseModel):
    invoice_id: str
    due_on: str
    outstanding: float = Field(description="In the reporting currency at today's rate.")
    currency: str = Field(default="", description="The invoice's own currency.")
    outstanding_in_currency: float = Field(default=0.0, description="In the invoice's currency.")
    late_interest: float = Field(
        default=0.0, description="Late-payment interest to date (models/late_interest.csv)."
    )
    late_compensation: float | None = Field(
        default=None, description="Fixed recovery compensation (none: not convertible)."
    )
    late_charges_rule: str = Field(default="", description="The statute or contract applied.")
    insurance_cover: str = Field(
        default="", description="covered, notify soon, notified, claim due, cover at risk, ..."
    )
    insurer_notify_by: str = Field(default="", description="Notify the insurer by, once overdue.")
    days_past_due: int
    queue: str = Field(description="claim, recovery, dispute or dunning.")
    action: str = Field(description="What to do about it now (its client's stage).")


class Financials(BaseModel):
    period_end: str
    revenue: float | None
    equity: float | None
    total_assets: float | None
    total_liabilities: float | None
    current_assets: float | None
    current_liabilities: float | None
    cash: float | None
    operating_cash_flow: float | None
    current_ratio: float | None
    revenue_growth: float | None


class EarlyWarning(BaseModel):
    severity: str = Field(description="critical, high or medium.")
    action: str
    flags: list[str] = Field(description="What changed, in words.")


class WorkItem(BaseModel):
    queue: str = Field(description="claim, recovery, dispute or dunning.")
    stage: int
    action: str = Field(description="What to do now.")
    overdue_amount: float
    invoices: int
    next_step: str
    next_step_on: str
    over_limit_amount: float = Field(description="The client's balance over its limit (0: none).")
    late_interest: float = Field(default=0.0, description="Late-payment interest to date.")
    late_compensation: float | None = Field(
        default=None, description="Fixed recovery compensation (none: not convertible)."
    )
    last_action: str = Field(default="", description="The client's latest recorded action.")
    jurisdiction: str = Field(description="The client's country, where a claim is brought.")
    language: str = Field(description="Language of the client's letters (en, zh, de, fr, es).")


class DsoMonth(BaseModel):
    """The client's DSO measures at one month's end (`scoring.dso`; null: no sales in the
    three months)."""

    month: str
    receivables: float
    sales_3m: float = Field(description="Credit sales of the month and the two before.")
    dso: float | None
    countback_dso: float | None
    best_possible_dso: float | None
    average_days_delinquent: float | None


class ActionOut(BaseModel):
    client_id: str
    invoice_id: str | None = None
    action: str
    on: str
    amount: float | None = None
    note: str | None = None


class ActionRecorded(ActionOut):
    """The answer to /record_action: the action, and whether it was there already."""

    replayed: bool = Field(
        default=False,
        description="The very same action was recorded already: it is not recorded twice.",
    )


class InsuranceView(BaseModel):
    insurer: str
    insurer_limit: float | None = Field(default=None, description="None: no insurer limit.")
    insurer_status: str = Field(description="granted, reduced, cancelled or empty.")
    insured_exposure: float
    uninsured_exposure: float
    expected_loss_net: float = Field(description="Expected loss net of the indemnity.")
    note: str = Field(
        description="'exposure above cover', 'request a higher insurer limit', "
        "'request an insurer limit' or empty."
    )


class Letter(BaseModel):
    client_id: str
    template: str = Field(description="reminder, dunning or final_notice.")
    language: str = Field(description="en, zh, de, fr or es (from the client's country).")
    html: str = Field(description="The letter, a printable HTML page.")


class ClientView(BaseModel):
    """Everything the credit officer's page shows about one client."""

    score: ScoreDocument
    name: str
    country: str
    industry: str
    onboarded_on: str
    pd_a_month_ago: float | None = Field(default=None, description="The decision PD a month ago.")
    grade_a_month_ago: str | None = None
    waterfall: list[WaterfallStep]
    master_scale: list[GradeBand]
    early_warnings: list[EarlyWarning] = Field(
        description="The nightly report's rules, against the client a month earlier."
    )
    worklist: list[WorkItem] = Field(description="The client's rows of the collections worklist.")
    actions: list[ActionOut] = Field(
        default_factory=list, description="The client's latest recorded actions, newest first."
    )
    insurance: InsuranceView | None = Field(
        default=None, description="The credit insurance of the client (none: not insured)."
    )
    letter: Letter | None = Field(
        default=None,
        description="The dunning letter its stage calls for (models/letters/), or none.",
    )
    payment_history: list[HistoryMonth]
    aging: list[AgingBucket]
    dso: list[DsoMonth] = Field(description="The client's DSO over the last 12 months.")
    open_invoices: list[OpenInvoice] = Field(description="The ten most overdue open invoices.")
    reporting_currency: str = Field(
        default="", description="The currency of every amount but an invoice's own."
    )
    financials: Financials | None = None


# Request bodies of the endpoints (BentoML validates them before calling the method)

CLIENT_ID = Field(
    min_length=1, max_length=64, description="Client id in the ledger.", examples=["C0000042"]
)
AS_OF = Field(
    default=None,
    description="Score as of this date, YYYY-MM-DD, within the ledger's dates (default: the day "
    "after the ledger's extraction).",
)
REQUESTED = Field(default=None, gt=0, le=1e12, description="A credit limit to decide on.")


class ScoreIn(Request):
    client_id: str = CLIENT_ID
    as_of: dt.date | None = AS_OF
    requested_limit: float | None = REQUESTED


class ApplicantIn(Request):
    profile: ApplicantProfile
    financials: list[Statement] = Field(
        default_factory=list, max_length=20, description="Financial statements, any order."
    )
    trade_references: list[TradeReferenceIn] = Field(default_factory=list, max_length=20)
    expected_monthly_purchases: float | None = Field(
        default=None, gt=0, le=1e12, description="Expected purchases per month, for the limit."
    )
    requested_limit: float | None = REQUESTED
    as_of: dt.date | None = AS_OF


class BatchIn(Request):
    client_ids: list[str] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} client ids."
    )
    as_of: dt.date | None = AS_OF


class SearchIn(Request):
    query: str = Field(min_length=1, max_length=100, description="Part of a client id or name.")


class ViewIn(Request):
    client_id: str = CLIENT_ID
    as_of: dt.date | None = AS_OF


class ActionIn(Request):
    client_id: str = CLIENT_ID
    action: Literal[ACTIONS] = Field(  # type: ignore[valid-type]
        description="What was done.", examples=["promise_to_pay"]
    )
    on: dt.date = Field(description="When (on or before the ledger's extraction date).")
    invoice_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="The invoice, when about one."
    )
    amount: float | None = Field(
        default=None,
        ge=0,
        le=MAX_AMOUNT,
        allow_inf_nan=False,
        description="An amount it names (promised, ...).",
    )
    note: str | None = Field(
        default=None, max_length=500, description="Free text, one line (no control characters)."
    )


class ReloadIn(Request):
    """No fields: the champions, the runs and the keys are read again."""
