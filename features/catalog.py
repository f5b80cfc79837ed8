"""The feature catalog: every feature's name, family, window, meaning and direction of risk.

One small function per family lists its features in the builder's column order
(`features.payment_behaviour`); a test checks that the builder's columns are exactly the catalog's
names, in order. Later stages read it for reason wording (`unit`, `description`) and monotone
constraints (`direction`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Literal

import numpy as np
import pandas as pd

Family = Literal[
    "payment",
    "trend",
    "exposure",
    "volume",
    "relationship",
    "financials",
    "firmographics",
    "standing",
    "invoice",
]
Unit = Literal[
    "count",
    "share",
    "days",
    "amount",
    "ratio",
    "change",  # a relative change: 0.34 reads +34 %
    "index",
    "years",
    "flag",
    "log",
    "category",
]

WINDOWS = (30, 90, 180, 365)


class Risk(IntEnum):
    """Which way risk goes as a feature's value rises (LightGBM's monotone constraint values)."""

    RISES = 1  # a higher value means more risk
    FALLS = -1  # a higher value means less risk
    UNKNOWN = 0  # not monotone, or not known: the model may learn any shape


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it measures, over which trailing window, and which way risk goes.

    `model` is False for the columns the decision rules read but no model learns from (a
    client's standing: insolvency, write-offs, equity, usual terms); they are built by the same
    point-in-time code, under the same leakage tests.
    """

    name: str
    family: Family
    description: str
    unit: Unit
    direction: Risk = Risk.UNKNOWN
    window: int | None = None
    model: bool = True

    @property
    def categorical(self) -> bool:
        return self.unit == "category"


def catalog_frame(specs: list[FeatureSpec]) -> pd.DataFrame:
    """The catalog as a table, for the CLI, MLflow and the docs (direction as +1 / -1 / 0)."""
    return pd.DataFrame([{**asdict(s), "direction": int(s.direction)} for s in specs])


# Aging buckets of the open balance by days past due: name, first and last day (inclusive).
AGING = (
    ("current", -np.inf, 0),
    ("1_30", 1, 30),
    ("31_60", 31, 60),
    ("61_90", 61, 90),
    ("90p", 91, np.inf),
)


def _feature(
    name: str,
    family: Family,
    description: str,
    unit: Unit,
    direction: Risk = Risk.UNKNOWN,
    window: int | None = None,
    *,
    model: bool = True,
) -> FeatureSpec:
    return FeatureSpec(name, family, description, unit, direction, window, model)


def _payment(window: int) -> list[FeatureSpec]:
    """How the invoices paid in a trailing window were paid."""
    paid = f"invoices paid in the last {window} days"

    def f(name: str, description: str, unit: Unit, direction: Risk) -> FeatureSpec:
        return _feature(f"{name}_{window}", "payment", description, unit, direction, window)

    return [
        f("paid_count", f"Number of {paid}", "count", Risk.UNKNOWN),
        f("late_share", f"Share of {paid} that were paid after the due date", "share", Risk.RISES),
        *[
            f(
                f"late{days}_share",
                f"Share of {paid} that were paid more than {days} days late",
                "share",
                Risk.RISES,
            )
            for days in (30, 60, 90)
        ],
        f("dpd_mean", f"Average days past due of {paid}", "days", Risk.RISES),
        f("dpd_max", f"Longest days past due among {paid}", "days", Risk.RISES),
        f("dpd_std", f"Spread (std) of days past due of {paid}", "days", Risk.UNKNOWN),
        f("dpd_last", f"Days past due of the last of the {paid}", "days", Risk.RISES),
        f("dbd_mean", f"Average days paid before the due date, {paid}", "days", Risk.FALLS),
        f("dbd_max", f"Most days paid before the due date, {paid}", "days", Risk.UNKNOWN),
        f("dbd_std", f"Spread (std) of days paid before due, {paid}", "days", Risk.UNKNOWN),
        f("dbd_last", f"Days before due of the last of the {paid}", "days", Risk.UNKNOWN),
        f("dbt_weighted", f"Amount-weighted days beyond terms of {paid}", "days", Risk.RISES),
        f("paydex", f"PAYDEX-like index (1-100, 80 = on time) of {paid}", "index", Risk.FALLS),
        f(
            "short_paid_share",
            f"Share of {paid} settled for less than invoiced",
            "share",
            Risk.RISES,
        ),
        f(
            "instalment_share",
            f"Share of {paid} that were paid in instalments",
            "share",
            Risk.RISES,
        ),
        f("dispute_rate", f"Share of {paid} that were disputed", "share", Risk.RISES),
    ]


def _trend() -> list[FeatureSpec]:
    """Whether payment is getting worse: the last 90 days against the 90 before."""
    return [
        _feature(
            "late_share_trend_90",
            "trend",
            "Change in the share paid late: last 90 days against the 90 before",
            "share",
            Risk.RISES,
            90,
        ),
        _feature(
            "dpd_mean_trend_90",
            "trend",
            "Change in average days past due: last 90 days against the 90 before",
            "days",
            Risk.RISES,
            90,
        ),
        _feature(
            "dpd_mean_ratio_90",
            "trend",
            "Ratio of average days past due (+1): last 90 days over the 90 before",
            "ratio",
            Risk.RISES,
            90,
        ),
        _feature(
            "dpd_slope_180",
            "trend",
            "Trend of days past due over the last 180 days, in days per month",
            "days",
            Risk.RISES,
            180,
        ),
    ]


def _aging_label(name: str, lo: float, hi: float) -> str:
    if name == "current":
        return "not yet due"
    return f"{lo}-{hi} days past due" if np.isfinite(hi) else "more than 90 days past due"


def _exposure() -> list[FeatureSpec]:
    """What is open today, and how overdue it is."""
    out = [
        _feature("open_count", "exposure", "Number of open invoices", "count"),
        _feature("open_balance", "exposure", "Open balance", "amount"),
        _feature(
            "overdue_balance", "exposure", "Open balance past its due date", "amount", Risk.RISES
        ),
    ]
    out += [
        _feature(
            f"aging_{name}",
            "exposure",
            f"Open balance {_aging_label(name, lo, hi)}",
            "amount",
            Risk.UNKNOWN if name == "current" else Risk.RISES,
        )
        for name, lo, hi in AGING
    ]
    out += [
        _feature(
            f"aging_{name}_share",
            "exposure",
            f"Share of the open balance {_aging_label(name, lo, hi)}",
            "share",
            Risk.FALLS if name == "current" else Risk.RISES,
        )
        for name, lo, hi in AGING
    ]
    return [
        *out,
        _feature(
            "oldest_open_age_days", "exposure", "Age of the oldest open invoice", "days", Risk.RISES
        ),
        _feature(
            "max_open_dpd",
            "exposure",
            "Days past due of the most overdue open invoice",
            "days",
            Risk.RISES,
        ),
        _feature(
            "open_to_monthly_volume",
            "exposure",
            "Open balance in months of usual invoicing",
            "ratio",
            Risk.RISES,
        ),
        _feature(
            "dso",
            "exposure",
            "Days sales outstanding (open balance over the last 90 days' invoicing)",
            "days",
            Risk.RISES,
        ),
    ]


def _volume() -> list[FeatureSpec]:
    """How much the client buys, and whether that grows."""
    out = []
    for w in WINDOWS:
        out += [
            _feature(
                f"invoice_count_{w}",
                "volume",
                f"Invoices issued in the last {w} days",
                "count",
                window=w,
            ),
            _feature(
                f"invoice_amount_{w}",
                "volume",
                f"Amount invoiced in the last {w} days",
                "amount",
                window=w,
            ),
        ]
    return [
        *out,
        _feature(
            "amount_growth_90",
            "volume",
            "Growth of the amount invoiced: last 90 days over the 90 before",
            "change",
            window=90,
        ),
        _feature(
            "count_growth_90",
            "volume",
            "Growth of the invoice count: last 90 days over the 90 before",
            "change",
            window=90,
        ),
        _feature(
            "amount_growth_365",
            "volume",
            "Growth of the amount invoiced: last year over the year before",
            "change",
            window=365,
        ),
    ]


def _relationship() -> list[FeatureSpec]:
    """How long and how deep the relationship is, and what it cost so far."""
    return [
        _feature("tenure_days", "relationship", "Days since onboarding", "days", Risk.FALLS),
        _feature(
            "days_since_first_invoice",
            "relationship",
            "Days since the first invoice",
            "days",
            Risk.FALLS,
        ),
        _feature("days_since_last_invoice", "relationship", "Days since the last invoice", "days"),
        _feature(
            "days_since_last_payment",
            "relationship",
            "Days since the last payment received",
            "days",
            Risk.RISES,
        ),
        _feature(
            "paid_invoices_total", "relationship", "Invoices paid so far (history depth)", "count"
        ),
        _feature(
            "active_months_365",
            "relationship",
            "Months with invoices in the last year (of 12)",
            "count",
            window=365,
        ),
        _feature(
            "thin_file",
            "relationship",
            "Thin file: under 6 paid invoices or under 180 days of tenure",
            "flag",
        ),
        _feature(
            "writeoffs_365",
            "relationship",
            "Invoices written off in the last year",
            "count",
            Risk.RISES,
            365,
        ),
        _feature(
            "writeoffs_total", "relationship", "Invoices written off so far", "count", Risk.RISES
        ),
    ]


def _financials() -> list[FeatureSpec]:
    """The latest financial statement published before `as_of`."""
    return [
        _feature(
            "leverage", "financials", "Total liabilities over total assets", "ratio", Risk.RISES
        ),
        _feature(
            "current_ratio",
            "financials",
            "Current assets over current liabilities",
            "ratio",
            Risk.FALLS,
        ),
        _feature("cash_ratio", "financials", "Cash over current liabilities", "ratio", Risk.FALLS),
        _feature(
            "ocf_margin", "financials", "Operating cash flow over revenue", "ratio", Risk.FALLS
        ),
        _feature("equity_ratio", "financials", "Equity over total assets", "ratio", Risk.FALLS),
        _feature(
            "revenue_growth",
            "financials",
            "Revenue growth against the previous statement",
            "change",
            Risk.FALLS,
        ),
        _feature("log_revenue", "financials", "Log of revenue in the latest statement", "log"),
        _feature(
            "statement_staleness_days",
            "financials",
            "Days since the latest statement's period ended",
            "days",
        ),
    ]


def _firmographics() -> list[FeatureSpec]:
    """Who the client is."""
    return [
        _feature("industry", "firmographics", "Industry", "category"),
        _feature("country", "firmographics", "Country", "category"),
        _feature(
            "country_risk_class",
            "firmographics",
            "OECD country risk class of the client's country (0 lowest, 7 highest)",
            "index",
            Risk.RISES,
        ),
        _feature("company_age_years", "firmographics", "Age of the company", "years"),
        _feature("log_registered_capital", "firmographics", "Log of registered capital", "log"),
        _feature(
            "external_rating_score",
            "firmographics",
            "External rating on a 1 (AAA) to 10 (D) scale",
            "index",
            Risk.RISES,
        ),
    ]


def _standing() -> list[FeatureSpec]:
    """What the decision rules read and no model learns from: whether the client is in default
    (and since when), data that contradicts itself, and the policy's inputs."""
    return [
        _feature(
            "insolvency_days", "standing", "Days since insolvency was declared", "days", model=False
        ),
        _feature(
            "writeoff_days",
            "standing",
            "Days since an invoice was last written off",
            "days",
            model=False,
        ),
        _feature(
            "dpd90_days",
            "standing",
            "Days since an invoice was last more than 90 days past due (0: one is now)",
            "days",
            model=False,
        ),
        _feature(
            "paid_after_writeoff",
            "standing",
            "Payments received on invoices already written off",
            "count",
            model=False,
        ),
        _feature(
            "equity", "standing", "Book equity in the latest statement", "amount", model=False
        ),
        _feature("revenue", "standing", "Revenue in the latest statement", "amount", model=False),
        _feature(
            "statement_age_days",
            "standing",
            "Days since the latest statement was published",
            "days",
            model=False,
        ),
        _feature(
            "usual_terms_days",
            "standing",
            "Usual payment terms: amount-weighted terms of the last year's invoices",
            "days",
            model=False,
        ),
    ]


def client_feature_specs() -> list[FeatureSpec]:
    """Every client column, in the builder's order (the model's features and the standing)."""
    payment = [spec for w in WINDOWS for spec in _payment(w)]
    return [
        *payment,
        *_trend(),
        *_exposure(),
        *_volume(),
        *_relationship(),
        *_financials(),
        *_firmographics(),
        *_standing(),
    ]


def invoice_feature_specs() -> list[FeatureSpec]:
    """The invoice's own attributes, added to its client's features at the issue date."""
    return [
        _feature("invoice_amount", "invoice", "Amount of the invoice", "amount"),
        _feature(
            "invoice_amount_to_usual",
            "invoice",
            "Invoice amount over the client's average of the last year",
            "ratio",
        ),
        _feature("invoice_terms_days", "invoice", "Payment terms of the invoice", "days"),
        _feature("invoice_issue_month", "invoice", "Calendar month of issue", "count"),
        _feature("invoice_currency", "invoice", "Currency of the invoice", "category"),
    ]


def feature_specs(unit: Literal["client", "invoice"]) -> list[FeatureSpec]:
    """The catalog of a unit's features, in column order."""
    specs = client_feature_specs()
    return specs + invoice_feature_specs() if unit == "invoice" else specs
