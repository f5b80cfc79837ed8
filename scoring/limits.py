"""Credit limits: a recommended limit and a decision on a requested one, with the rules that fired.

A limit covers what the client usually buys over its payment terms plus grace (times a cover that
shrinks as the grade worsens), then every cap of the policy applies: the grade's, expected loss,
a share of revenue and of equity (latest statement known at `as_of`), the cap of the client's
country risk class (`scoring.country`), and for a new client a start
cap that rises with each month paid on time. Status comes first: a client in default or with
contradictory records gets nothing; a dormant one is reviewed down to the larger of its open
balance and the start cap. Zero purchases are zero, not unknown.

Pure functions; the numbers live in `models/credit_policy.yaml` (`limits`). All else equal, a worse
grade (higher PD) never gets a higher limit. `recommend_limits` is the vectorised twin of
`recommend_limit`, and a property test keeps them equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from features.country_risk import country_risk_label
from scoring.grades import MONTH_DAYS
from scoring.policy import LimitPolicy
from scoring.status import Status

Decision = Literal["approve", "approve_in_part", "refuse", "refer"]
DEFAULT_TERMS_DAYS = 30.0  # when a client has no recent invoice to read its terms from


@dataclass(frozen=True)
class ClientExposure:
    """What the policy needs to know of a client besides its risk."""

    monthly_volume: float  # usual monthly purchases (0: none; NaN: unknown, an applicant)
    open_balance: float
    tenure_days: float
    on_time_months: float  # months of history paid on time (tenure x share paid on time)
    usual_terms_days: float = float("nan")  # NaN: 30 days
    revenue: float = float("nan")
    equity: float = float("nan")
    status: str = Status.ACTIVE.value
    country_class: float = float("nan")  # OECD 0..7 (NaN: unrated; only words the rule)
    country_cap: float = float("inf")  # the policy's cap for the country's class


@dataclass(frozen=True)
class LimitRecommendation:
    limit: float
    rules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LimitDecision:
    requested_amount: float
    decision: Decision
    approved_amount: float
    recommended_limit: float
    rules: list[str]


def _round_down(amount: float) -> float:
    if amount >= 1000:
        return float(np.floor(amount / 1000.0) * 1000.0)
    return float(np.floor(max(amount, 0.0)))


def _terms(client: ClientExposure) -> float:
    return client.usual_terms_days if np.isfinite(client.usual_terms_days) else DEFAULT_TERMS_DAYS


def recommend_limit(
    policy: LimitPolicy, *, pd_: float, grade: int, client: ClientExposure
) -> LimitRecommendation:
    """The largest limit every rule allows, rounded down to a thousand; the binding rule named."""
    if client.status == Status.IN_DEFAULT:
        return LimitRecommendation(0.0, ["in default: no new credit, stop deliveries"])
    if client.status == Status.UNDETERMINED:
        return LimitRecommendation(0.0, ["status undetermined: no new credit until corrected"])
    g = int(np.clip(grade, 1, len(policy.grade_cap))) - 1
    if pd_ >= policy.refuse_pd or policy.grade_cap[g] <= 0:
        return LimitRecommendation(
            0.0, [f"PD {pd_:.1%} at or above the refusal threshold {policy.refuse_pd:.0%}"]
        )
    new = policy.new_client
    caps: dict[str, float] = {
        f"grade {grade} cap": policy.grade_cap[g],
        f"expected loss at most {policy.max_expected_loss_per_client:,.0f}": (
            policy.max_expected_loss_per_client / (pd_ * policy.lgd)
        ),
    }
    if client.status == Status.DORMANT:
        caps["dormant: the open balance or the start cap, whichever is larger"] = max(
            client.open_balance, new.start_cap
        )
    elif np.isfinite(client.monthly_volume):
        days = _terms(client) + policy.grace_days
        cover = (
            f"usual purchases over {_terms(client):.0f} days of terms plus "
            f"{policy.grace_days} of grace, x{policy.terms_cover[g]:g}"
        )
        need = client.monthly_volume * days / MONTH_DAYS * policy.terms_cover[g]
        # a new client may still buy up to its start cap before a volume is established
        caps[cover] = max(need, new.start_cap) if client.status == Status.NEW else need
    if np.isfinite(client.revenue) and client.revenue > 0:
        caps[f"{policy.revenue_share_cap:.0%} of annual revenue"] = (
            client.revenue * policy.revenue_share_cap
        )
    if np.isfinite(client.equity):
        caps[f"{policy.equity_share_cap:.0%} of book equity"] = (
            max(client.equity, 0.0) * policy.equity_share_cap
        )
    if np.isfinite(client.country_cap):
        label = country_risk_label(np.array([client.country_class]))[0]
        caps[f"country risk class {label} cap"] = client.country_cap
    if client.status == Status.NEW:
        months = max(0.0, client.on_time_months)
        caps[f"new client: {new.start_cap:,.0f} plus {new.step:,.0f} per month paid on time"] = (
            new.start_cap + new.step * np.floor(months)
        )
    binding = min(caps, key=lambda k: caps[k])
    return LimitRecommendation(_round_down(caps[binding]), [f"limit set by: {binding}"])


def over_limit(policy: LimitPolicy, balance: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Whether each open balance is over its limit, past the tolerance (a missing limit: no)."""
    excess = balance - limit
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(limit)
            & (excess > limit * policy.over_limit_tolerance)
            & (excess >= policy.over_limit_floor)
        )


def decide_limit(
    policy: LimitPolicy,
    *,
    requested: float,
    pd_: float,
    grade: int,
    client: ClientExposure,
) -> LimitDecision:
    """Approve in full, approve in part, refuse, or refer to an analyst, with the rules that fired."""
    if not np.isfinite(requested) or requested <= 0:
        raise ValueError(f"requested limit must be a positive amount, got {requested!r}")
    rec = recommend_limit(policy, pd_=pd_, grade=grade, client=client)
    rules = list(rec.rules)

    def answer(decision: Decision, amount: float, why: str) -> LimitDecision:
        return LimitDecision(requested, decision, amount, rec.limit, [*rules, why])

    if client.status == Status.UNDETERMINED:
        return answer("refer", 0.0, "contradictory records: an analyst decides")
    if rec.limit <= 0:
        return answer("refuse", 0.0, "nothing can be approved")
    if grade in policy.refer_grades:
        return answer(
            "refer", min(requested, rec.limit), f"grade {grade} requests always go to an analyst"
        )
    if over_limit(policy, np.array([client.open_balance]), np.array([requested]))[0]:
        return answer(
            "refer",
            min(requested, rec.limit),
            f"the open balance {client.open_balance:,.0f} is over the limit: hold new orders "
            "until it is paid down, or an analyst raises the limit",
        )
    if requested <= rec.limit:
        return answer("approve", requested, "request within the recommended limit")
    if requested <= rec.limit * policy.refer_band or client.status == Status.NEW:
        why = (
            "new client"
            if client.status == Status.NEW
            else (f"request within {policy.refer_band:g}x the recommendation")
        )
        return answer("refer", rec.limit, f"{why}: an analyst may grant more")
    return answer("approve_in_part", rec.limit, "request above the recommended limit")


def recommend_limits(
    policy: LimitPolicy,
    *,
    pd_: np.ndarray,
    grade: np.ndarray,
    status: np.ndarray,
    monthly_volume: np.ndarray,
    usual_terms_days: np.ndarray,
    open_balance: np.ndarray,
    revenue: np.ndarray,
    equity: np.ndarray,
    tenure_days: np.ndarray,
    on_time_months: np.ndarray,
    country_class: np.ndarray | None = None,
    country_cap: np.ndarray | None = None,
) -> np.ndarray:
    """`recommend_limit` for whole arrays at once (the limit only, not the rule's wording).
    Batch scoring of a million clients cannot loop in Python."""
    del tenure_days, country_class  # the status says whether a client is new; the cap is given
    g = np.clip(grade.astype(int), 1, len(policy.grade_cap)) - 1
    grade_cap = np.asarray(policy.grade_cap, dtype="float64")[g]
    cover = np.asarray(policy.terms_cover, dtype="float64")[g]
    new, dormant = status == Status.NEW.value, status == Status.DORMANT.value
    start, step = policy.new_client.start_cap, policy.new_client.step
    terms = np.where(np.isfinite(usual_terms_days), usual_terms_days, DEFAULT_TERMS_DAYS)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = monthly_volume * (terms + policy.grace_days) / MONTH_DAYS * cover
        volume_cap = np.where(
            dormant,
            np.maximum(open_balance, start),
            np.where(
                np.isfinite(monthly_volume), np.where(new, np.maximum(need, start), need), np.inf
            ),
        )
        caps = [
            grade_cap,
            policy.max_expected_loss_per_client / (pd_ * policy.lgd),
            volume_cap,
            np.where(
                np.isfinite(revenue) & (revenue > 0), revenue * policy.revenue_share_cap, np.inf
            ),
            np.where(
                np.isfinite(equity), np.maximum(equity, 0.0) * policy.equity_share_cap, np.inf
            ),
            np.where(new, start + step * np.floor(np.maximum(on_time_months, 0.0)), np.inf),
            np.full(len(pd_), np.inf) if country_cap is None else country_cap,
        ]
    limit = np.maximum(np.minimum.reduce(caps), 0.0)
    rounded = np.where(limit >= 1000, np.floor(limit / 1000.0) * 1000.0, np.floor(limit))
    refused = (
        (pd_ >= policy.refuse_pd)
        | (grade_cap <= 0)
        | (status == Status.IN_DEFAULT.value)
        | (status == Status.UNDETERMINED.value)
    )
    return np.where(refused, 0.0, rounded)
