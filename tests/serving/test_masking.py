"""Credentials in URIs never reach a message: start-up lines, log lines (tracebacks too), /readyz errors."""

from __future__ import annotations

import logging
import sys

import pytest
from typer.testing import CliRunner

from cli.app import app
from contract.settings import MaskingFormatter, mask_credentials
from serving.registry import ModelRegistry
from serving.tasks import SERVED_TASKS

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    "text, masked",
    [
        (
            f"postgresql://mlflow:{SECRET}@db.local:5432/mlflow",
            "postgresql://mlflow:***@db.local:5432/mlflow",
        ),
        (f"mysql+pymysql://u:{SECRET}@10.0.0.5/m", "mysql+pymysql://u:***@10.0.0.5/m"),
        (f"from https://bob:{SECRET}@mlflow.example/ (x)", "from https://bob:***@mlflow.example/ (x)"),
        (f"postgresql://db/m?user=u&password={SECRET}&ssl=1", "postgresql://db/m?user=u&password=***&ssl=1"),
        (f"http://mlflow.example/api?token={SECRET}", "http://mlflow.example/api?token=***"),
        ("sqlite:////data/mlflow.db", "sqlite:////data/mlflow.db"),
        ("http://127.0.0.1:5000/path", "http://127.0.0.1:5000/path"),
        ("https://user@host/x", "https://user@host/x"),
    ],
)
def test_mask_credentials(text, masked):
    assert mask_credentials(text) == masked


def test_serve_prints_the_tracking_uri_without_its_password(settings, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql://caselens:{SECRET}@db.local/mlflow")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert "postgresql://caselens:***@db.local/mlflow" in result.output and SECRET not in result.output


def test_log_lines_and_tracebacks_are_masked():
    uri = f"postgresql://caselens:{SECRET}@db.local/mlflow"
    try:
        raise ConnectionError(f"could not connect to {uri}")
    except ConnectionError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "store %s down", (uri,), sys.exc_info())
    line = MaskingFormatter("%(levelname)s %(message)s").format(record)
    assert "Traceback" in line and line.count("caselens:***@db.local") == 2 and SECRET not in line


def test_a_model_loading_error_shown_on_readyz_is_masked(monkeypatch):
    uri = f"postgresql://caselens:{SECRET}@db.local/mlflow"

    def unreachable(self, client, task):
        raise ConnectionError(f"could not connect to {uri}")

    monkeypatch.setattr(ModelRegistry, "_load_one", unreachable)
    registry = ModelRegistry("sqlite:///:memory:", {"cost": SERVED_TASKS["cost"]})
    registry.load()
    (status,) = registry.status()
    assert status.state == "failed" and "caselens:***@db.local" in status.error and SECRET not in status.error
