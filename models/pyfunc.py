"""The served form of a trained task: preprocessing, estimator and the task's output in one MLflow pyfunc.

Serving, batch scoring, training's test scoring and champion re-scoring all call this, so a registered
model predicts and explains from the canonical case columns (or the prepared table's columns) with no
feature, dtype or link code outside the model. Models registered before the model carried its task's
``output`` are refused with :class:`ModelNotServable` (retrain them).
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Any

import lightgbm
import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

from contract.errors import StateError
from features.history import StayIndex
from features.view import Table
from models import lgbm
from models.explain import (
    Contributions,
    Explained,
    feature_names,
    patient_history_features,
    tree_contributions,
)
from models.task import Estimator, Output

History = pd.DataFrame | StayIndex | None


class ModelNotServable(StateError):
    """A registered model lacks what serving needs (the model contract, a model to explain)."""


class CaseModel(mlflow.pyfunc.PythonModel):
    """A fitted feature transformer followed by a task's fitted estimator, with the task's ``output``.

    ``output`` (:class:`models.task.Output`) is recorded from the task at training: which output column
    is the prediction and the link its SHAP values add up on. ``dtypes`` are the training inputs'
    dtypes: MLflow's schema has no nullable integers or booleans, so requests arrive with them as
    floats and are cast back before the features see them.
    """

    def __init__(
        self, features: Any, estimator: Estimator, output: Output, dtypes: dict[str, Any] | None = None
    ) -> None:
        self.features = features
        self.estimator = estimator
        self.output = output
        self.dtypes = dtypes or {}

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.predict_frame(model_input)

    def predict_frame(self, frame: pd.DataFrame, history: History = None) -> pd.DataFrame:
        """Predictions (every output column) for each row of ``frame``, positionally aligned with it.

        ``history`` (other canonical stays, e.g. the patients' earlier admissions, or a ``StayIndex``
        over them) feeds point-in-time history features; the pyfunc ``predict`` has none and sees only
        the rows it is given.
        """
        return self.outputs_of(self.features_of(frame, history))

    def explain_frame(self, frame: Table, history: History = None, threads: int = 1) -> Explained:
        """Features, predictions and SHAP values of each row of ``frame`` from one feature pass
        (``frame``: rows as a frame, or as columns for features that take them, the in-stay ones)."""
        X = self.features_of(frame, history)
        with lgbm.one_conversion(X):  # the predictions and the SHAP values convert it once
            outputs = self.outputs_of(X)
            contributions = self.contributions(X, threads)
        return Explained(
            X,
            outputs,
            outputs[self.output.column].to_numpy(dtype="float64"),
            contributions,
            self.output,
            self.explains,
            getattr(self.estimator, "level", None),
        )

    def features_of(self, frame: Table, history: History = None) -> pd.DataFrame:
        """The feature frame of ``frame``'s rows, its columns first cast to the training dtypes."""
        if isinstance(frame, pd.DataFrame):
            given = dict(zip(frame.columns, frame.dtypes, strict=True))  # (no Series made per column)
        else:
            given = {name: column.dtype for name, column in frame.items()}
        casts = {c: t for c, t in self.dtypes.items() if c in given and given[c] != t}
        if casts and isinstance(frame, pd.DataFrame):  # a canonical frame needs none, and
            frame = frame.astype(casts)  # ``astype({})`` still copies it
        elif casts:
            frame = {
                c: pd.Series(v, copy=False).astype(casts[c]).array if c in casts else v
                for c, v in frame.items()
            }
        if history is None or (isinstance(history, pd.DataFrame) and history.empty):
            return self.features.transform(frame)
        return self.features.transform(frame, history=history)

    def prepare(self) -> CaseModel:
        """Build what the features build on first use (casemix engines: tables, grouper), so that a
        service pays it when the model loads rather than in its first request."""
        prepare = getattr(self.features, "prepare", None)
        if prepare is not None:
            prepare()
        return self

    def outputs_of(self, X: pd.DataFrame) -> pd.DataFrame:
        """Every output column for a feature frame from :meth:`features_of` (positionally aligned): for
        callers that read the features too (the coding queue's audit columns), one feature pass."""
        found = self.estimator.predict(X)
        index = found.index  # positional already (a request's frame): no copy to renumber it
        if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
            return found
        return found.reset_index(drop=True)

    def contributions(self, X: pd.DataFrame, threads: int = 1) -> Contributions:
        """SHAP values on the ``output.link`` scale: the estimator's own ``contributions`` (e.g. a
        calibrated or linear model), else its tree model's (``explained``)."""
        own = getattr(self.estimator, "contributions", None)
        if own is not None:
            return Contributions.of(list(X.columns), *own(X, threads))
        if self._booster is None:
            raise self._unexplainable()
        return tree_contributions(self._booster, X, threads)

    @property
    def explains(self) -> str:
        """What the contributions add up to: "prediction", or "uncalibrated score" (isotonic calibration)."""
        return getattr(self.estimator, "explains", "prediction")

    @cached_property
    def _booster(self) -> lightgbm.Booster | None:
        explained = getattr(self.estimator, "explained", self.estimator)
        if isinstance(explained, lightgbm.Booster):
            return explained
        booster = getattr(explained, "booster_", None)
        return booster if isinstance(booster, lightgbm.Booster) else None

    @cached_property
    def names(self) -> dict[str, dict[str, str]]:
        """Readable zh/en name of every explained feature."""
        catalog = getattr(self.features, "catalog", None)
        if self._booster is not None:
            explained = self._booster.feature_name()
        elif callable(getattr(self.estimator, "contributions", None)) and isinstance(catalog, pd.DataFrame):
            explained = list(catalog["feature"])
        else:
            raise self._unexplainable()
        return feature_names(catalog, explained)

    @cached_property
    def history_features(self) -> frozenset[str]:
        """Features computed from the patient's earlier stays (an explanation may withhold them)."""
        return patient_history_features(getattr(self.features, "catalog", None))

    def _unexplainable(self) -> ModelNotServable:
        return ModelNotServable(f"the {self.output.en} model has no tree model or contributions to explain")

    def single_threaded(self) -> CaseModel:
        """Make every LightGBM model inside the estimator predict on one thread; returns the model.

        A service scores one case or a batch: OpenMP threads per prediction only contend with the other
        requests (and spin on a busy machine); concurrency comes from serving requests in parallel.
        """
        _single_threaded(self.estimator)
        return self


def servable(python_model: Any, what: str) -> CaseModel:
    """``python_model`` (a registered pyfunc, unwrapped) ready to serve, or why it cannot be.

    ``what`` names it in the error (e.g. "caselens-cost v3").
    """
    if not isinstance(python_model, CaseModel) or not isinstance(
        getattr(python_model, "output", None), Output
    ):
        raise ModelNotServable(
            f"{what} is not a CaseModel of the current format (features, estimator and its task's "
            "output): retrain it with `caselens train`"
        )
    python_model.names  # noqa: B018 - fails now, not on the first request, when nothing can be explained
    return python_model.single_threaded()


def _single_threaded(estimator: Any, depth: int = 3) -> None:
    for value in vars(estimator).values() if hasattr(estimator, "__dict__") else ():
        if isinstance(value, lightgbm.LGBMModel):
            value.set_params(n_jobs=1)
        elif depth > 0 and hasattr(value, "__dict__") and type(value).__module__.startswith("models"):
            _single_threaded(value, depth - 1)


def signature(inputs: pd.DataFrame, outputs: pd.DataFrame, optional: tuple[str, ...] = ()) -> ModelSignature:
    """The model signature; nullable integer and boolean columns are typed ``Any``.

    MLflow's column types cannot hold a missing integer or boolean, so such columns pass schema
    enforcement untouched and :meth:`CaseModel.features_of` casts them back to the training dtype.
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
