"""Batch scoring on a Dask cluster (per patient partition) gives the in-process predictions."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from contract.errors import ConfigError
from models.config import load_config
from models.table import TableFeatures
from models.tasks import get_task
from pipelines.cluster import connect
from pipelines.cluster_score import score_store_on_cluster
from pipelines.store import read_cases
from pipelines.training.data import case_data
from pipelines.training.run import train

runner = CliRunner()
pytestmark = pytest.mark.slow


def test_scores_on_cluster_equal_in_process(toy_store: Path, local_cluster, settings, tmp_path: Path) -> None:
    config = copy.deepcopy(load_config())
    config["split"]["min_rows"] = 20
    config["tasks"]["readmission"]["lightgbm"].update(n_estimators=20)
    task = get_task("readmission")  # history features matter most here: earlier stays, readmissions
    train(task, case_data(task, read_cases(toy_store), settings), config, settings)

    local = runner.invoke(
        app, ["score", "readmission", "--store", str(toy_store), "-o", str(tmp_path / "l.parquet")]
    )
    assert local.exit_code == 0, local.output
    args = ["score", "readmission", "--store", str(toy_store), "-o", str(tmp_path / "c")]
    on_cluster = runner.invoke(app, [*args, "--scheduler", local_cluster.scheduler_address])
    assert on_cluster.exit_code == 0, on_cluster.output
    expected = pd.read_parquet(tmp_path / "l.parquet").sort_values("case_id").reset_index(drop=True)
    found = pd.read_parquet(tmp_path / "c").sort_values("case_id").reset_index(drop=True)
    assert len(expected) == 2_400 and expected.iloc[:, 1].nunique() > 100
    # The logistic candidate goes through BLAS matrix products, whose order of summation follows the
    # batch's shape: the last bits may differ with the partition. Everything else is exact.
    logistic = ["logistic_probability"]
    pd.testing.assert_frame_equal(
        found.drop(columns=logistic), expected.drop(columns=logistic), check_exact=True
    )
    pd.testing.assert_series_equal(
        found["logistic_probability"], expected["logistic_probability"], rtol=1e-12
    )


def test_a_prepared_tables_model_is_refused_on_the_cluster(
    toy_store: Path, local_cluster, tmp_path: Path
) -> None:
    table_model = SimpleNamespace(features=TableFeatures(), dtypes={})
    with (
        connect(local_cluster) as client,
        pytest.raises(ConfigError, match=r"TableFeatures.*without --scheduler"),
    ):
        score_store_on_cluster(client, table_model, tmp_path / "out", toy_store)
    assert not (tmp_path / "out").exists()


def test_no_model_is_a_clear_error(toy_store: Path, settings, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["score", "cost", "--store", str(toy_store), "-o", str(tmp_path / "x.parquet")]
    )
    assert result.exit_code == 2 and "run `caselens train cost` first" in " ".join(result.output.split())
