"""The served form of a trained task: preprocessing and estimator in one MLflow pyfunc model.

Serving, batch scoring and champion re-scoring all call this, so a registered model predicts from the
canonical case columns (or the prepared table's columns) with no feature code outside the model.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

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


def signature(inputs: pd.DataFrame, outputs: pd.DataFrame, optional: tuple[str, ...] = ()) -> ModelSignature:
    """The model signature; nullable integer and boolean columns are typed ``Any``.

    MLflow's column types cannot hold a missing integer or boolean, so such columns pass schema
    enforcement untouched and :meth:`CaseModel.predict_frame` casts them back to the training dtype.
    ``optional`` columns (a table's label, read only as earlier rows' outcomes) may be left out.
    """
    nullable = {c for c in inputs.columns if isinstance(inputs[c].dtype, pd.Int64Dtype | pd.BooleanDtype)}
    nullable |= set(optional) & set(inputs.columns)
    with warnings.catch_warnings():  # its hint about missing integers is what the Any typing handles
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        inferred = infer_signature(inputs.astype(dict.fromkeys(nullable, "float64")), outputs)
    columns = [
        ColSpec(AnyType(), c.name, required=False) if c.name in nullable else c
        for c in inferred.inputs.inputs
    ]
    return ModelSignature(Schema(columns), inferred.outputs)
