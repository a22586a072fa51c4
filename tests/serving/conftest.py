"""A small served world: demo cases, tiny registered models in a temporary MLflow store, keys per role.

Models are built from the project's own parts (``features.pipeline.CaseFeatures``, the cost task's
``CostModel``, ``models.pyfunc.CaseModel``) with a handful of trees, registered with the ``champion``
alias exactly as ``caselens train`` does, so the service loads them the way it loads real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.pipeline import CaseFeatures
from models import lgbm
from models.pyfunc import CaseModel
from models.tasks.cost import CostModel
from pipelines.contract import fields_known_at
from pipelines.demo.generate import generate_demo
from pipelines.settings import Settings
from serving.app import create_app
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.queue import ReviewQueue
from serving.registry import ModelRegistry
from serving.security import add_key
from serving.tasks import ROLES, SERVED_TASKS

TINY = {"n_estimators": 15, "num_leaves": 7, "min_child_samples": 5, "verbose": -1, "n_jobs": 1}


class RiskModel:
    """A calibrated-probability estimator shaped like the risk tasks' (first column the probability)."""

    def __init__(self, column: str) -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series) -> RiskModel:
        self.classifier_ = lgbm.classifier(TINY, objective="binary").fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({self.column: self.classifier_.predict_proba(X)[:, 1]}, index=X.index)

    @property
    def explained(self) -> object:
        return self.classifier_


class AmountModel:
    """An amount in yuan on its own scale (identity link), shaped like the margin task's output."""

    def __init__(self, column: str) -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series) -> AmountModel:
        self.regressor_ = lgbm.regressor(TINY, objective="regression").fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({self.column: self.regressor_.predict(X)}, index=X.index)

    @property
    def explained(self) -> object:
        return self.regressor_


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
        admission = cases[list(fields_known_at("admission"))]
        features = CaseFeatures("admission").fit(admission, history=cases)
        X = features.transform(admission, history=cases)
        half = len(X) // 2
        labels = cases[["total_cost"]].rename(columns={"total_cost": "cost"})
        cost = CostModel(TINY, mondrian_min_group=50).fit(X[:half], labels[:half], X[half:], labels[half:])
        register_model(uri, "caselens-cost", CaseModel(features, cost))
        margin = AmountModel("expected_margin").fit(X, 10_000 - cases["total_cost"])
        register_model(uri, "caselens-margin", CaseModel(features, margin))

        discharge = cases[[*fields_known_at("discharge"), "los_days"]]
        risk_features = CaseFeatures("discharge").fit(discharge, history=cases)
        long_stay = (cases["los_days"] > cases["los_days"].median()).astype(int)
        risk = RiskModel("readmission_probability").fit(
            risk_features.transform(discharge, history=cases), long_stay
        )
        register_model(uri, "caselens-readmission", CaseModel(risk_features, risk))
        many_codes = (cases["other_diagnoses"].fillna("").str.count(r"\|") >= 2).astype(int)
        coding = RiskModel("error_probability").fit(
            risk_features.transform(discharge, history=cases), many_codes
        )
        register_model(uri, "caselens-coding", CaseModel(risk_features, coding))

        keys_path = settings.data_dir / "api-keys.json"
        keys = {role: add_key(keys_path, f"test-{role}", role) for role in ROLES}
        yield World(settings, uri, cases, keys, keys_path, queue_frame(cases))


def build_app(world: World, tasks: tuple[str, ...] | None = None, **serving: Any) -> Any:
    """An app over the world; ``tasks`` limits which models it serves (the others answer 503).

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
    served = {name: SERVED_TASKS[name] for name in tasks or SERVED_TASKS}
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
