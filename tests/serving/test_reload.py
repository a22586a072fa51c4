"""Reload without downtime: a new champion is swapped in, a broken one leaves the old version serving."""

from __future__ import annotations

import threading

import mlflow
import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow


def test_reload_swaps_in_a_new_champion_and_keeps_the_old_when_the_new_fails(
    world, make_app, auth, admission_body, register, broken_model
):
    client_models = mlflow.MlflowClient(tracking_uri=world.mlflow_uri, registry_uri=world.mlflow_uri)
    with TestClient(make_app()) as client:
        served = client.app.state.service.registry.models["cost"]
        before = client.post("/v1/predict/cost", json=admission_body(2), headers=auth("clinician")).json()
        assert before["model"]["version"] == "1"
        try:
            version = register(world.mlflow_uri, "caselens-cost", served.model)

            answers: list[int] = []

            def keep_asking() -> None:
                for _ in range(15):
                    answers.append(
                        client.post(
                            "/v1/predict/cost", json=admission_body(2), headers=auth("clinician")
                        ).status_code
                    )

            asker = threading.Thread(target=keep_asking)
            asker.start()
            reloaded = client.post("/v1/admin/reload", headers=auth("admin"))
            asker.join()
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["changed"] == ["cost"], reloaded.text
            assert set(answers) == {200}  # no request failed while the models were swapped
            after = client.post("/v1/predict/cost", json=admission_body(2), headers=auth("clinician")).json()
            assert after["model"]["version"] == version
            assert after["prediction"]["value"] == pytest.approx(before["prediction"]["value"])

            broken = register(world.mlflow_uri, "caselens-cost", broken_model)
            failed = client.post("/v1/admin/reload", headers=auth("admin")).json()
            cost = next(m for m in failed["models"] if m["task"] == "cost")
            assert failed["changed"] == []
            assert cost["state"] == "loaded" and cost["version"] == version
            assert "cannot be loaded" in cost["error"]
            assert broken != version
            still = client.post("/v1/predict/cost", json=admission_body(2), headers=auth("clinician"))
            assert still.status_code == 200 and still.json()["model"]["version"] == version
            ready = client.get("/readyz", headers=auth("admin")).json()
            assert next(m for m in ready["models"] if m["task"] == "cost")["error"]
        finally:
            client_models.set_registered_model_alias("caselens-cost", "champion", "1")


def test_a_new_service_without_a_loadable_champion_answers_503(
    world, make_app, auth, discharge_body, register, broken_model
):
    client_models = mlflow.MlflowClient(tracking_uri=world.mlflow_uri, registry_uri=world.mlflow_uri)
    try:
        register(world.mlflow_uri, "caselens-readmission", broken_model)
        with TestClient(make_app()) as client:
            ready = client.get("/readyz", headers=auth("admin"))
            assert ready.status_code == 503 and "task readmission" in ready.json()["problems"][0]
            status = next(m for m in ready.json()["models"] if m["task"] == "readmission")
            assert status["state"] == "failed" and "cannot be loaded" in status["error"]
            answer = client.post("/v1/predict/readmission", json=discharge_body(0), headers=auth("clinician"))
            assert answer.status_code == 503
            assert "caselens-readmission" in answer.json()["detail"]
    finally:
        client_models.set_registered_model_alias("caselens-readmission", "champion", "1")
