"""Ingest with the store's years written in parallel on a cluster: the same store, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from pipelines.store import fingerprint

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_in_tmp(settings: object) -> None:
    """Every default path points into a temporary folder."""


def test_ingest_on_cluster_writes_the_same_store(
    toy_cases: pd.DataFrame, local_cluster, tmp_path: Path
) -> None:
    export = tmp_path / "cases.parquet"
    toy_cases.drop(columns="los_days").to_parquet(export, index=False)
    stores = {}
    for name, extra in (("local", []), ("cluster", ["--scheduler", local_cluster.scheduler_address])):
        stores[name] = tmp_path / name
        args = ["ingest", str(export), "--store", str(stores[name]), "--reports", str(tmp_path / f"r-{name}")]
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
    assert "rewrite_year" in local_cluster.scheduler.task_prefixes  # the years went to the workers
    local, on_cluster = fingerprint(stores["local"]), fingerprint(stores["cluster"])
    assert len(local["rows_by_year"]) >= 2 and local["rows"] == len(toy_cases)
    assert on_cluster["sha256"] == local["sha256"]
    # a re-ingest on the cluster is an update that leaves the bytes as they were
    again = runner.invoke(
        app,
        [
            "ingest",
            str(export),
            "--store",
            str(stores["cluster"]),
            "--scheduler",
            local_cluster.scheduler_address,
        ],
    )
    assert again.exit_code == 0, again.output
    assert fingerprint(stores["cluster"])["sha256"] == local["sha256"]
