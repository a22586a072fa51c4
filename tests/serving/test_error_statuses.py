"""One table maps the error hierarchy to HTTP statuses, and the app answers through it.

A user's error is answered with its status and message; the service's own configuration error is a
503 that names the request, not the server's files; the routers no longer translate by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from casemix.tables import TablesError
from contract.errors import CaselensError, ConfigError, InputError, NotFound, StateError
from pipelines.store import StoreError
from serving.app import create_app
from serving.cases import CasesUnavailable, store_cases
from serving.config import ServingSettings
from serving.errors import STATUS_CODES, caselens_error, status_code
from serving.predictions import ScoringError
from serving.queue import QueueUnavailable, ReviewQueue
from serving.registry import ModelRegistry
from serving.security import KeyConfigError, add_key
from serving.singles import ModelUnavailable


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InputError, 422),
        (ScoringError, 422),
        (NotFound, 404),
        (StoreError, 404),
        (StateError, 503),
        (QueueUnavailable, 503),
        (CasesUnavailable, 503),
        (ModelUnavailable, 503),
        (ConfigError, 503),
        (TablesError, 503),
        (KeyConfigError, 503),
        (CaselensError, 400),
    ],
)
def test_each_error_class_has_its_status(error: type[CaselensError], status: int) -> None:
    assert status_code(error("message")) == status


def test_every_kind_of_the_hierarchy_is_in_the_table() -> None:
    assert set(CaselensError.__subclasses__()) <= set(STATUS_CODES)


def raising(error: Exception) -> TestClient:
    app = FastAPI()
    app.add_exception_handler(CaselensError, caselens_error)

    @app.get("/")
    def fail() -> None:
        raise error

    return TestClient(app)


def test_an_input_error_is_a_422_shaped_like_every_validation_error() -> None:
    answer = raising(InputError("row 1, field age_years: not a number")).get("/")
    assert answer.status_code == 422
    assert answer.json() == {
        "detail": [{"loc": ["body"], "msg": "row 1, field age_years: not a number", "type": "value_error"}]
    }


def test_a_user_error_message_is_answered_and_made_writable() -> None:
    answer = raising(NotFound("no case \ud800 here")).get("/")
    assert answer.status_code == 404 and answer.json() == {"detail": "no case ? here"}


def test_the_services_configuration_error_is_a_503_without_its_text(caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="caselens.serving.faults"):
        answer = raising(ConfigError("/srv/caselens/rules.toml: base_rate must be positive")).get("/")
    assert answer.status_code == 503 and "rules.toml" not in answer.text
    assert "internal error" in answer.json()["detail"]
    assert "ConfigError" in caplog.text and "base_rate" not in caplog.text


def test_the_routers_answer_503_through_the_table(settings, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key = add_key(keys, "test-coder", "coder")
    finance = {"Authorization": f"Bearer {add_key(keys, 'test-finance', 'finance')}"}
    app = create_app(
        settings,
        ServingSettings(api_keys=str(keys), reload_poll_seconds=0),
        registry=ModelRegistry(settings.mlflow_uri, {}),
        cases=store_cases(settings),  # no store: CasesUnavailable
        queue=ReviewQueue(pd.DataFrame),  # ranks nothing: the queue lacks its columns
    )
    with TestClient(app) as client:
        answer = client.get("/v1/review/queue", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 503 and "the ranked queue lacks columns" in answer.json()["detail"]
        page = client.get("/cases/C1", headers={"Authorization": f"Bearer {key}"})
        assert page.status_code == 503 and "no case store" in page.json()["detail"]
        forecast = client.get("/v1/forecast/surplus", headers=finance)
        assert forecast.status_code == 503 and "no surplus forecast yet" in forecast.json()["detail"]
