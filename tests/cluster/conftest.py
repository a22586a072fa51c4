"""A two-worker LocalCluster and a toy store split in several partitions, shared by the cluster tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from pipelines import store
from pipelines.demo import generate_demo

TOY_ROWS_PER_GROUP = 400  # 2,400 stays in ~7 row groups: several partitions, patients across them


@pytest.fixture(scope="session")
def local_cluster():
    """Two in-process workers (threads): the scheduler, shuffles and tasks of a real cluster, fast."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def toy_cases() -> pd.DataFrame:
    return generate_demo(2_400, 2, seed=13).cases


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory: pytest.TempPathFactory, toy_cases: pd.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("cluster") / "store"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "ROW_GROUP_ROWS", TOY_ROWS_PER_GROUP)
        store.write_cases(toy_cases, folder)
    return folder
