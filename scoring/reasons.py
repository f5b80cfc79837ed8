"""Reason codes: exact TreeSHAP contributions of the deployed booster, in plain words with the
client's own value, the value typical of good grades, and which way it differs.

"Revenue growth against the previous statement: -20%, lower than the +5% typical of grades 1-3".
The typical values (medians of the training population's grade 1-3 rows, the most common level of
a category) are measured at training time and travel in the model bundle (`metadata["typical"]`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec

GOOD_GRADES = 3  # "typical" values are those of grade 1..3 clients


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
        "change": f"{v:+.0%}",
        "index": f"{v:.0f}",
        "count": f"{v:,.0f}",
        "years": f"{v:.1f} years",
        "flag": "yes" if v >= 0.5 else "no",
        "log": f"{math.expm1(v):,.0f}" if v < 50 else f"e^{v:.1f}",
    }[spec.unit]


def _comparison(spec: FeatureSpec, value: object, typical: object) -> str:
    """', higher than the 2% typical of grades 1-3' (or lower, or 'as for'); '' if unknown."""
    if typical is None or value is None:
        return ""
    shown = format_value(spec, typical)
    if spec.unit == "category":
        same = str(value) == str(typical)
        return f", {'as for' if same else 'unlike'} grades 1-{GOOD_GRADES} (mostly {shown})"
    v, t = float(value), float(typical)  # type: ignore[arg-type]
    if not (math.isfinite(v) and math.isfinite(t)):
        return ""
    if format_value(spec, value) == shown:
        return f", as typical of grades 1-{GOOD_GRADES}"
    word = "higher" if v > t else "lower"
    if spec.unit in ("days", "years"):
        word = "longer" if v > t else "shorter"
    return f", {word} than the {shown} typical of grades 1-{GOOD_GRADES}"


def reason_text(name: str, value: object, spec: FeatureSpec | None, typical: object = None) -> str:
    """'34% of invoices paid in the last 90 days were paid more than 30 days late, higher than
    the 2% typical of grades 1-3'; a feature outside the catalog (a table brought by a user)
    reads 'name: value'."""
    shown = format_value(spec, value)
    if spec is None:
        return f"{name}: {shown}"
    text = spec.description
    if shown == "not available":
        return f"{text}: not available"
    tail = _comparison(spec, value, typical)
    if spec.unit == "share" and text.startswith("Share of "):
        rest = text[len("Share of ") :]
        return f"{shown} of {rest.replace('that were ', 'were ').replace('that ', '')}{tail}"
    if spec.unit == "log":
        return f"{text.replace('Log of ', '').capitalize()}: {shown}{tail}"
    return f"{text}: {shown}{tail}"


def typical_values(
    frame: pd.DataFrame, features: list[str], categorical: list[str], grade: np.ndarray
) -> dict[str, object]:
    """Per feature, the median (a category: the most common level) over the rows of grade 1-3;
    the values a model bundle keeps to say what "typical of good grades" means."""
    good = frame[np.asarray(grade) <= GOOD_GRADES]
    out: dict[str, object] = {}
    for name in features:
        values = good[name].dropna()
        if values.empty:
            continue
        if name in categorical:
            out[name] = str(values.astype(str).mode().iloc[0])
        else:
            out[name] = float(np.median(values.to_numpy(dtype="float64")))
    return out


@dataclass(frozen=True)
class Reason:
    feature: str
    value: object
    contribution: float  # log-odds, from TreeSHAP on the raw score
    text: str
    typical: object = None  # the value typical of grade 1-3 clients (None: not known)


def top_reasons(
    catalog: Mapping[str, FeatureSpec],
    names: list[str],
    value_of: Callable[[int], object],
    contributions: np.ndarray,
    *,
    top: int = 3,
    typical: Mapping[str, object] | None = None,
) -> tuple[list[Reason], list[Reason]]:
    """The `top` features that raise the risk most, and the `top` that lower it most;
    `value_of(j)` is the client's value of feature j (asked only for those shown), `catalog`
    the bundle's wording of its features, `typical` its good-grade values."""
    typical = typical or {}
    order = np.argsort(-contributions, kind="stable")  # the positive ones first, negative last
    risks = order[: min(top, int(np.count_nonzero(contributions > 0)))]
    strengths = order[::-1][: min(top, int(np.count_nonzero(contributions < 0)))]

    def build(i: np.intp) -> Reason:
        raw = value_of(int(i))
        value = None if pd.isna(raw) else raw
        name = names[i]
        text = reason_text(name, value, catalog.get(name), typical.get(name))
        return Reason(name, value, float(contributions[i]), text, typical.get(name))

    return [build(i) for i in risks], [build(i) for i in strengths]
