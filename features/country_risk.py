"""Country risk: the OECD country risk classification (`models/country_risk.csv`, with its
source, date and terms in the file's header) as a class per ISO 3166 alpha-2 country.

The OECD classifies transfer, convertibility and force-majeure risk from 0 (lowest) to 7. It
leaves the high-income OECD and euro-area members unclassified: the Arrangement prices their
export credits like category 0 (the market rate, no minimum premium for country risk), so they are
class 0 here. The few very small countries the OECD does not classify, and any country missing
from the table, are **unrated**: a class of its own (NaN as a model feature, which the model learns
as a branch of its own; "unrated" in every output; the policy's own cap), never a silent 0.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np

COUNTRY_RISK_FILE = Path(__file__).resolve().parents[1] / "models" / "country_risk.csv"
UNRATED = "unrated"
CLASSES = 8  # 0..7
HIGH_INCOME = ("high_income_oecd", "high_income_euro_area")  # unclassified by the OECD: class 0


@cache
def country_classes(path: Path = COUNTRY_RISK_FILE) -> dict[str, int]:
    """ISO alpha-2 code -> class 0..7; unrated countries are absent."""
    out: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        for row in rows:
            code, status = row["iso2"].strip(), row["status"].strip()
            if status == "classified":
                category = int(row["oecd_category"])
                if not 0 <= category < CLASSES:
                    raise ValueError(f"{path}: {code} has category {category}, not 0-7")
                out[code] = category
            elif status in HIGH_INCOME:
                out[code] = 0
            elif status != "not_classified":
                raise ValueError(f"{path}: {code} has an unknown status {status!r}")
    return out


def country_risk_class(countries: np.ndarray) -> np.ndarray:
    """The class of each country as a float (NaN: unrated)."""
    classes = country_classes()
    return np.array([classes.get(str(c), np.nan) for c in countries], dtype="float64")


def country_risk_label(classes: np.ndarray) -> np.ndarray:
    """'0'..'7', or 'unrated'."""
    classes = np.asarray(classes, dtype="float64")
    labels = np.full(len(classes), UNRATED, dtype=object)
    rated = np.isfinite(classes)
    labels[rated] = classes[rated].astype(int).astype(str)
    return labels
