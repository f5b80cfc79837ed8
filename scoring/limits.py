"""Credit-limit policy: a recommended limit and a decision on a requested limit, with the rules that fired.

Pure functions of the client's risk, size, exposure and tenure; the policy lives in
`models/limit_policy.yaml`. All else equal, a worse grade (higher PD) never gets a higher limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from scoring.paths import MODELS_DIR

Decision = Literal["approve", "approve_in_part", "refuse", "refer"]


@dataclass(frozen=True)
class LimitPolicy:
    lgd: float
    ccf: float
    refuse_pd: float
    refer_grades: tuple[int, ...]
    max_expected_loss_per_client: float
    months_of_sales: tuple[float, ...]
    grade_cap: tuple[float, ...]
    revenue_share_cap: float
    equity_share_cap: float
    new_client_tenure_days: float
    new_client_start_cap: float
    new_client_step: float
    refer_band: float

    @classmethod
    def load(cls, path: Path | None = None) -> LimitPolicy:
        raw = yaml.safe_load((path or MODELS_DIR / "limit_policy.yaml").read_text())
        new = raw.pop("new_client")
        return cls(
            lgd=float(raw["lgd"]),
            ccf=float(raw["ccf"]),
            refuse_pd=float(raw["refuse_pd"]),
            refer_grades=tuple(int(g) for g in raw["refer_grades"]),
            max_expected_loss_per_client=float(raw["max_expected_loss_per_client"]),
            months_of_sales=tuple(float(v) for v in raw["months_of_sales"]),
            grade_cap=tuple(float(v) for v in raw["grade_cap"]),
            revenue_share_cap=float(raw["revenue_share_cap"]),
            equity_share_cap=float(raw["equity_share_cap"]),
            new_client_tenure_days=float(new["tenure_days"]),
            new_client_start_cap=float(new["start_cap"]),
            new_client_step=float(new["step"]),
            refer_band=float(raw["refer_band"]),
        )

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LimitPolicy:
        """The inverse of `dataclasses.asdict` (lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClientExposure:
    """What the policy needs to know of a client besides its risk."""

    monthly_volume: float  # usual monthly purchases (NaN when unknown)
    open_balance: float
    tenure_days: float
    on_time_months: float  # months of history paid on time (tenure x share paid on time)
    revenue: float = float("nan")
    equity: float = float("nan")
    thin_file: bool = False


@dataclass(frozen=True)
class LimitRecommendation:
    limit: float
    rules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LimitDecision:
    decision: Decision
    approved_amount: float
    recommended_limit: float
    rules: list[str]


def _round_down(amount: float) -> float:
    return (
        float(np.floor(max(amount, 0.0) / 1000.0) * 1000.0)
        if amount >= 1000
        else float(np.floor(max(amount, 0.0)))
    )


def recommend_limit(
    policy: LimitPolicy, *, pd_: float, grade: int, client: ClientExposure
) -> LimitRecommendation:
    """The largest limit every rule allows, rounded down to a thousand; the binding rules are named."""
    g = int(np.clip(grade, 1, len(policy.grade_cap))) - 1
    if pd_ >= policy.refuse_pd or policy.grade_cap[g] <= 0:
        return LimitRecommendation(
            0.0, [f"PD {pd_:.1%} at or above the refusal threshold {policy.refuse_pd:.0%}"]
        )
    caps: dict[str, float] = {
        f"grade {grade} cap": policy.grade_cap[g],
        f"expected loss at most {policy.max_expected_loss_per_client:,.0f}": policy.max_expected_loss_per_client
        / (pd_ * policy.lgd),
    }
    if np.isfinite(client.monthly_volume) and client.monthly_volume > 0:
        caps[f"{policy.months_of_sales[g]:g} months of usual purchases"] = (
            client.monthly_volume * policy.months_of_sales[g]
        )
    if np.isfinite(client.revenue) and client.revenue > 0:
        caps[f"{policy.revenue_share_cap:.0%} of annual revenue"] = (
            client.revenue * policy.revenue_share_cap
        )
    if np.isfinite(client.equity):
        caps[f"{policy.equity_share_cap:.0%} of book equity"] = (
            max(client.equity, 0.0) * policy.equity_share_cap
        )
    if client.tenure_days < policy.new_client_tenure_days or client.thin_file:
        months = max(0.0, client.on_time_months)
        caps[
            f"new client: {policy.new_client_start_cap:,.0f} plus {policy.new_client_step:,.0f} per month paid on time"
        ] = policy.new_client_start_cap + policy.new_client_step * np.floor(months)
    binding = min(caps, key=lambda k: caps[k])
    limit = _round_down(caps[binding])
    return LimitRecommendation(limit, [f"limit set by: {binding}"])


def decide_limit(
    policy: LimitPolicy, *, requested: float, pd_: float, grade: int, client: ClientExposure
) -> LimitDecision:
    """Approve in full, approve in part, refuse, or refer to an analyst, with the rules that fired."""
    if not np.isfinite(requested) or requested <= 0:
        raise ValueError(f"requested limit must be a positive amount, got {requested!r}")
    rec = recommend_limit(policy, pd_=pd_, grade=grade, client=client)
    rules = list(rec.rules)
    if rec.limit <= 0:
        return LimitDecision("refuse", 0.0, 0.0, [*rules, "nothing can be approved"])
    if grade in policy.refer_grades:
        rules.append(f"grade {grade} requests always go to an analyst")
        return LimitDecision("refer", min(requested, rec.limit), rec.limit, rules)
    if requested <= rec.limit:
        return LimitDecision(
            "approve", requested, rec.limit, [*rules, "request within the recommended limit"]
        )
    if requested <= rec.limit * policy.refer_band or client.thin_file:
        why = (
            "thin file"
            if client.thin_file
            else f"request within {policy.refer_band:g}x the recommendation"
        )
        return LimitDecision(
            "refer", rec.limit, rec.limit, [*rules, f"{why}: an analyst may grant more"]
        )
    return LimitDecision(
        "approve_in_part", rec.limit, rec.limit, [*rules, "request above the recommended limit"]
    )


def recommend_limits(
    policy: LimitPolicy,
    *,
    pd_: np.ndarray,
    grade: np.ndarray,
    monthly_volume: np.ndarray,
    revenue: np.ndarray,
    equity: np.ndarray,
    tenure_days: np.ndarray,
    on_time_months: np.ndarray,
    thin_file: np.ndarray,
) -> np.ndarray:
    """`recommend_limit` for whole arrays at once (the limit only, not the rule's wording); a
    property test checks both agree. Batch scoring of a million clients cannot loop in Python."""
    g = np.clip(grade.astype(int), 1, len(policy.grade_cap)) - 1
    grade_cap = np.asarray(policy.grade_cap, dtype="float64")[g]
    months = np.asarray(policy.months_of_sales, dtype="float64")[g]
    with np.errstate(divide="ignore", invalid="ignore"):
        caps = [
            grade_cap,
            policy.max_expected_loss_per_client / (pd_ * policy.lgd),
            np.where(
                np.isfinite(monthly_volume) & (monthly_volume > 0), monthly_volume * months, np.inf
            ),
            np.where(
                np.isfinite(revenue) & (revenue > 0), revenue * policy.revenue_share_cap, np.inf
            ),
            np.where(
                np.isfinite(equity), np.maximum(equity, 0.0) * policy.equity_share_cap, np.inf
            ),
            np.where(
                (tenure_days < policy.new_client_tenure_days) | thin_file,
                policy.new_client_start_cap
                + policy.new_client_step * np.floor(np.maximum(on_time_months, 0.0)),
                np.inf,
            ),
        ]
    limit = np.minimum.reduce(caps)
    limit = np.maximum(limit, 0.0)
    rounded = np.where(limit >= 1000, np.floor(limit / 1000.0) * 1000.0, np.floor(limit))
    refused = (pd_ >= policy.refuse_pd) | (grade_cap <= 0)
    return np.where(refused, 0.0, rounded)
