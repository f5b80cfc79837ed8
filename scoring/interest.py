"""Late-payment interest and fixed recovery compensation of overdue invoices, by jurisdiction.

`models/late_interest.csv` gives, per debtor country, the statute (reference rate plus a margin, a
fixed compensation per invoice by amount, each with its source and the date of its rates), a
contractual daily penalty, or "contractual" (the credit policy's rate). Interest is simple, from
the day after the due date to the day before `as_of`, on what is still outstanding; the fixed
compensation is due once per overdue invoice. Both are computed in the invoice's currency and
converted like every amount (`features.fx`); a compensation set in a currency the ledger has no
rate for is left empty rather than guessed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.fx import Rates
from scoring.paths import MODELS_DIR
from scoring.policy import LateInterestPolicy, PolicyError

RULES_FILE = MODELS_DIR / "late_interest.csv"
ANY = "*"
KINDS = ("statute", "daily_penalty", "contractual")


@dataclass(frozen=True)
class LateCharges:
    """Per invoice: interest and compensation in the invoice's currency, and the rule in words."""

    interest: np.ndarray
    compensation: np.ndarray  # NaN: its currency cannot be converted
    rule: np.ndarray


@functools.cache
def late_interest_rules(path: Path = RULES_FILE) -> pd.DataFrame:
    """The rules table, checked: one row per country and a `*` row, known kinds, numbers where a
    statute needs them, one more compensation amount than thresholds."""
    try:
        table = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise PolicyError(f"{path.name}: cannot read the late-interest rules ({exc})") from None
    for i, row in table.iterrows():
        at = f"{path.name} row {int(str(i)) + 1} ({row['country']})"
        if row["rule"] not in KINDS:
            raise PolicyError(f"{at}: rule must be one of {', '.join(KINDS)}, got {row['rule']!r}")
        if row["rule"] == "statute":
            for column in ("reference_rate_pct", "margin_pct", "compensation"):
                if not row[column]:
                    raise PolicyError(f"{at}: {column} is missing (a statute needs it)")
            amounts, thresholds = _numbers(row["compensation"]), _numbers(row["thresholds"])
            if len(amounts) != len(thresholds) + 1:
                raise PolicyError(f"{at}: compensation needs one amount more than thresholds")
        if not row["source"]:
            raise PolicyError(f"{at}: source is missing")
    if table["country"].duplicated().any() or ANY not in set(table["country"]):
        raise PolicyError(f"{path.name}: one row per country, and a '*' row for the rest")
    return table.set_index("country")


def _numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(";")] if text else []


def late_charges(
    invoices: pd.DataFrame,
    countries: np.ndarray,
    as_of: pd.Timestamp,
    policy: LateInterestPolicy,
    rates: Rates,
) -> LateCharges:
    """`invoices`: open invoices with currency, amount, fx_rate and late_amount_days
    (`scoring.receivables.open_invoices`); `countries`: each invoice's client's country."""
    table = late_interest_rules()
    n = len(invoices)
    interest = np.zeros(n)
    compensation = np.zeros(n)
    rule = np.full(n, "", dtype=object)
    # the late amount-days of each invoice (`features.instalments`: with a schedule, each
    # instalment from its own due date)
    base = invoices["late_amount_days"].to_numpy(dtype="float64")
    overdue = base > 0
    known = np.isin(countries, table.index.to_numpy())
    country = np.where(known, countries, ANY)
    for code in np.unique(country[overdue]):
        r = table.loc[code]
        rows = overdue & (country == code)
        if r["rule"] == "statute":
            annual = (float(r["reference_rate_pct"]) + float(r["margin_pct"])) / 100
            interest[rows] = base[rows] * annual / 365
            compensation[rows] = _compensation(invoices.loc[rows], r, as_of, rates)
            rule[rows] = (
                f"{code}: {r['reference_rate_name']} {float(r['reference_rate_pct']):g} % + "
                f"{float(r['margin_pct']):g} points, {r['compensation_currency']} "
                f"{r['compensation'].replace(';', '/')} fixed ({r['source']})"
            )
        elif r["rule"] == "daily_penalty":
            interest[rows] = base[rows] * policy.daily_penalty_rate
            rule[rows] = (
                f"{code}: contractual penalty {policy.daily_penalty_rate * 100:.2f} % a day "
                f"({r['source']})"
            )
        else:
            interest[rows] = base[rows] * policy.contractual_rate / 365
            rule[rows] = (
                f"contractual rate {policy.contractual_rate * 100:.1f} % a year (no statutory "
                "rate for the country in the table)"
            )
    return LateCharges(interest, compensation, rule)


def _compensation(
    invoices: pd.DataFrame, rule: pd.Series, as_of: pd.Timestamp, rates: Rates
) -> np.ndarray:
    """The fixed sum of each invoice, by its amount, in the invoice's currency."""
    amounts, thresholds = _numbers(rule["compensation"]), _numbers(rule["thresholds"])
    currency = invoices["currency"].to_numpy(dtype=object)
    to_reporting = invoices["fx_rate"].to_numpy(dtype="float64")  # the invoice's currency
    value = invoices["amount"].to_numpy(dtype="float64")
    if thresholds:  # the invoice's amount in the thresholds' currency
        threshold_rate = rates.on(np.array([rule["threshold_currency"]]), as_of)[0]
        if not np.isfinite(threshold_rate):
            return np.full(len(invoices), np.nan)
        value = value * to_reporting / threshold_rate
    tier = np.searchsorted(np.asarray(thresholds), value, side="right")
    fixed = np.asarray(amounts)[tier]
    own = currency == rule["compensation_currency"]
    comp_rate = rates.on(np.array([rule["compensation_currency"]]), as_of)[0]
    return np.where(own, fixed, fixed * comp_rate / to_reporting)
