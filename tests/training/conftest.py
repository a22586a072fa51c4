"""Small synthetic feature tables and a tiny-model config for the training framework's tests."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.config import load_config

SPREAD = {"内科": 0.3, "外科": 0.5, "骨科": 0.7, "儿科": 0.2}


def cost_table(n: int = 3000, quarters: int = 6, seed: int = 0) -> pd.DataFrame:
    """A prepared table: department, age, severity, a quarter column and a log-normal cost label.

    Departments differ in noise, so a per-department (Mondrian) calibration has something to do.
    """
    rng = np.random.default_rng(seed)
    department = rng.choice(list(SPREAD), n)
    age = rng.integers(0, 90, n)
    severity = rng.normal(size=n)
    noise = rng.normal(size=n) * pd.Series(department).map(SPREAD).to_numpy()
    quarter = pd.PeriodIndex.from_ordinals(np.sort(rng.integers(0, quarters, n)) + 212, freq="Q")
    return pd.DataFrame(
        {
            "department": department,
            "age": age,
            "severity": severity,
            "quarter": quarter.astype(str),
            "cost": np.exp(8 + 0.01 * age + 0.5 * severity + noise),
        }
    )


def tiny(config: dict, n_estimators: int = 20, learning_rate: float = 0.1) -> dict:
    """``config`` with few, small trees in every LightGBM table (tests stay fast)."""
    config = copy.deepcopy(config)
    config["split"]["min_rows"] = 20
    for params in config["tasks"].values():
        for table in (params["lightgbm"], params.get("cost", {}).get("lightgbm", {})):
            table.update(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=15, n_jobs=1)
        if "cost" in params:
            params["drg_n_estimators"] = n_estimators
        elif "mondrian_min_group" in params:
            params["mondrian_min_group"] = 50
    return config


@pytest.fixture
def shrink():
    """``tiny`` as a fixture: test modules cannot import a conftest."""
    return tiny


@pytest.fixture
def table() -> pd.DataFrame:
    return cost_table()


@pytest.fixture
def config() -> dict:
    return tiny(load_config())


@pytest.fixture(scope="session")
def empty_tracking_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created once (creating them takes seconds)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    mlflow.search_experiments()
    return path


@pytest.fixture
def tracking(settings, empty_tracking_db: Path):
    """The ``settings`` of a test whose tracking store starts as a fresh copy of the empty one."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_tracking_db, settings.data_dir / "mlflow.db")
    return settings
