"""What a model predicts and from which columns: the two ledger models, or any table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from features.catalog import FeatureSpec, Risk, feature_specs
from scoring.store import DEFAULT_MODEL, LATE_MODEL

KEY_COLUMNS = {
    "client_id",
    "invoice_id",
    "as_of",
    "censored",
    "defaulted_before",
    "default_12m",
    "late",
    "payment_bucket",
    "timing_censored",
}


@dataclass(frozen=True)
class ModelSpec:
    """What a model predicts, from which columns, and what the data scientist should know of it."""

    name: str
    target: str
    time_column: str | None
    features: list[str]
    categorical: list[str]
    directions: dict[str, Risk]
    purpose: str
    unit: str = "table"
    segment_columns: tuple[str, ...] = ()
    # rows of one group (a client) are never on both sides of a split (see TrainConfig)
    group_column: str | None = None

    def catalog(self) -> list[FeatureSpec]:
        """The catalog entries of the features (ledger models; none for a user's table)."""
        if self.unit not in ("client", "invoice"):
            return []
        return feature_specs(self.unit)  # type: ignore[arg-type]


def ledger_spec(model: Literal["default", "late"]) -> ModelSpec:
    """The two ledger models and their catalogs."""
    unit: Literal["client", "invoice"] = "client" if model == "default" else "invoice"
    specs = [s for s in feature_specs(unit) if s.model]  # the standing columns are the rules'

    return ModelSpec(
        name=DEFAULT_MODEL if model == "default" else LATE_MODEL,
        target="default_12m" if model == "default" else "late",
        time_column="as_of",
        features=[s.name for s in specs],
        categorical=[s.name for s in specs if s.categorical],
        directions={s.name: s.direction for s in specs if s.direction},
        purpose=(
            "Probability that a client defaults (90+ days past due, write-off or insolvency) within 12 months."
            if model == "default"
            else "Probability that an invoice is paid after its due date (plus grace), scored at issue."
        ),
        unit=unit,
        segment_columns=("industry", "country", "size_band", "thin_file"),
        group_column="client_id",
    )


def table_spec(
    table: pd.DataFrame,
    *,
    target: str,
    time_column: str | None,
    name: str,
    group_column: str | None = None,
) -> ModelSpec:
    """A spec for any table a data scientist brings: every other column is a feature. With a
    `group_column` (e.g. a customer id), no group is on both sides of a split."""
    if target not in table.columns:
        raise KeyError(
            f"target column {target!r} is not in the table (columns: {', '.join(table.columns[:10])}...)"
        )
    if time_column is not None and time_column not in table.columns:
        raise KeyError(f"time column {time_column!r} is not in the table")
    if group_column is not None and group_column not in table.columns:
        raise KeyError(f"group column {group_column!r} is not in the table")
    drop = {target, time_column, group_column, "ID", "id"} | KEY_COLUMNS
    features = [c for c in table.columns if c not in drop]
    categorical = [
        c
        for c in features
        if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])
    ]
    return ModelSpec(
        name=name,
        target=target,
        time_column=time_column,
        features=features,
        categorical=categorical,
        directions={},
        purpose=f"Probability of {target} = 1.",
        group_column=group_column,
    )
