"""Features built on a Dask cluster (shuffled by patient, per partition) equal the in-process ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from features.pipeline import CaseFeatures
from pipelines.cluster import connect, read_store
from pipelines.cluster_features import fit_levels
from pipelines.store import read_cases

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_in_tmp(settings: object) -> None:
    """Every default path points into a temporary folder."""


@pytest.mark.parametrize("stage", ["admission", "discharge"])
def test_features_on_cluster_equal_in_process(
    stage: str, toy_store: Path, local_cluster, tmp_path: Path
) -> None:
    common = ["features", "build", "--store", str(toy_store), "--stage", stage, "--min-category-count", "5"]
    local = runner.invoke(app, [*common, "-o", str(tmp_path / "local.parquet")])
    assert local.exit_code == 0, local.output
    on_cluster = runner.invoke(
        app, [*common, "-o", str(tmp_path / "cluster"), "--scheduler", local_cluster.scheduler_address]
    )
    assert on_cluster.exit_code == 0, on_cluster.output
    expected = pd.read_parquet(tmp_path / "local.parquet").sort_values("case_id").reset_index(drop=True)
    found = pd.read_parquet(tmp_path / "cluster").sort_values("case_id").reset_index(drop=True)
    assert len(list((tmp_path / "cluster").glob("part.*.parquet"))) > 2
    # History features are the ones a partition could get wrong: the toy hospital has plenty of them.
    assert (expected["prior_admissions"] > 0).sum() > 100
    pd.testing.assert_frame_equal(found, expected, check_exact=True)


def test_levels_from_partition_counts_equal_levels_of_the_whole(toy_store: Path, local_cluster) -> None:
    whole = CaseFeatures("discharge", min_category_count=5).fit(read_cases(toy_store))
    with connect(local_cluster):
        stored = read_store(toy_store)
        assert stored.npartitions > 2
        parts = fit_levels(stored, CaseFeatures("discharge", min_category_count=5))
    assert parts.levels_ == whole.levels_
    assert any(len(levels) > 3 for levels in whole.levels_.values())
