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

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from contract.errors import NotFound
from contract.settings import mask_credentials
from models.pyfunc import CaseModel, ModelNotServable, servable
from models.tracking import CHAMPION
from serving.schemas import ModelStatus
from serving.tasks import SERVED_TASKS, ServedTask

log = logging.getLogger(__name__)

__all__ = ["ModelNotServable", "ModelRegistry", "ServedModel"]


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version of a served task: the registered ``CaseModel`` does all the work
    (features, prediction, link, explanation); serving adds which task and version it is."""

    task: ServedTask
    version: str
    model: CaseModel

    @property
    def name(self) -> str:
        return self.task.model_name


class ModelRegistry:
    """Champion versions of every served task, read from one MLflow tracking/registry URI."""

    def __init__(
        self, tracking_uri: str, tasks: Mapping[str, ServedTask] = SERVED_TASKS, alias: str = CHAMPION
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
        with self._reload_lock, mlflow_uris(self.tracking_uri):
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
        model = servable(pyfunc.unwrap_python_model(), f"{task.model_name} v{version}")
        model.prepare()  # its casemix engines built now, at load or reload, not in a request
        return ServedModel(task, str(version), model)

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
def mlflow_uris(uri: str) -> Iterator[None]:
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
