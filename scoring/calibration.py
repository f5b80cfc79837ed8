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


@dataclass
class BetaCalibrator:
    """Beta calibration (Kull, Silva Filho and Flach 2017) of s = sigmoid(raw):
    logit(PD) = a ln(s) - b ln(1 - s) + c, with a, b >= 0 so that it is strictly increasing (no
    plateau ties clients). Not linear in log-odds: reasons stay on the raw score, as isotonic's."""

    a: float
    b: float
    c: float
    method: str = "beta"

    def predict(self, raw: np.ndarray) -> np.ndarray:
        r = np.asarray(raw, dtype="float64")
        # ln(s) = -ln(1 + e^-r) and -ln(1 - s) = ln(1 + e^r), computed without overflow
        z = -self.a * np.logaddexp(0.0, -r) + self.b * np.logaddexp(0.0, r) + self.c
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b, "c": self.c}


@dataclass
class InterpolatedCalibrator:
    """Isotonic regression's blocks joined by straight lines in log-odds: each block at (the
    mean raw score of its rows, its default rate), linear between them and beyond the ends with
    the end segments' slopes. Strictly increasing, so no plateau ties clients, yet as flexible as
    isotonic where the raw score bends (the best clients' PDs are not floored at one step). Not
    linear in log-odds: reasons stay on the raw score."""

    x: np.ndarray  # block centres, increasing
    logit: np.ndarray  # the blocks' log-odds, increasing
    method: str = "isotonic_interpolated"

    def predict(self, raw: np.ndarray) -> np.ndarray:
        r = np.asarray(raw, dtype="float64")
        x, z = self.x, self.logit
        out = np.interp(r, x, z)
        if len(x) > 1:
            first = (z[1] - z[0]) / (x[1] - x[0])
            last = (z[-1] - z[-2]) / (x[-1] - x[-2])
            out = np.where(r < x[0], z[0] + first * (r - x[0]), out)
            out = np.where(r > x[-1], z[-1] + last * (r - x[-1]), out)
        return 1.0 / (1.0 + np.exp(-out))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "x": self.x.tolist(), "logit": self.logit.tolist()}


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    """The calibrator a `to_dict` described; an unknown method is refused by name."""
    method = data.get("method")
    if method == "platt":
        return PlattCalibrator(a=float(data["a"]), b=float(data["b"]))
    if method == "isotonic":
        return IsotonicCalibrator(
            x=np.asarray(data["x"], dtype="float64"), y=np.asarray(data["y"], dtype="float64")
        )
    if method == "beta":
        return BetaCalibrator(a=float(data["a"]), b=float(data["b"]), c=float(data["c"]))
    if method == "isotonic_interpolated":
        return InterpolatedCalibrator(
            x=np.asarray(data["x"], dtype="float64"),
            logit=np.asarray(data["logit"], dtype="float64"),
        )
    raise ValueError(
        f"unknown calibration method {method!r} (known: platt, isotonic, beta, "
        "isotonic_interpolated)"
    )
