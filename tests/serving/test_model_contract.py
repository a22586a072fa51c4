"""Serving answers what the registered model says, and a task new to the task registry is served as is.

The model contract: the registered pyfunc (``models.pyfunc.CaseModel``) owns features, prediction,
link and explanation (``explain_frame``); the service only words it. So the service's answer for a
case is the pyfunc's own numbers for that case, task by task, and adding a task takes a module in
``models.tasks`` plus a row of roles, no serving code.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.errors import ConfigError
from contract.fields import canonical_records, fields_known_at
from models import lgbm
from models.metrics import ranking_metrics
from models.pyfunc import CaseModel
from models.task import Evaluation, Output, Task
from models.tasks import all_tasks
from pipelines.training.data import case_data
from serving.app import create_app
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.registry import ModelRegistry
from serving.roles import TASK_ROLES
from serving.tasks import SERVED_TASKS, served_tasks
from tests.serving.conftest import TINY, case_json, register_model

pytestmark = pytest.mark.slow

ROWS = (0, 9, 40)


def _stage_frame(cases: pd.DataFrame, row: int, stage: str) -> pd.DataFrame:
    derived = ("los_days",) if stage == "discharge" else ()
    return cases[[*fields_known_at(stage), *derived]].iloc[[row]].reset_index(drop=True)  # type: ignore[arg-type]


def _registered(world: Any, name: str) -> CaseModel:
    mlflow.set_tracking_uri(world.mlflow_uri)
    mlflow.set_registry_uri(world.mlflow_uri)
    return mlflow.pyfunc.load_model(f"models:/{name}@champion").unwrap_python_model()


def _assert_answer_is_the_models(answer: dict[str, Any], model: CaseModel, frame: pd.DataFrame, history: Any):
    """Value, outputs, interval and every listed contribution are the pyfunc's ``explain_frame`` numbers."""
    explained = model.explain_frame(frame, history)
    contributions = explained.contributions
    assert answer["value"] == pytest.approx(explained.prediction[0], rel=1e-9)
    assert answer["value"] == pytest.approx(explained.outputs[model.output.column].iloc[0], rel=1e-9)
    numeric = explained.outputs.select_dtypes("number").iloc[0]
    assert answer["outputs"] == pytest.approx(numeric[numeric.notna()].to_dict(), rel=1e-9)
    assert answer["unit"] == model.output.unit
    interval = explained.interval()
    if interval is None:
        assert answer["interval"] is None
    else:
        assert answer["interval"]["lower"] == pytest.approx(interval[0][0], rel=1e-9)
        assert answer["interval"]["upper"] == pytest.approx(interval[1][0], rel=1e-9)
    explanation = answer["explanation"]
    assert explanation["explains"] == explained.explains
    assert explanation["base_value"] == pytest.approx(contributions.base[0], abs=1e-9)
    assert explanation["raw_output"] == pytest.approx(contributions.raw[0], abs=1e-9)
    values = dict(zip(contributions.features, contributions.values[0], strict=True))
    listed = explanation["contributions"]
    assert listed, "the answer lists no contribution"
    for part in listed:
        assert part["contribution"] == pytest.approx(values[part["feature"]], abs=1e-9)
    # The listed ones are the largest by size (ties at zero: features the small trees never split on).
    sizes = sorted(np.abs(contributions.values[0]), reverse=True)[: len(listed)]
    assert [abs(p["contribution"]) for p in listed] == pytest.approx(sizes, abs=1e-12)


# The in-stay task's requests are stays, not cases: its answer is its watch-list row (test_instay_api.py).
@pytest.mark.parametrize("task", [name for name, task in SERVED_TASKS.items() if task.case_requests])
def test_the_served_answer_is_the_registered_models_explain_frame(client, world, auth, task):
    stage = SERVED_TASKS[task].stage
    model = _registered(world, SERVED_TASKS[task].model_name)
    for row in ROWS:
        body = {"case": case_json(world.cases.iloc[row], stage)}
        answer = client.post(f"/v1/predict/{task}?top=50", json=body, headers=auth("admin"))
        assert answer.status_code == 200, answer.text
        # The service reads the whole store as history (its prepared index), as training does.
        _assert_answer_is_the_models(
            answer.json()["prediction"], model, _stage_frame(world.cases, row, stage), world.cases
        )


def test_the_batch_answer_is_explain_frame_of_the_batch(client, world, auth):
    rows = list(ROWS)
    cases = [case_json(world.cases.iloc[row], "discharge") for row in rows]
    sent = [case_json(row, "discharge") for _, row in world.cases.iloc[rows].iterrows()]
    answer = client.post(
        "/v1/predict/readmission/batch?top=50", json={"cases": cases, "history": sent}, headers=auth("admin")
    )
    assert answer.status_code == 200, answer.text
    model = _registered(world, "caselens-readmission")
    history = canonical_records(sent)  # the sent stays in the contract's shape, as any client's frame
    for position, row in enumerate(rows):
        frame = _stage_frame(world.cases, row, "discharge")
        _assert_answer_is_the_models(answer.json()["predictions"][position], model, frame, history)


# -- a task the service has never heard of ------------------------------------------------------------

LONG_STAY_DAYS = 14


class LongStayModel:
    """P(a stay longer than two weeks) from admission-time features: a plain LightGBM classifier."""

    def __init__(self, lightgbm: dict[str, Any]) -> None:
        self.lightgbm = lightgbm

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> Any:
        self.classifier_ = lgbm.classifier(self.lightgbm, objective="binary").fit(X, labels["long_stay"])
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {"long_stay_probability": lgbm.predict_proba(self.classifier_, X)[:, 1]}, index=X.index
        )

    @property
    def explained(self) -> object:
        return self.classifier_


class LongStayTask(Task):
    name = "long_stay"
    title = "a long stay, before admission"
    stage = "admission"
    label_column = "long_stay"
    output = Output(
        "long_stay_probability",
        link="logit",
        unit="probability",
        zh="住院超过14天的风险",
        en="risk of a stay over two weeks",
        summary="Probability that the stay lasts more than two weeks, before admission.",
    )
    primary_metric = "auroc"
    greater_is_better = True

    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        return (cases["los_days"] > LONG_STAY_DAYS).astype(int).rename(self.label_column).to_frame()

    def estimator(self, params: dict[str, Any]) -> LongStayModel:
        return LongStayModel(params["lightgbm"])

    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        return labels[[self.label_column]].rename(columns={self.label_column: "long_stay_probability"})

    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        return Evaluation(ranking_metrics(labels[self.label_column], predictions["long_stay_probability"]))


@pytest.fixture(scope="module")
def long_stay(world: Any) -> CaseModel:
    """The new task trained as ``caselens train`` trains any task, and registered as its champion."""
    task = LongStayTask()
    data = case_data(task, world.cases, world.settings)
    order = np.argsort(data.periods.to_numpy(), kind="stable")
    train, validation = order[: len(order) * 3 // 4], order[len(order) * 3 // 4 :]
    features = data.features.fit(data.inputs.iloc[train])
    X = features.transform(data.inputs, history=data.history)
    labels = data.labels
    estimator = task.estimator({"lightgbm": TINY}).fit(
        X.iloc[train], labels.iloc[train], X.iloc[validation], labels.iloc[validation]
    )
    model = CaseModel(features, estimator, task.output, data.inputs.dtypes.to_dict())
    register_model(world.mlflow_uri, task.model_name, model)
    return model


def test_a_task_new_to_the_registry_is_served_with_a_row_of_roles_and_no_serving_code(world, long_stay):
    task = LongStayTask()
    served = served_tasks({**all_tasks(), task.name: task}, {**TASK_ROLES, task.name: ("clinician", "admin")})
    app = create_app(
        world.settings,
        ServingSettings(api_keys=str(world.keys_path), reload_poll_seconds=0),
        registry=ModelRegistry(world.mlflow_uri, {"cost": served["cost"], task.name: served[task.name]}),
        cases=CaseIndex(lambda: world.cases),
    )
    headers = {role: {"Authorization": f"Bearer {world.keys[role]}"} for role in ("clinician", "finance")}
    body = {"case": case_json(world.cases.iloc[ROWS[1]], "admission")}
    with TestClient(app) as client:
        answer = client.post(
            f"/v1/predict/{task.name}?top=50",
            json=body,
            headers={**headers["clinician"], "Accept-Language": "en"},
        )
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["prediction"]
        assert answer.json()["model"]["name"] == "caselens-long_stay"
        _assert_answer_is_the_models(
            prediction, long_stay, _stage_frame(world.cases, ROWS[1], "admission"), world.cases
        )
        assert prediction["explanation"]["raw_scale"] == "log-odds"
        assert "risk of a stay over two weeks" in prediction["explanation"]["reasons"][0]
        # Its stage decides the request schema and its roles who may ask.
        assert (
            client.post(f"/v1/predict/{task.name}", json=body, headers=headers["finance"]).status_code == 403
        )
        late = {"case": {**body["case"], "principal_diagnosis": "I21.0"}}
        assert (
            client.post(f"/v1/predict/{task.name}", json=late, headers=headers["clinician"]).status_code
            == 422
        )
        batch = client.post(
            f"/v1/predict/{task.name}/batch", json={"cases": [body["case"]]}, headers=headers["clinician"]
        )
        assert batch.json()["predictions"][0]["value"] == pytest.approx(prediction["value"], rel=1e-9)
        assert f"/v1/predict/{task.name}" in client.get("/openapi.json").json()["paths"]


def test_a_roles_row_must_name_a_registered_task_and_real_roles():
    with pytest.raises(ConfigError, match="unknown task"):
        served_tasks(all_tasks(), {**TASK_ROLES, "long_stay": ("admin",)})
    with pytest.raises(ConfigError, match="roles must be"):
        served_tasks(all_tasks(), {**TASK_ROLES, "cost": ("surgeon",)})


def test_a_model_registered_before_the_contract_is_refused_with_what_to_do(world, long_stay):
    from models.pyfunc import ModelNotServable, servable

    old = CaseModel(long_stay.features, long_stay.estimator, long_stay.output)
    del old.output  # what a pickled model of the earlier format unpickles as
    with pytest.raises(ModelNotServable, match="retrain"):
        servable(old, "caselens-long_stay v1")
