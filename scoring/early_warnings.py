"""Early warnings: a material change since the previous run that calls for an action.

Each rule names a severity and the action it calls for; a client is listed once, with its most
severe warning first. Materiality keeps the list short enough to work through: rating, statement
and over-limit warnings need a meaningful decision PD (the smoothed one, `pd_floor`: below it a
change is noise), an overdue warning an amount that matters against the client's limit, an
over-limit warning a real excess that grew. Clients in default are warned once, when they enter
it. The thresholds were tuned on a ledger of another seed than the one `benchmarks/decisions.py`
reports on.

The rules read two client tables (`scoring.scorer.client_table`): now and the previous run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.policy import WarningPolicy

SEVERITIES = ("critical", "high", "medium")
# the columns of a client table the rules read (a reader may load only these)
WARNING_COLUMNS = (
    "client_id",
    "as_of",
    "status",
    "status_reason",
    "grade",
    "decision_pd",
    "max_days_past_due",
    "overdue_balance",
    "over_limit_amount",
    "current_limit",
    "recommended_limit",
    "insurer_limit",
    "statement_age_days",
    "equity",
    "revenue_growth",
    "current_ratio",
    "open_balance",
    "expected_loss",
    "reason_1",
)


@dataclass(frozen=True)
class _Pair:
    """The clients of both runs, aligned: `now[c]` and `then[c]` are arrays of one column."""

    now: pd.DataFrame
    then: pd.DataFrame
    days: float  # between the runs

    def n(self, name: str) -> np.ndarray:
        return pd.to_numeric(self.now[name], errors="coerce").to_numpy(dtype="float64")

    def t(self, name: str) -> np.ndarray:
        return pd.to_numeric(self.then[name], errors="coerce").to_numpy(dtype="float64")

    def has(self, name: str) -> bool:
        """Whether both runs carry the column (a run from before it was added does not)."""
        return name in self.now and name in self.then


@dataclass(frozen=True)
class WarningRule:
    name: str
    severity: str
    action: str
    fires: Callable[[_Pair, WarningPolicy], np.ndarray]
    says: Callable[[_Pair, int], str]


def _live(p: _Pair) -> np.ndarray:
    return (p.now["status"].to_numpy() != "in_default") & (
        p.then["status"].to_numpy() != "in_default"
    )


def _limit(p: _Pair) -> np.ndarray:
    current = p.n("current_limit")
    return np.where(np.isfinite(current), current, p.n("recommended_limit"))


def _rating(p: _Pair, w: WarningPolicy) -> np.ndarray:
    g, g0 = p.n("grade"), p.t("grade")
    with np.errstate(invalid="ignore"):
        fell = (
            (g - g0 >= w.notches)
            | ((g >= w.watch_grade) & (g0 < w.watch_grade))
            | (p.n("decision_pd") >= w.pd_jump * p.t("decision_pd"))
        )
    return _meaningful(p, w) & fell


def _overdue(p: _Pair, w: WarningPolicy) -> np.ndarray:
    newly = (p.n("max_days_past_due") >= w.overdue_days) & ~(
        p.t("max_days_past_due") >= w.overdue_days
    )
    material = p.n("overdue_balance") >= np.maximum(
        w.overdue_floor, w.overdue_share_of_limit * np.nan_to_num(_limit(p))
    )
    return _live(p) & newly & material


def _meaningful(p: _Pair, w: WarningPolicy) -> np.ndarray:
    """A live client whose decision PD is at least the floor: below it, a change is noise."""
    return _live(p) & (p.n("decision_pd") >= w.pd_floor)


def _over_limit(p: _Pair, w: WarningPolicy) -> np.ndarray:
    excess = p.n("over_limit_amount")
    material = excess >= np.maximum(
        w.over_limit_floor, w.over_limit_share * np.nan_to_num(_limit(p))
    )
    grew = excess > np.nan_to_num(p.t("over_limit_amount"))
    return _meaningful(p, w) & material & grew


def _insurer(p: _Pair, w: WarningPolicy) -> np.ndarray:
    """The insurer cancelled or reduced its limit on a live client since the previous run."""
    if not p.has("insurer_limit"):
        return np.zeros(len(p.now), dtype=bool)
    now, then = p.n("insurer_limit"), p.t("insurer_limit")
    with np.errstate(invalid="ignore"):
        cut = np.isfinite(then) & (then > 0) & (np.nan_to_num(now, nan=0.0) < then)
    return _live(p) & cut


def _says_insurer(p: _Pair, i: int) -> str:
    now, then = p.n("insurer_limit")[i], p.t("insurer_limit")[i]
    if not np.isfinite(now) or now == 0:
        return f"the insurer cancelled its limit of {then:,.0f}"
    return f"the insurer reduced its limit from {then:,.0f} to {now:,.0f}"


def _new_statement(p: _Pair) -> np.ndarray:
    age = p.n("statement_age_days")
    return np.isfinite(age) & (age < p.days)


def _statement(p: _Pair, w: WarningPolicy) -> np.ndarray:
    """A statement published since the previous run: equity turned negative, revenue fell by
    `revenue_drop` or more, or the current ratio fell below 1."""
    worse = (
        ((p.n("equity") < 0) & ~(p.t("equity") < 0))
        | (p.n("revenue_growth") <= -w.revenue_drop)
        | ((p.n("current_ratio") < 1) & ~(p.t("current_ratio") < 1))
    )
    return _meaningful(p, w) & _new_statement(p) & worse


def _says_statement(p: _Pair, i: int) -> str:
    parts = []
    if p.n("equity")[i] < 0:
        parts.append(f"equity {p.n('equity')[i]:,.0f}")
    if p.n("revenue_growth")[i] < 0:
        parts.append(f"revenue {p.n('revenue_growth')[i]:+.0%}")
    if p.n("current_ratio")[i] < 1:
        parts.append(f"current ratio {p.n('current_ratio')[i]:.2f}")
    return "new statement: " + ", ".join(parts)


RULES: tuple[WarningRule, ...] = (
    WarningRule(
        "default",
        "critical",
        "stop deliveries; file the claim or start recovery",
        lambda p, w: (
            (p.now["status"].to_numpy() == "in_default")
            & (p.then["status"].to_numpy() != "in_default")
        ),
        lambda p, i: f"in default: {p.now['status_reason'].iloc[i]}",
    ),
    WarningRule(
        "overdue",
        "high",
        "stop deliveries and call the client",
        _overdue,
        lambda p, i: (
            f"newly {p.n('max_days_past_due')[i]:.0f} days past due, "
            f"{p.n('overdue_balance')[i]:,.0f} overdue"
        ),
    ),
    WarningRule(
        "insurer",
        "high",
        "stop uninsured deliveries: reduce the exposure to the insurer's limit or secure it",
        _insurer,
        _says_insurer,
    ),
    WarningRule(
        "rating",
        "high",
        "review the limit",
        _rating,
        lambda p, i: (
            f"grade {p.t('grade')[i]:.0f} -> {p.n('grade')[i]:.0f} "
            f"(decision PD {p.t('decision_pd')[i]:.1%} -> {p.n('decision_pd')[i]:.1%})"
        ),
    ),
    WarningRule(
        "statement",
        "medium",
        "review the limit and shorten the terms",
        _statement,
        _says_statement,
    ),
    WarningRule(
        "over_limit",
        "medium",
        "hold new orders until paid down, or raise the limit",
        _over_limit,
        lambda p, i: f"{p.n('over_limit_amount')[i]:,.0f} over the limit of {_limit(p)[i]:,.0f}",
    ),
)


def early_warnings(
    clients: pd.DataFrame, previous: pd.DataFrame | None, policy: WarningPolicy
) -> list[dict[str, Any]]:
    """One entry per client with at least one warning: its most severe rule's severity and
    action, every message, and the figures to sort by; most severe first, then by exposure."""
    if previous is None or clients.empty:
        return []
    common = pd.Index(clients["client_id"]).intersection(pd.Index(previous["client_id"]))
    now = clients.set_index("client_id").loc[common].reset_index()
    then = previous.set_index("client_id").loc[common].reset_index()
    days = (
        float((pd.Timestamp(now["as_of"].iloc[0]) - pd.Timestamp(then["as_of"].iloc[0])).days)
        if len(common)
        else 0.0
    )
    pair = _Pair(now, then, days)
    found: dict[int, list[WarningRule]] = {}
    for rule in RULES:
        for hit in np.flatnonzero(rule.fires(pair, policy)).tolist():
            found.setdefault(hit, []).append(rule)
    rows = []
    for i, rules in found.items():
        worst = min(rules, key=lambda r: SEVERITIES.index(r.severity))
        grade = now["grade"].iloc[i]
        rows.append(
            {
                "client_id": str(now["client_id"].iloc[i]),
                "severity": worst.severity,
                "action": worst.action,
                "rules": [r.name for r in rules],
                "flags": [r.says(pair, i) for r in rules],
                "decision_pd": float(now["decision_pd"].iloc[i]),
                "grade": "D" if pd.isna(grade) else str(int(grade)),
                "open_balance": float(now["open_balance"].iloc[i]),
                "expected_loss": float(now["expected_loss"].iloc[i]),
                "top_reason": str(now["reason_1"].iloc[i]),
            }
        )
    return sorted(
        rows,
        key=lambda r: (SEVERITIES.index(r["severity"]), -r["open_balance"], r["client_id"]),
    )
