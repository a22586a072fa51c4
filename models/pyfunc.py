"""The served form of a trained task: preprocessing and estimator in one MLflow pyfunc model.

Serving, batch scoring and champion re-scoring all call this, so a registered model predicts from the
canonical case columns (or the prepared table's columns) with no feature code outside the model.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from models.task import Estimator


class CaseModel(mlflow.pyfunc.PythonModel):
    """A fitted feature transformer followed by a task's fitted estimator.

    ``dtypes`` are the training inputs' dtypes: MLflow's schema has no nullable integers or booleans,
    so requests arrive with them as floats and are cast back before the features see them.
    """

    def __init__(self, features: Any, estimator: Estimator, dtypes: dict[str, Any] | None = None) -> None:
        self.features = features
        self.estimator = estimator
        self.dtypes = dtypes or {}

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.predict_frame(model_input)

    def predict_frame(self, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predictions for each row of ``frame``, positionally aligned with it.

        ``history`` (other canonical stays, e.g. the patients' earlier admissions) feeds point-in-time
        history features; the pyfunc ``predict`` has none and sees only the rows it is given.
        """
        frame = frame.astype(
            {c: t for c, t in self.dtypes.items() if c in frame.columns and frame[c].dtype != t}
        )
        X = (
            self.features.transform(frame)
            if history is None
            else self.features.transform(frame, history=history)
        )
        return self.estimator.predict(X).reset_index(drop=True)


def schema_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in types MLflow's schema can hold: nullable integers and booleans become floats."""
    nullable = [c for c in frame.columns if isinstance(frame[c].dtype, pd.Int64Dtype | pd.BooleanDtype)]
    return frame.astype(dict.fromkeys(nullable, "float64"))
