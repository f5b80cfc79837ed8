"""Reason codes: exact TreeSHAP contributions of the deployed booster, in plain words with the
client's own values."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from features.pipeline import feature_specs


@cache
def _catalog() -> dict[str, FeatureSpec]:
    return {s.name: s for s in feature_specs("invoice")}


def format_value(spec: FeatureSpec | None, value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not available"
    if spec is None or spec.unit == "category":
        return str(value)
    v = float(value)  # type: ignore[arg-type]
    return {
        "share": f"{v:.0%}",
        "days": f"{v:,.0f} days",
        "amount": f"{v:,.0f}",
        "ratio": f"{v:.2f}",
        "index": f"{v:.0f}",
        "count": f"{v:,.0f}",
        "years": f"{v:.1f} years",
        "flag": "yes" if v >= 0.5 else "no",
        "log": f"{math.expm1(v):,.0f}" if v < 50 else f"e^{v:.1f}",
    }[spec.unit]


def reason_text(name: str, value: object) -> str:
    """'34% of invoices paid in the last 90 days were paid more than 30 days late'."""
    spec = _catalog().get(name)
    shown = format_value(spec, value)
    if spec is None:
        return f"{name}: {shown}"
    text = spec.description
    if shown == "not available":
        return f"{text}: not available"
    if spec.unit == "share" and text.startswith("Share of "):
        rest = text[len("Share of ") :]
        return f"{shown} of {rest.replace('that were ', 'were ').replace('that ', '')}"
    if spec.unit == "log":
        return f"{text.replace('Log of ', '').capitalize()}: {shown}"
    return f"{text}: {shown}"


@dataclass(frozen=True)
class Reason:
    feature: str
    value: object
    contribution: float  # log-odds, from TreeSHAP on the raw score
    text: str


def top_reasons(
    names: list[str],
    value_of: Callable[[int], object],
    contributions: np.ndarray,
    *,
    top: int = 3,
) -> tuple[list[Reason], list[Reason]]:
    """The `top` features that raise the risk most, and the `top` that lower it most;
    `value_of(j)` is the client's value of feature j (asked only for those shown)."""
    order = np.argsort(-contributions, kind="stable")  # the positive ones first, negative last
    risks = order[: min(top, int(np.count_nonzero(contributions > 0)))]
    strengths = order[::-1][: min(top, int(np.count_nonzero(contributions < 0)))]

    def build(i: np.intp) -> Reason:
        raw = value_of(int(i))
        value = None if pd.isna(raw) else raw
        return Reason(names[i], value, float(contributions[i]), reason_text(names[i], value))

    return [build(i) for i in risks], [build(i) for i in strengths]
