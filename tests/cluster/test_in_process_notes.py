"""Commands that run only in this process say so when a Dask cluster is configured (never silently)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from contract.settings import get_settings

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        ["casemix", "weights"],
        ["casemix", "settlement"],
    ],
)
def test_in_process_commands_say_so_with_a_cluster_configured(
    command: list[str], settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CASELENS_DASK_SCHEDULER", "tcp://user:secret@10.0.0.9:8786")
    get_settings.cache_clear()
    result = runner.invoke(app, command)  # no store: each then stops with its own error
    text = " ".join(result.output.split())
    assert "runs in this process on pandas, not on the Dask cluster tcp://user:***@10.0.0.9:8786" in text
    assert "secret" not in text


def test_no_note_without_a_cluster(settings) -> None:
    result = runner.invoke(app, ["casemix", "weights"])
    assert "Dask" not in result.output


@pytest.mark.parametrize(
    "command", [["forecast", "surplus", "--no-track"], ["queue", "coding", "--period", "2025Q4"]]
)
def test_forecast_and_queue_go_to_the_configured_cluster(
    command: list[str], settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They run on the cluster CASELENS_DASK_SCHEDULER names (here one that cannot be reached), not
    in this process with a note."""
    from pipelines import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    monkeypatch.setenv("CASELENS_DASK_SCHEDULER", "tcp://user:secret@127.0.0.1:9")
    get_settings.cache_clear()
    result = runner.invoke(app, command)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "cannot reach the Dask scheduler tcp://user:***@127.0.0.1:9" in text and "secret" not in text
