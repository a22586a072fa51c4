"""The data folder is the owner's only (0700) and every file caselens writes there is 0600: keys,
sessions, audit log, MLflow store, case store."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.app import app
from pipelines.demo.generate import generate_demo
from pipelines.store import manifest_path, write_cases, write_manifest
from tests.serving.logins import log_in


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """Start from the usual 022 (files 0644, folders 0755) and put the process's umask back after."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_a_command_makes_the_data_folder_private_and_the_files_written_after_it(settings, lax_umask):
    settings.data_dir.mkdir(mode=0o755)  # as an earlier, laxer version left it
    made = CliRunner().invoke(app, ["api-key", "--role", "coder", "--id", "alice"])
    assert made.exit_code == 0, made.output
    assert mode(settings.data_dir) == 0o700
    assert mode(settings.data_dir / "api-keys.json") == 0o600
    mlflow.MlflowClient(tracking_uri=settings.mlflow_uri).search_experiments()  # creates the SQLite store
    assert mode(settings.data_dir / "mlflow.db") == 0o600


def test_the_case_store_is_private_whatever_the_umask(tmp_path, lax_umask):
    store = tmp_path / "data" / "store"
    write_cases(generate_demo(60, 1, seed=3).cases, store)
    write_manifest({"file": "demo"}, store)
    parts = list(store.rglob("*.parquet"))
    assert parts and {mode(p) for p in parts} == {0o600}
    assert {mode(p.parent) for p in parts} == {0o700} and mode(store) == 0o700
    assert mode(manifest_path(store)) == 0o600


@pytest.mark.slow
def test_a_served_data_folder_keeps_sessions_and_audit_private(make_app, world, lax_umask):
    with TestClient(make_app(), follow_redirects=False) as client:
        assert log_in(client, world.keys["coder"]).status_code == 303
    data = world.settings.data_dir
    assert mode(data) == 0o700
    assert mode(data / "serve" / "sessions.sqlite") == 0o600
    assert mode(data / "audit.jsonl") == 0o600
