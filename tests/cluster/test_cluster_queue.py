"""The coding-review queue scored on a Dask cluster is the in-process queue, to the row."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from models.coding.features import audit_counts, error_history, sum_audit_counts
from models.config import load_config
from models.tasks import get_task
from pipelines.store import read_cases
from pipelines.training.data import case_data
from pipelines.training.run import train

runner = CliRunner()
TINY = {"n_estimators": 20, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 10, "n_jobs": 1}


def test_error_history_from_counts_per_day_equals_from_the_audited_stays(toy_cases: pd.DataFrame) -> None:
    """Counts of any split of the stays, added up, give the very numbers the audited stays give."""
    audited = toy_cases[toy_cases["audit_date"].notna()]
    assert audited["audit_error"].astype("boolean").fillna(False).sum() > 10
    queries = toy_cases.iloc[::7]
    halves = np.arange(len(toy_cases)) % 2 == 0
    for entity in ("coder_id", "department"):
        counts = sum_audit_counts(
            [audit_counts(toy_cases[halves], entity), audit_counts(toy_cases[~halves], entity)], entity
        )
        assert len(counts) < len(audited)  # several audits a day: smaller than the stays it counts
        expected = error_history(queries, audited, entity)
        assert expected.iloc[:, 0].gt(0).mean() > 0.5
        pd.testing.assert_frame_equal(error_history(queries, counts, entity), expected, check_exact=True)


@pytest.mark.slow
def test_queue_on_cluster_equals_in_process(toy_store: Path, local_cluster, settings, tmp_path: Path) -> None:
    config = copy.deepcopy(load_config())
    config["split"]["min_rows"] = 20
    config["tasks"]["coding"]["lightgbm"] = TINY
    task = get_task("coding")
    train(task, case_data(task, read_cases(toy_store), settings), config, settings)

    args = ["queue", "coding", "--period", "2024Q4", "--store", str(toy_store)]
    local = runner.invoke(app, [*args, "--out", str(tmp_path / "local.csv")])
    assert local.exit_code == 0, local.output
    on_cluster = runner.invoke(
        app, [*args, "--out", str(tmp_path / "cluster.csv"), "--scheduler", local_cluster.scheduler_address]
    )
    assert on_cluster.exit_code == 0, on_cluster.output
    expected = pd.read_csv(tmp_path / "local.csv", encoding="utf-8-sig")
    found = pd.read_csv(tmp_path / "cluster.csv", encoding="utf-8-sig")
    assert len(expected) > 100 and expected["error_probability"].nunique() > 50
    assert expected["coder_prior_audits"].gt(0).mean() > 0.5  # the other patients' audits count
    pd.testing.assert_frame_equal(found, expected, check_exact=True)

    one = runner.invoke(
        app,
        [*args, "--department", str(expected["department"].iloc[0]), "--budget", "5", "--out",
         str(tmp_path / "one.csv"), "--scheduler", local_cluster.scheduler_address],
    )  # fmt: skip
    assert one.exit_code == 0, one.output
    mine = expected[expected["department"] == expected["department"].iloc[0]]
    assert pd.read_csv(tmp_path / "one.csv", encoding="utf-8-sig")["case_id"].tolist() == (
        mine["case_id"].head(5).tolist()
    )
