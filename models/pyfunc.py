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
    """A fitted feature transformer followed by a task's fitted estimator."""

    def __init__(self, features: Any, estimator: Estimator) -> None:
        self.features = features
        self.estimator = estimator

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.predict_frame(model_input)

    def predict_frame(self, frame: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predictions for each row of ``frame``, positionally aligned with it.

        ``history`` (other canonical stays, e.g. the patients' earlier admissions) feeds point-in-time
        history features; the pyfunc ``predict`` has none and sees only the rows it is given.
        """
        X = (
            self.features.transform(frame)
            if history is None
            else self.features.transform(frame, history=history)
        )
        return self.estimator.predict(X).reset_index(drop=True)
