"""Every task's real model answers every stored demo case, as the registered pyfunc model does.

The serving world registers each task's own model (tests/serving/conftest.py), so a feature
transformer that cannot read what the service hands it (the coding features and the store's
``StayIndex``) fails here, as it would in production. Only known input errors are 422; any other
failure is a 500-class fault, logged by type and place, counted in /metrics, never quoted back.
"""

from __future__ import annotations

import asyncio
import logging
from types import MappingProxyType
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.fields import fields_known_at
from features.history import StayIndex
from serving.tasks import SERVED_TASKS
from tests.serving.conftest import case_json
from tests.serving.test_hostile_batching import Poisoned

pytestmark = pytest.mark.slow


def stage_columns(stage: str) -> list[str]:
    return [*fields_known_at(stage), *(("los_days",) if stage == "discharge" else ())]  # type: ignore[arg-type]


def expected_values(world, task: str) -> np.ndarray:
    """The registered pyfunc model's predictions of every stored case, the store as their history."""
    mlflow.set_tracking_uri(world.mlflow_uri)
    mlflow.set_registry_uri(world.mlflow_uri)
    model = mlflow.pyfunc.load_model(f"models:/caselens-{task}@champion").unwrap_python_model()
    frame = world.cases[stage_columns(SERVED_TASKS[task].stage)].reset_index(drop=True)
    return model.predict_frame(frame, world.cases)[model.output.column].to_numpy()


@pytest.fixture(scope="module")
def served(make_app) -> Any:
    app = make_app(max_batch=5_000, max_body_mb=16.0, history_lookups_per_minute=100_000)
    app.state.service.registry.load()
    return app


@pytest.mark.parametrize("task", [name for name, task in SERVED_TASKS.items() if task.case_requests])
def test_every_stored_case_answers_200_on_every_task_with_the_pyfunc_value(served, world, task):
    stage = SERVED_TASKS[task].stage
    bodies = [case_json(row, stage) for _, row in world.cases.iterrows()]
    headers = {"Authorization": f"Bearer {world.keys['admin']}"}
    expected = expected_values(world, task)
    # Rounds of distinct patients: each patient's first stay, then each one's second, ...
    rounds = world.cases.groupby("patient_id", sort=False).cumcount().to_numpy()

    async def run() -> tuple[list[httpx.Response], list[httpx.Response], httpx.Response]:
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=300) as client:
            singles = await asyncio.gather(
                *(client.post(f"/v1/predict/{task}", json={"case": b}, headers=headers) for b in bodies)
            )
            distinct = [
                await client.post(
                    f"/v1/predict/{task}/batch",
                    json={"cases": [bodies[i] for i in np.flatnonzero(rounds == r)]},
                    headers=headers,
                )
                for r in range(rounds.max() + 1)
            ]
            repeated = await client.post(f"/v1/predict/{task}/batch", json={"cases": bodies}, headers=headers)
        return singles, distinct, repeated

    singles, distinct, repeated = asyncio.run(run())
    failed = [(i, r.status_code, r.text[:200]) for i, r in enumerate(singles) if r.status_code != 200]
    assert not failed, failed[:3]
    np.testing.assert_allclose([r.json()["prediction"]["value"] for r in singles], expected, rtol=1e-9)

    assert all(r.status_code == 200 for r in distinct), [r.text[:300] for r in distinct]
    by_round = np.empty(len(bodies))
    for r, answer in enumerate(distinct):
        by_round[np.flatnonzero(rounds == r)] = [p["value"] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(by_round, expected, rtol=1e-9)

    assert world.cases["patient_id"].duplicated().any()  # the whole store repeats patients
    assert repeated.status_code == 200, repeated.text[:300]
    np.testing.assert_allclose([p["value"] for p in repeated.json()["predictions"]], expected, rtol=1e-9)


def test_coding_features_read_the_same_audits_from_a_stay_index_as_from_the_frame(served, world):
    coding = served.state.service.registry.models["coding"].model.features
    cases = world.cases[stage_columns("discharge")].head(200)
    from_frame = coding.transform(cases, history=world.cases)
    from_index = coding.transform(cases, history=StayIndex(world.cases))
    pd.testing.assert_frame_equal(from_index, from_frame)
    assert from_index["coder_prior_audits"].gt(0).any()  # the coders' audits were read, not skipped


def test_an_unknown_failure_is_a_logged_counted_fault_without_its_text(
    make_app, world, auth, admission_body, caplog
):
    app = make_app(("cost",))
    with TestClient(app) as client:
        registry = app.state.service.registry
        model = registry.models["cost"]
        broken = Poisoned.served(model, KeyError("I21.000 of patient P-1"))
        registry._models = MappingProxyType({"cost": broken})
        poisoned = admission_body(0, case_id="POISON-1")
        with caplog.at_level(logging.INFO):
            one = client.post("/v1/predict/cost", json=poisoned, headers=auth("clinician"))
            many = client.post(
                "/v1/predict/cost/batch", json={"cases": [poisoned["case"]]}, headers=auth("admin")
            )
        for answer in (one, many):
            assert answer.status_code == 500
            assert "I21" not in answer.text and answer.headers["x-request-id"] in answer.json()["detail"]
        faults = [r.getMessage() for r in caplog.records if r.name == "caselens.serving.faults"]
        assert len(faults) == 2 and all("KeyError at" in f for f in faults)
        assert "I21.000" not in caplog.text and "P-1" not in caplog.text
        metrics = client.get("/metrics", headers=auth("admin")).text
        assert 'caselens_faults_total{endpoint="/v1/predict/cost"} 1.0' in metrics
        assert 'caselens_faults_total{endpoint="/v1/predict/cost/batch"} 1.0' in metrics

        registry._models = MappingProxyType({"cost": model})
        missing_date = admission_body(0)
        known = client.post("/v1/predict/cost", json=missing_date, headers=auth("clinician"))
        assert known.status_code == 200
