"""Reason codes: exact TreeSHAP contributions of the deployed booster, in plain words with the
client's own values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec


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


def reason_text(name: str, value: object, spec: FeatureSpec | None) -> str:
    """'34% of invoices paid in the last 90 days were paid more than 30 days late'; a feature
    outside the catalog (a table brought by a user) reads 'name: value'."""
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
    catalog: Mapping[str, FeatureSpec],
    names: list[str],
    value_of: Callable[[int], object],
    contributions: np.ndarray,
    *,
    top: int = 3,
) -> tuple[list[Reason], list[Reason]]:
    """The `top` features that raise the risk most, and the `top` that lower it most;
    `value_of(j)` is the client's value of feature j (asked only for those shown), `catalog`
    the bundle's wording of its features."""
    order = np.argsort(-contributions, kind="stable")  # the positive ones first, negative last
    risks = order[: min(top, int(np.count_nonzero(contributions > 0)))]
    strengths = order[::-1][: min(top, int(np.count_nonzero(contributions < 0)))]

    def build(i: np.intp) -> Reason:
        raw = value_of(int(i))
        value = None if pd.isna(raw) else raw
        text = reason_text(names[i], value, catalog.get(names[i]))
        return Reason(names[i], value, float(contributions[i]), text)

    return [build(i) for i in risks], [build(i) for i in strengths]
