"""Credentials in the tracking URI stay out of messages when the tracking server cannot be reached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contract.errors import StateError
from models.tracking import use_tracking
from tests.serving.ports import free_port


def test_an_unreachable_tracking_server_is_a_message_without_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # restored afterwards
    uri = f"http://caselens:tok-not-for-logs@127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(StateError) as raised:
        use_tracking(uri, tmp_path, "caselens-cost")
    message = str(raised.value)
    assert "tok-not-for-logs" not in message and raised.value.__cause__ is None
    assert f"http://caselens:***@127.0.0.1:{uri.rsplit(':', 1)[1]}" in message
    # MLflow's "View run at <tracking URI>" links are off for a URI with credentials
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
