"""Credit limits: a recommended limit and a decision on a requested one, with the rules that fired.

A credit manager is judged on bad debt *and* on the sales the limits let through, so a limit is set
for profit, not only for safety. It covers what the client usually buys over its payment terms plus
grace, times a cover that shrinks as the grade worsens: the headroom whose expected margin still
exceeds its expected loss (`gross_margin` and `lgd` in the policy; the decisions benchmark judges
the cover on sales enabled, exposure at default and profit). The caps follow the client's size, not
one figure per grade: a share of its revenue and of its equity (latest statement known at
`as_of`), the cap of its country's risk class (`scoring.country`), and for a new client a start
cap that rises with each month paid on time.

Status comes first: a client in default or with contradictory records gets nothing; a dormant one
is reviewed down to the larger of its open balance and the start cap. A client in good standing
(grade `keep_balance_grade` or better, nothing more than `keep_balance_dpd` days past due) is
never recommended less than it owes, nor (an active one) less than its usual purchases over its
terms and grace: a size cap limits its headroom, not its usual orders. A client with more than
`hold_dpd` days past due on a material amount is held: no new orders until its balance falls to
what it owes less the overdue (the overdue invoices paid). A cut of a current limit is stepped over
`cut_steps` monthly reviews, never overnight.

Decisions: approve, approve in part (a new request above the recommendation), reduce (a current
limit above it, stepped), hold, refuse, and refer, only where an analyst adds what the model lacks:
contradictory records, or a cut or hold of a material exposure (`refer_exposure`) with no
statement newer than `statement_months`.

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

Decision = Literal["approve", "approve_in_part", "reduce", "hold", "refuse", "refer"]
DEFAULT_TERMS_DAYS = 30.0  # when a client has no recent invoice to read its terms from
MONTH_OF_DAYS = 30.44  # a statement's age in months


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
    overdue_balance: float = 0.0
    max_days_past_due: float = 0.0  # of its open invoices
    statement_age_days: float = float("nan")  # of its latest statement (NaN: none)


@dataclass(frozen=True)
class LimitRecommendation:
    limit: float
    rules: list[str] = field(default_factory=list)
    hold: bool = False  # new orders held until the balance falls to `limit`


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


def _good_standing(policy: LimitPolicy, grade: int, client: ClientExposure) -> bool:
    return (
        grade <= policy.keep_balance_grade
        and client.max_days_past_due <= policy.keep_balance_dpd
        and client.status in (Status.ACTIVE, Status.NEW)
    )


def _held(policy: LimitPolicy, client: ClientExposure) -> bool:
    return (
        client.max_days_past_due > policy.hold_dpd and client.overdue_balance >= policy.hold_floor
    )


def recommend_limit(
    policy: LimitPolicy, *, pd_: float, grade: int, client: ClientExposure
) -> LimitRecommendation:
    """The largest limit every rule allows, rounded down to a thousand; the binding rule named
    (and, where it applies, why it is not below what the client owes, or why orders are held)."""
    if client.status == Status.IN_DEFAULT:
        return LimitRecommendation(0.0, ["in default: no new credit, stop deliveries"])
    if client.status == Status.UNDETERMINED:
        return LimitRecommendation(0.0, ["status undetermined: no new credit until corrected"])
    g = int(np.clip(grade, 1, len(policy.terms_cover))) - 1
    if pd_ >= policy.refuse_pd or policy.terms_cover[g] <= 0:
        return LimitRecommendation(
            0.0, [f"PD {pd_:.1%} at or above the refusal threshold {policy.refuse_pd:.0%}"]
        )
    new = policy.new_client
    caps: dict[str, float] = {}
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
    if client.status == Status.NEW:
        months = max(0.0, client.on_time_months)
        caps[f"new client: {new.start_cap:,.0f} plus {new.step:,.0f} per month paid on time"] = (
            new.start_cap + new.step * np.floor(months)
        )
    if not caps:  # an applicant with nothing known: the start cap
        caps["no purchases or statement known: the start cap"] = new.start_cap
    binding = min(caps, key=lambda k: caps[k])
    limit, rules = caps[binding], [f"limit set by: {binding}"]
    owed = _round_up(client.open_balance)
    usual = _usual_need(policy, client)
    floor = max(owed, usual)
    if _good_standing(policy, grade, client) and limit < floor:
        limit = floor
        what = (
            f"what it owes ({client.open_balance:,.0f})"
            if owed >= usual
            else f"its usual purchases over its terms and grace ({usual:,.0f})"
        )
        rules.append(
            f"not below {what}: in good standing (grade {policy.keep_balance_grade} or better, "
            f"nothing over {policy.keep_balance_dpd} days past due), a cap limits its headroom, "
            "not its usual orders"
        )
    # the country's cap is about transfer risk, which good standing does not lessen: it binds
    if np.isfinite(client.country_cap) and client.country_cap < limit:
        label = country_risk_label(np.array([client.country_class]))[0]
        limit, rules = client.country_cap, [f"limit set by: country risk class {label} cap"]
    if _held(policy, client):
        release = max(client.open_balance - client.overdue_balance, 0.0)
        limit = min(limit, release)
        rules.append(
            f"hold: {client.overdue_balance:,.0f} overdue, some of it more than "
            f"{policy.hold_dpd} days; no new orders until the balance falls to {release:,.0f} "
            "(the overdue invoices paid)"
        )
        return LimitRecommendation(_round_down(limit), rules, hold=True)
    return LimitRecommendation(_round_down(limit), rules)


def _usual_need(policy: LimitPolicy, client: ClientExposure) -> float:
    """A client's usual purchases over its terms plus grace (cover 1), rounded down to a
    thousand (a new client's ramp limits its headroom above them, not them); 0 when unknown."""
    if client.status not in (Status.ACTIVE, Status.NEW) or not np.isfinite(client.monthly_volume):
        return 0.0
    days = _terms(client) + policy.grace_days
    return _round_down(client.monthly_volume * days / MONTH_DAYS)


def _round_up(amount: float) -> float:
    """What a client owes as a limit: rounded up to a thousand (a limit of what it owes must
    not leave it a few units over)."""
    if amount <= 0:
        return 0.0
    return float(np.ceil(amount / 1000.0) * 1000.0)


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
    current: bool = False,
) -> LimitDecision:
    """Approve, approve in part, reduce (a `current` limit: the batch decision on the limit in
    force, stepped), hold, refuse, or refer to an analyst, with the rules that fired."""
    if not np.isfinite(requested) or requested <= 0:
        raise ValueError(f"requested limit must be a positive amount, got {requested!r}")
    rec = recommend_limit(policy, pd_=pd_, grade=grade, client=client)
    rules = list(rec.rules)

    def answer(decision: Decision, amount: float, why: str) -> LimitDecision:
        return LimitDecision(requested, decision, amount, rec.limit, [*rules, why])

    if client.status == Status.UNDETERMINED:
        return answer("refer", 0.0, "contradictory records: an analyst decides")
    if rec.limit <= 0 and not rec.hold:
        return answer("refuse", 0.0, "nothing can be approved")
    cut = rec.hold or requested > rec.limit
    exposure = max(requested, client.open_balance)
    stale = not (
        np.isfinite(client.statement_age_days)
        and client.statement_age_days <= policy.statement_months * MONTH_OF_DAYS
    )
    if cut and exposure >= policy.refer_exposure and stale:
        return answer(
            "refer",
            min(requested, rec.limit),
            f"a cut of a material exposure ({exposure:,.0f}) with no statement newer than "
            f"{policy.statement_months} months: an analyst with a current statement decides",
        )
    if rec.hold:
        return answer("hold", rec.limit, "orders held until the overdue is paid")
    if requested <= rec.limit:
        return answer("approve", requested, "within the recommended limit")
    if not current:
        return answer("approve_in_part", rec.limit, "request above the recommended limit")
    path = reduction_path(policy, requested, rec.limit)
    steps = ", then ".join(
        f"{amount:,.0f} {'now' if i == 0 else f'at the review in {i} month' + ('s' if i > 1 else '')}"
        for i, amount in enumerate(path)
    )
    return answer("reduce", path[0], f"reduce the limit in {len(path)} step(s): {steps}")


def reduction_path(policy: LimitPolicy, current: float, target: float) -> list[float]:
    """A cut from `current` to `target` in equal monthly steps (`cut_steps`), rounded down to a
    thousand, the last one the target."""
    n = max(1, policy.cut_steps)
    steps = [_round_down(current - (current - target) * (i + 1) / n) for i in range(n)]
    steps[-1] = target
    return [max(step, target) for step in steps]


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
    overdue_balance: np.ndarray | None = None,
    max_days_past_due: np.ndarray | None = None,
    statement_age_days: np.ndarray | None = None,
) -> np.ndarray:
    """`recommend_limit` for whole arrays at once (the limit only, not the rule's wording).
    Batch scoring of a million clients cannot loop in Python."""
    del tenure_days, country_class, statement_age_days  # the status says new; the cap is given
    n = len(pd_)
    overdue = np.zeros(n) if overdue_balance is None else overdue_balance
    dpd = np.zeros(n) if max_days_past_due is None else max_days_past_due
    g = np.clip(grade.astype(int), 1, len(policy.terms_cover)) - 1
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
            volume_cap,
            np.where(
                np.isfinite(revenue) & (revenue > 0), revenue * policy.revenue_share_cap, np.inf
            ),
            np.where(
                np.isfinite(equity), np.maximum(equity, 0.0) * policy.equity_share_cap, np.inf
            ),
            np.where(new, start + step * np.floor(np.maximum(on_time_months, 0.0)), np.inf),
        ]
    limit = np.minimum.reduce(caps)
    limit = np.where(np.isinf(limit), start, limit)  # nothing known: the start cap
    good = (
        (grade <= policy.keep_balance_grade)
        & (dpd <= policy.keep_balance_dpd)
        & ((status == Status.ACTIVE.value) | new)
    )
    owed = np.where(open_balance > 0, np.ceil(open_balance / 1000.0) * 1000.0, 0.0)
    with np.errstate(invalid="ignore"):
        usual = monthly_volume * (terms + policy.grace_days) / MONTH_DAYS
        usual = np.where(
            ((status == Status.ACTIVE.value) | new) & np.isfinite(usual),
            np.where(usual >= 1000, np.floor(usual / 1000.0) * 1000.0, np.floor(usual)),
            0.0,
        )
    floor = np.maximum(owed, usual)
    limit = np.where(good & (limit < floor), floor, limit)
    if country_cap is not None:  # transfer risk: good standing does not lessen it
        limit = np.minimum(limit, country_cap)
    held = (dpd > policy.hold_dpd) & (overdue >= policy.hold_floor)
    limit = np.where(held, np.minimum(limit, np.maximum(open_balance - overdue, 0.0)), limit)
    limit = np.maximum(limit, 0.0)
    rounded = np.where(limit >= 1000, np.floor(limit / 1000.0) * 1000.0, np.floor(limit))
    refused = (
        (pd_ >= policy.refuse_pd)
        | (cover <= 0)
        | (status == Status.IN_DEFAULT.value)
        | (status == Status.UNDETERMINED.value)
    )
    return np.where(refused, 0.0, rounded)
