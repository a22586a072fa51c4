"""LightGBM trained by lightgbm.dask on two worker processes, handed back and registered as plain LightGBM.

Tolerance: data-parallel LightGBM finds each feature's bin boundaries from every worker's own rows and
adds the workers' histograms, so split thresholds (and hence predictions) differ slightly from one
process's fit on all rows; on the toy data the two agree to a correlation of 0.998 and an RMS
difference of 0.04 on log cost (label s.d. 0.84), with the same error against the label. The tests
ask for correlation >= 0.98, an RMS difference <= 15% of the label's s.d., and error within 5% of the
in-process model's: loose enough for the histogram difference, far too tight for a model that ignored
the data or trained on one worker's half of it only.
"""

from __future__ import annotations

import copy
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from lightgbm import LGBMClassifier, LGBMRegressor
from typer.testing import CliRunner

from cli.app import app
from features.pipeline import CaseFeatures
from models import lgbm
from models.config import load_config
from models.tasks import get_task
from pipelines import cluster
from pipelines.cluster import connect
from pipelines.training.data import case_data
from pipelines.training.run import train

pytestmark = pytest.mark.slow
PARAMS = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 15, "seed": 0, "n_jobs": 1}


@pytest.fixture(scope="module")
def process_cluster():
    """Two worker processes: LightGBM's network runs one machine per process."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="1GiB"
    ) as found:
        yield found


@pytest.fixture(scope="module")
def table(toy_cases: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    X = CaseFeatures("admission", min_category_count=5).fit_transform(toy_cases)
    return X, np.log1p(toy_cases["total_cost"].astype(float))


def _close(local: np.ndarray, distributed: np.ndarray, y: pd.Series) -> None:
    assert np.corrcoef(local, distributed)[0, 1] >= 0.98
    assert np.sqrt(np.mean((local - distributed) ** 2)) <= 0.15 * y.std()
    local_error, distributed_error = (np.sqrt(np.mean((p - y) ** 2)) for p in (local, distributed))
    assert distributed_error <= 1.05 * local_error


def test_regressor_on_cluster_is_a_plain_model_close_to_local(process_cluster, table) -> None:
    X, y = table
    local = lgbm.regressor(PARAMS).fit(X, y)
    with connect(process_cluster) as client, lgbm.on_cluster(client):
        distributed = lgbm.regressor(PARAMS).fit(X, y)
    assert type(distributed) is LGBMRegressor
    assert distributed.booster_.pandas_categorical == local.booster_.pandas_categorical
    _close(lgbm.predict(local, X), lgbm.predict(distributed, X), y)


def test_binary_classifier_on_cluster(process_cluster, table) -> None:
    X, y = table
    label = (y > y.median()).astype(int)
    with connect(process_cluster) as client, lgbm.on_cluster(client):
        model = lgbm.classifier(PARAMS).fit(X, label)
    assert type(model) is LGBMClassifier and list(model.classes_) == [0, 1]
    local = lgbm.predict_proba(lgbm.classifier(PARAMS).fit(X, label), X)[:, 1]
    assert np.corrcoef(lgbm.predict_proba(model, X)[:, 1], local)[0, 1] >= 0.98


def test_multiclass_is_trained_here_and_says_so(process_cluster, table, caplog) -> None:
    X, y = table
    classes = pd.qcut(y, 3, labels=["low", "mid", "high"]).astype(str)
    with connect(process_cluster) as client, lgbm.on_cluster(client), caplog.at_level(logging.WARNING):
        model = lgbm.classifier({**PARAMS, "n_estimators": 10}).fit(X, classes)
    assert sorted(model.classes_) == ["high", "low", "mid"]
    assert "trained in this process, not on the cluster: a multiclass model" in caplog.text


def test_cost_task_trained_on_cluster_is_registered_like_any_other(
    process_cluster, toy_cases: pd.DataFrame, settings
) -> None:
    config = copy.deepcopy(load_config())
    config["split"].update(min_rows=20, freq="Q")
    config["tasks"]["cost"].update(conformal_folds=2, mondrian_min_group=50)
    config["tasks"]["cost"]["lightgbm"].update(PARAMS)
    task = get_task("cost")
    local = train(task, case_data(task, toy_cases, settings), config, settings)
    with connect(process_cluster) as client, lgbm.on_cluster(client):
        found = train(task, case_data(task, toy_cases, settings), config, settings)
    assert found.model_version != local.model_version
    model = mlflow.pyfunc.load_model(f"models:/caselens-cost/{found.model_version}").unwrap_python_model()
    assert type(model.estimator.point_) is LGBMRegressor  # a plain model, served like any other
    for metric in ("mae", "coverage"):
        assert metric in found.metrics
    assert found.metrics["mae"] <= 1.05 * local.metrics["mae"]
    assert abs(found.metrics["coverage"] - local.metrics["coverage"]) <= 0.05


def test_train_cli_names_an_unreachable_scheduler(monkeypatch: pytest.MonkeyPatch, settings) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    result = CliRunner().invoke(app, ["train", "cost", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler" in " ".join(result.output.split())
