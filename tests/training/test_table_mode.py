"""Training on a prepared table end to end: MLflow logging, registry reload, champion alias, errors."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli.app import app
from models.config import DEFAULT_CONFIG
from models.errors import TrainingInputError
from models.tasks import get_task
from pipelines.training.data import table_data
from pipelines.training.run import train

pytestmark = pytest.mark.slow
COST = get_task("cost")


def _train(table: pd.DataFrame, config: dict, settings) -> object:
    return train(COST, table_data(COST, table, "cost", "quarter"), config, settings)


def test_run_is_logged_and_the_registered_model_reloads(table, config, tracking) -> None:
    result = _train(table, config, tracking)
    assert result.promoted and result.model_version == "1"
    assert result.metrics["mae"] < result.baseline_metrics["mae"]

    run = MlflowClient().get_run(result.run_id)
    assert run.data.params["test_periods"] == "2024Q2..2024Q2"
    assert run.data.tags["champion.promoted"] == "true" and len(run.data.tags["data.fingerprint"]) == 64
    assert {"test_mae", "baseline_test_mae", "test_coverage"} <= set(run.data.metrics)
    artifacts = {a.path for a in MlflowClient().list_artifacts(result.run_id)}
    assert {"champion.txt", "features.csv", "plots", "evaluation", "metrics.json"} <= artifacts
    plots = {a.path for a in MlflowClient().list_artifacts(result.run_id, "plots")}
    assert {"plots/shap_summary.png", "plots/residuals.png"} <= plots
    assert str(tracking.mlflow_artifacts) in run.info.artifact_uri

    test = table[table["quarter"] == "2024Q2"].drop(columns=["cost", "quarter"])
    loaded = mlflow.pyfunc.load_model("models:/caselens-cost@champion")
    again = loaded.predict(test)
    direct = loaded.unwrap_python_model().predict_frame(test)
    pd.testing.assert_frame_equal(again, direct)
    assert list(again.columns) == ["cost", "cost_lower", "cost_upper"]
    assert (again["cost_lower"] <= again["cost"]).all() and (again["cost"] <= again["cost_upper"]).all()


def test_champion_moves_only_for_a_better_model(table, config, tracking, shrink) -> None:
    weak = shrink(config, n_estimators=2, learning_rate=0.02)
    first = _train(table, weak, tracking)
    better = _train(table, config, tracking)
    worse = _train(table, weak, tracking)
    assert first.promoted and "no champion yet" in first.reason
    assert better.promoted and "beats champion v1" in better.reason
    assert not worse.promoted and "does not beat champion v2" in worse.reason
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("caselens-cost", "champion").version) == better.model_version
    assert client.get_run(worse.run_id).data.tags["champion.promoted"] == "false"
    assert "does not beat" in mlflow.artifacts.load_text(f"runs:/{worse.run_id}/champion.txt")


def test_tuning_logs_nested_trials(table, config, tracking) -> None:
    result = train(COST, table_data(COST, table, "cost", "quarter"), config, tracking, tune_seconds=1.5)
    trials = mlflow.search_runs(
        experiment_ids=[MlflowClient().get_run(result.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )
    assert len(trials) >= 1 and "metrics.validation_mae" in trials.columns


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["cost"]), "label column 'cost' is not in the table"),
        (lambda t: t.assign(cost=t["cost"].mask(t.index == 5)), "row 5: label 'cost' is missing"),
        (lambda t: t.assign(cost=100.0), "single value in the training period"),
        (lambda t: _dated(t)[t["quarter"] != "2023Q3"], r"no rows in period\(s\) 2023Q3"),
        (lambda t: t.head(40), r"needs at least 3"),
        (lambda t: t.iloc[:0], "no rows"),
    ],
)
def test_bad_training_input_is_a_clear_error(table, config, tracking, change, message) -> None:
    config["split"]["min_rows"] = 50
    with pytest.raises(TrainingInputError, match=message):
        _train(change(table), config, tracking)


def _dated(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(quarter=pd.PeriodIndex(table["quarter"], freq="Q").to_timestamp())


def test_cli_trains_a_table_and_exits_2_on_bad_input(table, tracking, tmp_path: Path) -> None:
    path = tmp_path / "features.parquet"
    table.to_parquet(path)
    config_path = tmp_path / "train.toml"
    config_path.write_text(re.sub(r"n_estimators = \d+", "n_estimators = 10", DEFAULT_CONFIG.read_text()))
    common = ["train", "cost", "--table", str(path), "--config", str(config_path)]
    runner = CliRunner()
    ok = runner.invoke(app, [*common, "--label", "cost", "--group", "quarter"])
    assert ok.exit_code == 0, ok.output
    assert "champion" in ok.output and "baseline" in ok.output
    bad = runner.invoke(app, [*common, "--label", "charges"])
    assert bad.exit_code == 2 and "label column 'charges' is not in the table" in bad.output
