"""The feature catalog: every feature's name, family, window, meaning and direction of risk.

The catalog is built by the same loops that build the features (`features.payment_behaviour`), and a
test checks that the builder's columns are exactly the catalog's names, in order. Later stages read
it for reason-code wording (`unit`) and monotone constraints (`direction`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd

Family = Literal[
    "payment",
    "trend",
    "exposure",
    "volume",
    "relationship",
    "financials",
    "firmographics",
    "invoice",
]
Unit = Literal[
    "count", "share", "days", "amount", "ratio", "index", "years", "flag", "log", "category"
]

WINDOWS = (30, 90, 180, 365)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it measures, over which trailing window, and which way risk goes.

    `direction` is +1 when a higher value means more risk, -1 when it means less, 0 when the
    relation is not monotone or not known.
    """

    name: str
    family: Family
    description: str
    unit: Unit
    direction: int = 0
    window: int | None = None

    @property
    def categorical(self) -> bool:
        return self.unit == "category"


def catalog_frame(specs: list[FeatureSpec]) -> pd.DataFrame:
    """The catalog as a table, for the CLI, MLflow and the docs."""
    return pd.DataFrame([asdict(s) for s in specs])
