"""Calibrators that turn a booster's raw score (log-odds) into a PD, saved as plain numbers.

Training fits them (`training.calibrate`); every consumer only applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Calibrator(Protocol):
    method: str

    def predict(self, raw: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class PlattCalibrator:
    """PD = sigmoid(a * raw + b): linear in log-odds, so SHAP contributions scale exactly."""

    a: float
    b: float
    method: str = "platt"

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * np.asarray(raw) + self.b)))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b}


@dataclass
class IsotonicCalibrator:
    """A monotone step function of the raw score (reasons stay on the raw score)."""

    x: np.ndarray
    y: np.ndarray
    method: str = "isotonic"

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(raw), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        # repr-exact floats: a saved and reloaded calibrator gives the same PDs to the bit
        return {"method": self.method, "x": self.x.tolist(), "y": self.y.tolist()}


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    """The calibrator a `to_dict` described; an unknown method is refused by name."""
    method = data.get("method")
    if method == "platt":
        return PlattCalibrator(a=float(data["a"]), b=float(data["b"]))
    if method == "isotonic":
        return IsotonicCalibrator(
            x=np.asarray(data["x"], dtype="float64"), y=np.asarray(data["y"], dtype="float64")
        )
    raise ValueError(f"unknown calibration method {method!r} (known: platt, isotonic)")
