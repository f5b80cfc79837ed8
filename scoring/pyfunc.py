"""The MLflow pyfunc flavour of a model bundle: `predict` returns PD, grade and top reasons,
never a bare 0/1 class.

It is logged from a code path (MLflow's models-from-code, `scoring/pyfunc_model.py`): no Python
object is pickled, and loading the model reads the plain-data bundle from its artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from scoring.bundle import ModelBundle
from scoring.store import BUNDLE_ARTIFACT

TOP_REASONS = 3
CODE_FILE = Path(__file__).with_name("pyfunc_model.py")  # what `log_model` is given


class CreditModel(PythonModel):
    """Loads the saved bundle from the model's artifacts."""

    bundle: ModelBundle

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.bundle.metadata.get("kind") == "timing":
            return predict_timing(self.bundle, model_input)
        if params is not None and not params.get("reasons", True):
            return self.bundle.predict(model_input, threads=1)  # PD and grade only
        return predict_with_reasons(self.bundle, model_input)


def predict_with_reasons(
    bundle: ModelBundle, frame: pd.DataFrame, *, top: int = TOP_REASONS
) -> pd.DataFrame:
    """PD, grade, raw score and the features that push the score up most (exact TreeSHAP)."""
    x = bundle.matrix(frame)
    contrib = bundle.contributions(x, threads=1)
    raw = bundle.raw_score(x, threads=1)
    p = bundle.probability(raw)
    out = pd.DataFrame({"pd": p, "grade": bundle.master_scale.grade(p), "raw_score": raw})
    order = np.argsort(-contrib[:, :-1], axis=1)[:, :top]
    names = np.asarray(bundle.features, dtype=object)
    for i in range(top):
        out[f"reason_{i + 1}"] = names[order[:, i]] if len(bundle.features) > i else ""
    return out


def predict_timing(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """A timing model's probability of each settlement bucket (`scoring.timing`), one column
    per bucket."""
    from scoring.timing import bucket_probabilities

    p = bucket_probabilities(bundle, bundle.matrix(frame))
    labels = list(bundle.metadata.get("buckets") or range(p.shape[1]))  # type: ignore[call-overload]
    return pd.DataFrame(p, columns=[f"p_{label}" for label in labels])
