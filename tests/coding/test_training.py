"""Point-in-time error history, the coding task through the framework, and the queue from its model."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.coding.features import error_history
from models.coding.model import LABEL
from models.review_queue import QUEUE_COLUMNS, coding_queue

TINY = {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 10, "n_jobs": 1}


def test_error_history_only_sees_audits_dated_before_discharge():
    audits = pd.DataFrame(
        {
            "coder_id": ["k1", "k1", "k1", "k2"],
            "audit_date": pd.to_datetime(["2024-01-10", "2024-02-10", "2024-03-10", "2024-01-01"]),
            "audit_error": pd.array([True, False, True, False], dtype="boolean"),
        }
    )
    cases = pd.DataFrame(
        {
            "coder_id": ["k1", "k1", "k3"],
            "discharge_date": pd.to_datetime(["2024-02-10", "2024-04-01", "2024-04-01"]),
        }
    )
    found = error_history(cases, audits, "coder_id")
    assert found["coder_prior_audits"].tolist() == [
        1.0,
        3.0,
        0.0,
    ]  # the audit on the discharge day is not before it
    overall_before_feb10 = 1 / 2  # k1's error and k2's clean audit
    assert found["coder_prior_error_rate"].iloc[0] == pytest.approx((1 + 20 * overall_before_feb10) / 21)
    assert found["coder_prior_error_rate"].iloc[2] == pytest.approx(2 / 4)  # no audits: the overall rate


@pytest.fixture
def tracking(settings, tmp_path_factory):
    """A fresh MLflow SQLite store under the test's data_dir (tables created once per session)."""
    template = tmp_path_factory.getbasetemp() / "coding-mlflow.db"
    if not template.exists():
        mlflow.set_tracking_uri(f"sqlite:///{template}")
        mlflow.search_experiments()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, settings.data_dir / "mlflow.db")
    return settings


def test_trains_and_ranks_the_queue(demo_hospital, tracking):
    from models.config import load_config
    from models.tasks import get_task
    from pipelines.training.data import case_data
    from pipelines.training.run import train

    cases = demo_hospital.cases
    task = get_task("coding")
    data = case_data(task, cases, tracking, demo_hospital.oracle)
    audited = cases["audited"].astype("boolean").fillna(False)
    assert len(data.labels) == int(audited.sum()) and data.labels[LABEL].notna().all()
    errors = data.labels[data.labels[LABEL] == 1]
    assert (errors.loc[errors["error_type"] == "unsupported_cc_mcc", "money_at_stake"] >= 0).mean() > 0.8

    config = load_config()
    config["split"]["min_rows"] = 20
    config["tasks"]["coding"]["lightgbm"] = TINY
    result = train(task, data, config, tracking)
    for name in ("auprc", "precision_top10pct", "errors_found_top10pct", "oracle_auprc"):
        assert np.isfinite(result.metrics[name]), name
    money_found = result.metrics["money_found_top10pct"]  # NaN when no test error moved money
    assert np.isnan(money_found) or 0 <= money_found <= 1

    model = mlflow.pyfunc.load_model("models:/caselens-coding@champion").unwrap_python_model()
    queue = coding_queue(cases, model, "2025Q4", budget=50)
    assert list(queue.columns[: len(QUEUE_COLUMNS)]) == list(QUEUE_COLUMNS)
    assert len(queue) == 50 and queue["expected_value"].is_monotonic_decreasing
    assert (queue["weights_source"] == "insurer table").all()  # the embedded rules name the city's table
    assert queue["reasons"].map(len).gt(0).mean() > 0.5
    in_quarter = cases.set_index("case_id").loc[queue["case_id"], "discharge_date"].dt.to_period("Q")
    assert (in_quarter == pd.Period("2025Q4")).all()

    from cli.app import app
    from pipelines.store import write_cases  # the CLI reads the store

    write_cases(cases)
    out = tracking.data_dir / "queue.csv"
    result = CliRunner().invoke(
        app, ["queue", "coding", "--period", "2025Q4", "--budget", "20", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 20


def test_the_model_learns_errors_that_leave_no_fingerprint(tracking):
    """On a demo hospital whose errors leave only realistic traces, 4,000 stays (about 500 training
    audits) are too few to learn from; 12,000 are enough for the test quarter's audited cases to rank
    well above their error rate."""
    from models.config import load_config
    from models.tasks import get_task
    from pipelines.demo import generate_demo
    from pipelines.training.data import case_data
    from pipelines.training.run import train

    hospital = generate_demo(12_000, 3, 7)
    task = get_task("coding")
    config = load_config()
    config["split"]["min_rows"] = 20
    config["tasks"]["coding"]["lightgbm"] = TINY
    data = case_data(task, hospital.cases, tracking, hospital.oracle)
    result = train(task, data, config, tracking)
    assert result.metrics["auprc"] > 1.5 * result.metrics["prevalence"]
    assert result.metrics["auroc"] > 0.55


def test_a_case_own_audit_never_reaches_its_features(demo_hospital):
    from models.coding.features import CodingFeatures

    cases = demo_hospital.cases
    features = CodingFeatures().fit(cases.drop(columns=["audited", "audit_date", "audit_error"]))
    audited = cases[cases["audited"].astype("boolean").fillna(False).to_numpy()]
    for index in audited.index[::150][:8]:
        case = cases.loc[[index]]
        flipped = cases.copy()
        flipped.loc[index, "audit_error"] = not bool(cases.loc[index, "audit_error"])
        before = features.audit_features(case, history=cases)
        pd.testing.assert_frame_equal(before, features.audit_features(case, history=flipped))
