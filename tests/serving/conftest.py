"""A small served world: demo cases, tiny registered models in a temporary MLflow store, keys per role.

Every task's model is that task's real one (its feature transformer and estimator from
``models.tasks``, fitted on the demo cases as ``caselens train`` fits them) with a handful of trees,
registered with the ``champion`` alias exactly as ``caselens train`` does, so the service loads them
the way it loads real ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.fields import fields_known_at
from contract.settings import Settings
from models.config import load_config, task_params
from models.pyfunc import CaseModel
from models.tasks import get_task
from pipelines.demo.generate import generate_demo
from pipelines.training.data import case_data
from serving.app import create_app
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.queue import ReviewQueue
from serving.registry import ModelRegistry
from serving.roles import ROLES
from serving.security import add_key
from serving.tasks import SERVED_TASKS

TINY = {"n_estimators": 15, "num_leaves": 7, "min_child_samples": 5, "learning_rate": 0.2, "n_jobs": 1}
TRAINED_TASKS = ("cost", "margin", "readmission", "coding")


def tiny_params(task: str) -> dict[str, Any]:
    """The task's hyperparameters from the project's training config, with a few small trees."""
    params = copy.deepcopy(task_params(load_config(), task))
    for table in (params["lightgbm"], params.get("cost", {}).get("lightgbm", {})):
        table.update(TINY)
    params.update({k: v for k, v in {"drg_n_estimators": 5, "mondrian_min_group": 50}.items() if k in params})
    return params


def trained_model(name: str, cases: pd.DataFrame, settings: Settings) -> CaseModel:
    """The task's own features and estimator fitted as ``caselens train`` fits them (time split, history).

    Only the MLflow run (metrics, plots) is skipped: serving must answer with each task's real model,
    since a stand-in hides what the real feature transformer needs (the coding audits, for one).
    """
    task = get_task(name)
    data = case_data(task, cases, settings)
    order = np.argsort(data.periods.to_numpy(), kind="stable")
    train, validation = order[: len(order) * 3 // 4], order[len(order) * 3 // 4 :]
    inputs, labels = data.inputs, data.labels
    features = data.features.fit(inputs.iloc[train])
    X = features.transform(inputs, history=data.history)
    estimator = task.estimator(tiny_params(name)).fit(
        X.iloc[train], labels.iloc[train], X.iloc[validation], labels.iloc[validation]
    )
    return CaseModel(features, estimator, task.output, inputs.iloc[train].dtypes.to_dict())


class BrokenModel(mlflow.pyfunc.PythonModel):
    """Registers fine, fails when loaded: what a bad new version looks like to a reload."""

    def load_context(self, context: Any) -> None:
        raise RuntimeError("this version cannot be loaded")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return model_input


def register_model(uri: str, name: str, python_model: mlflow.pyfunc.PythonModel) -> str:
    """Log ``python_model``, register it under ``name`` and point ``champion`` at it; returns the version."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    artifacts = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts" / "t"
    experiment = mlflow.get_experiment_by_name("serving-tests") or mlflow.get_experiment(
        mlflow.create_experiment("serving-tests", artifact_location=artifacts.as_uri())
    )
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=python_model, registered_model_name=name, pip_requirements=[]
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
    return version


@dataclass
class World:
    settings: Settings
    mlflow_uri: str  # fixed at creation: MLflow exports MLFLOW_TRACKING_URI, which Settings reads first
    cases: pd.DataFrame
    keys: dict[str, str]
    keys_path: Path
    queue: pd.DataFrame


def queue_frame(cases: pd.DataFrame) -> pd.DataFrame:
    """A ranked review queue over some demo cases, in the shape ``serving.queue`` expects."""
    picked = cases.head(12)
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.9, len(picked))
    money = rng.uniform(500, 20_000, len(picked)).round()
    frame = pd.DataFrame(
        {
            "case_id": picked["case_id"].to_numpy(),
            "department": picked["department"].to_numpy(),
            "error_type": np.where(np.arange(len(picked)) % 2 == 0, "missed_cc_mcc", "unsupported_cc_mcc"),
            "error_probability": p,
            "money_at_stake": money,
            "expected_value": p * money,
            "coded_drg": "GB25",
            "whatif_drg": "GB23",
            "whatif_payment_change": money,
            "compliance_risk": np.arange(len(picked)) % 2 == 1,
            "reasons": [["MCC with a stay under 2 days"]] * len(picked),
            "weights_source": "insurer table",  # what models.review_queue.score_cases adds
        }
    )
    frame = frame.sort_values("expected_value", ascending=False, ignore_index=True)
    return frame.assign(rank=np.arange(1, len(frame) + 1))


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = tmp_path_factory.mktemp("serving")
        settings = Settings(data_dir=root / "caselens-data")
        uri = settings.mlflow_uri
        cases = generate_demo(900, 2, seed=11).cases
        for name in TRAINED_TASKS:
            register_model(uri, f"caselens-{name}", trained_model(name, cases, settings))

        keys_path = settings.data_dir / "api-keys.json"
        keys = {role: add_key(keys_path, f"test-{role}", role) for role in ROLES}
        yield World(settings, uri, cases, keys, keys_path, queue_frame(cases))


def build_app(world: World, tasks: tuple[str, ...] | None = None, **serving: Any) -> Any:
    """An app over the world; ``tasks`` limits which models it serves (the others answer 503), by
    default the world's trained tasks (the in-stay model needs daily charges: test_instay_api.py).

    Apps do not follow each other's reloads unless a test asks (``reload_poll_seconds``): they share
    the world's data_dir, and one test's reload must not change the versions another app serves.
    """
    options = {
        "api_keys": str(world.keys_path),
        "max_batch": 50,
        "max_body_mb": 1.0,
        "reload_poll_seconds": 0,
        **serving,
    }
    served = {name: SERVED_TASKS[name] for name in tasks or TRAINED_TASKS}
    return create_app(
        world.settings,
        ServingSettings(**options),
        registry=ModelRegistry(world.mlflow_uri, served),
        cases=CaseIndex(lambda: world.cases),
        queue=ReviewQueue(lambda: world.queue),
    )


@pytest.fixture(scope="session")
def make_app(world: World) -> Any:
    """Build another app over the same world, e.g. with other limits, to reload on its own."""
    return lambda tasks=None, **serving: build_app(world, tasks, **serving)


@pytest.fixture(scope="session")
def register() -> Any:
    """Register a pyfunc model as the new champion of a name: ``register(uri, name, model)``."""
    return register_model


@pytest.fixture(scope="session")
def broken_model() -> BrokenModel:
    return BrokenModel()


@pytest.fixture(scope="session")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(build_app(world)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def auth(world: World) -> Any:
    """Headers carrying the key of a role."""
    return lambda role: {"Authorization": f"Bearer {world.keys[role]}"}


@pytest.fixture(scope="session")
def admission_body(world: World) -> Any:
    """A JSON body for one pre-admission prediction from the demo case at ``row``."""
    return lambda row=0, **changes: {"case": {**case_json(world.cases.iloc[row], "admission"), **changes}}


@pytest.fixture(scope="session")
def discharge_body(world: World) -> Any:
    """A JSON body for one discharge-stage prediction from the demo case at ``row``."""

    def body(row: int = 0, **changes: Any) -> dict[str, Any]:
        return {"case": {**case_json(world.cases.iloc[row], "discharge"), **changes}}

    return body


def case_json(case: pd.Series, stage: str) -> dict[str, Any]:
    out = {}
    for name in fields_known_at(stage):  # type: ignore[arg-type]
        value = case[name]
        if (
            value is None
            or value is pd.NA
            or value is pd.NaT
            or (isinstance(value, float) and np.isnan(value))
        ):
            continue
        if isinstance(value, pd.Timestamp):
            value = value.date().isoformat()
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


@pytest.fixture(scope="session")
def runs_world(demo_hospital: Any, world: World, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A data folder where the run-backed endpoints answer (in-stay champion, watch list, forecast,
    cost drivers): ``tests.serving.runs``."""
    from tests.serving.runs import build_runs_world

    return build_runs_world(demo_hospital, world.cases, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def make_runs_app(runs_world: Any, world: World) -> Any:
    """An app over ``runs_world``'s data folder and MLflow store (its in-stay champion; the case tasks
    answer 503 there) with the world's keys and queue."""

    def make(**serving: Any) -> Any:
        options = {"api_keys": str(world.keys_path), "max_batch": 50, "max_body_mb": 1.0, **serving}
        return create_app(
            runs_world.settings,
            ServingSettings(reload_poll_seconds=0, **options),
            registry=ModelRegistry(runs_world.mlflow_uri, SERVED_TASKS),
            queue=ReviewQueue(lambda: world.queue),
        )

    return make
