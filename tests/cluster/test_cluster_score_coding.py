"""The coding model scored on a Dask cluster: error history from the whole store's audits, as in-process."""

from __future__ import annotations

import copy
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from models.config import load_config
from models.tasks import get_task
from pipelines.cluster_score import score_partition
from pipelines.store import read_cases
from pipelines.training.data import case_data
from pipelines.training.run import train

runner = CliRunner()
pytestmark = pytest.mark.slow
TINY = {"n_estimators": 20, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 10, "n_jobs": 1}


def test_coding_scores_on_cluster_equal_in_process(
    toy_store: Path, local_cluster, settings, tmp_path: Path
) -> None:
    config = copy.deepcopy(load_config())
    config["split"]["min_rows"] = 20
    config["tasks"]["coding"]["lightgbm"] = TINY
    task = get_task("coding")
    cases = read_cases(toy_store)
    train(task, case_data(task, cases, settings), config, settings)

    args = ["score", "coding", "--store", str(toy_store)]
    local = runner.invoke(app, [*args, "-o", str(tmp_path / "local.parquet")])
    assert local.exit_code == 0, local.output
    on_cluster = runner.invoke(
        app, [*args, "-o", str(tmp_path / "cluster"), "--scheduler", local_cluster.scheduler_address]
    )
    assert on_cluster.exit_code == 0, on_cluster.output
    assert len(list((tmp_path / "cluster").glob("*.parquet"))) > 1  # a folder, one file per partition
    expected = pd.read_parquet(tmp_path / "local.parquet").sort_values("case_id").reset_index(drop=True)
    found = pd.read_parquet(tmp_path / "cluster").sort_values("case_id").reset_index(drop=True)
    assert len(expected) == len(cases) and expected["error_probability"].nunique() > 100
    pd.testing.assert_frame_equal(found, expected, check_exact=True)

    # What makes the comparison bite: a third of the patients scored with their own audits only (as a
    # partition would without the store's counts) get other scores than with every patient's audits.
    model = mlflow.pyfunc.load_model("models:/caselens-coding@champion").unwrap_python_model()
    some = cases[pd.factorize(cases["patient_id"])[0] % 3 == 0]
    alone = score_partition(some, model)
    mine = expected.set_index("case_id").loc[alone["case_id"], "error_probability"].to_numpy()
    assert (alone["error_probability"].to_numpy() != mine).mean() > 0.2
