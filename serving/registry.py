"""The models being served, loaded from the MLflow registry by alias and swapped whole on reload.

Requests read ``ModelRegistry.models`` once and keep that mapping, so a reload that replaces it
(one reference assignment, atomic in CPython) never lets a request see half of an old and half of a
new set. A version that fails to load never replaces a working one: the old version keeps serving and
the failure is reported by /readyz and the reload answer.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import lightgbm
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from contract.errors import NotFound, StateError
from contract.settings import mask_credentials
from features.history import StayIndex
from serving.explain import Explained, Link, feature_names, patient_history_features, tree_contributions
from serving.schemas import ModelStatus
from serving.tasks import CHAMPION_ALIAS, SERVED_TASKS, ServedTask

log = logging.getLogger(__name__)

DEFAULT_LINKS: dict[str, Link] = {
    "cost": "log",
    "margin": "identity",
    "readmission": "logit",
    "coding": "logit",
}


class ModelNotServable(StateError):
    """A registered model lacks what serving needs (features, estimator, a LightGBM tree model)."""


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version with the parts the service uses directly.

    The registered pyfunc is a ``models.pyfunc.CaseModel``: ``features`` (the point-in-time transformer
    with its ``catalog`` of readable names) then ``estimator`` (whose ``predict`` returns named output
    columns, the first being the prediction, and whose ``explained`` is the LightGBM model SHAP
    explains). Serving calls the same two steps as ``CaseModel.predict_frame`` but keeps the feature
    frame, so the explanation costs no second feature pass.
    """

    task: ServedTask
    version: str
    features: Any
    estimator: Any
    booster: lightgbm.Booster | None  # None when the estimator explains itself (``contributions``)
    link: Link
    names: dict[str, dict[str, str]]
    history_features: frozenset[str]  # computed from the patient's earlier stays (see serving.explain)

    @property
    def name(self) -> str:
        return self.task.model_name

    @property
    def level(self) -> float | None:
        return getattr(self.estimator, "level", None)

    def features_for(
        self, cases: pd.DataFrame, history: pd.DataFrame | StayIndex | None = None
    ) -> pd.DataFrame:
        if history is None or (isinstance(history, pd.DataFrame) and history.empty):
            return self.features.transform(cases)
        return self.features.transform(cases, history=history)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.estimator.predict(X).reset_index(drop=True)

    def explain(self, X: pd.DataFrame, threads: int = 1) -> Explained:
        """SHAP values on the scale of the served prediction: the estimator's own ``contributions``
        (e.g. a calibrated or linear model), else the tree model's."""
        own = getattr(self.estimator, "contributions", None)
        if own is None:
            return tree_contributions(self.booster, X, threads)  # type: ignore[arg-type]
        values, base = own(X, threads)
        return Explained(list(X.columns), values, base, values.sum(axis=1) + base)


def single_threaded(estimator: Any, depth: int = 3) -> None:
    """Make every LightGBM model inside ``estimator`` predict on one thread.

    A request scores one case or a batch: OpenMP threads per prediction only contend with the other
    requests (and spin on a busy machine); concurrency comes from serving requests in parallel.
    """
    for value in vars(estimator).values() if hasattr(estimator, "__dict__") else ():
        if isinstance(value, lightgbm.LGBMModel):
            value.set_params(n_jobs=1)
        elif depth > 0 and hasattr(value, "__dict__") and type(value).__module__.startswith("models"):
            single_threaded(value, depth - 1)


def served_model(task: ServedTask, version: str, python_model: Any) -> ServedModel:
    """Pick the served parts out of an unwrapped pyfunc model, or say what is missing."""
    features = getattr(python_model, "features", None)
    estimator = getattr(python_model, "estimator", None)
    if features is None or estimator is None:
        raise ModelNotServable(
            f"{task.model_name} v{version} is not a CaseModel (needs features and estimator)"
        )
    explained = getattr(estimator, "explained", estimator)
    booster = explained if isinstance(explained, lightgbm.Booster) else getattr(explained, "booster_", None)
    catalog = getattr(features, "catalog", None)
    if isinstance(booster, lightgbm.Booster):
        explained_features = booster.feature_name()
    elif callable(getattr(estimator, "contributions", None)) and isinstance(catalog, pd.DataFrame):
        booster, explained_features = None, list(catalog["feature"])
    else:
        raise ModelNotServable(f"{task.model_name} v{version}: its estimator has no model to explain")
    link = getattr(estimator, "link", None) or (
        "logit"
        if booster is not None and "binary" in str(booster.params.get("objective", ""))
        else DEFAULT_LINKS.get(task.name, "identity")
    )
    single_threaded(estimator)
    names = feature_names(catalog, explained_features)
    history = patient_history_features(catalog)
    return ServedModel(task, version, features, estimator, booster, link, names, history)


class ModelRegistry:
    """Champion versions of every served task, read from one MLflow tracking/registry URI."""

    def __init__(
        self, tracking_uri: str, tasks: Mapping[str, ServedTask] = SERVED_TASKS, alias: str = CHAMPION_ALIAS
    ) -> None:
        self.tracking_uri = tracking_uri
        self.tasks = tasks
        self.alias = alias
        self._models: Mapping[str, ServedModel] = MappingProxyType({})
        self._status: Mapping[str, ModelStatus] = MappingProxyType(
            {name: ModelStatus(task=name, name=t.model_name, state="missing") for name, t in tasks.items()}
        )
        self._reload_lock = threading.Lock()

    @property
    def models(self) -> Mapping[str, ServedModel]:
        return self._models

    def status(self) -> list[ModelStatus]:
        return list(self._status.values())

    def load(self) -> list[str]:
        """(Re)load every task's champion; returns the tasks whose served version changed."""
        with self._reload_lock, _mlflow_uris(self.tracking_uri):
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            models, status, changed = dict(self._models), {}, []
            for name, task in self.tasks.items():
                old = models.get(name)
                try:
                    model = self._load_one(client, task)
                except _Missing as missing:
                    status[name] = self._kept(task, old, "missing", str(missing))
                    continue
                except Exception as error:  # a broken version must never take the service down
                    log.warning("loading %s failed: %s", task.model_name, type(error).__name__)
                    message = mask_credentials(f"{type(error).__name__}: {error}")  # a store URI's password
                    status[name] = self._kept(task, old, "failed", message)
                    continue
                if old is None or old.version != model.version:
                    changed.append(name)
                models[name] = model
                status[name] = ModelStatus(
                    task=name, name=task.model_name, state="loaded", version=model.version
                )
            self._models = MappingProxyType(models)
            self._status = MappingProxyType(status)
            return changed

    def _load_one(self, client: MlflowClient, task: ServedTask) -> ServedModel:
        try:
            version = client.get_model_version_by_alias(task.model_name, self.alias).version
        except MlflowException as error:
            raise _Missing(f"no {self.alias!r} version of {task.model_name} in the registry") from error
        current = self._models.get(task.name)
        if current is not None and current.version == str(version):
            return current
        pyfunc = mlflow.pyfunc.load_model(f"models:/{task.model_name}/{version}")
        return served_model(task, str(version), pyfunc.unwrap_python_model())

    @staticmethod
    def _kept(task: ServedTask, old: ServedModel | None, state: str, error: str) -> ModelStatus:
        """Status after a failed load: still 'loaded' (old version) when one was serving."""
        if old is not None:
            return ModelStatus(
                task=task.name, name=task.model_name, state="loaded", version=old.version, error=error
            )
        return ModelStatus(task=task.name, name=task.model_name, state=state, error=error)


class _Missing(NotFound):
    pass


@contextmanager
def _mlflow_uris(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking and registry URIs at ``uri`` while loading, then put them back.

    ``mlflow.set_tracking_uri`` also exports MLFLOW_TRACKING_URI, which ``Settings.mlflow_uri`` reads
    first, so the environment is put back exactly too.
    """
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_env = {name: os.environ.get(name) for name in names}
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
