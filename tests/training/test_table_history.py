"""`--entity/--order` history: point in time (no later row ever reaches a row) and the same in the pyfunc."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.history import history_features


def _visits(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "patient": rng.choice([f"P{i:03d}" for i in range(60)], n),
            "admitted": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D"),
            "visits": rng.poisson(2, n).astype(float),
            "y": rng.integers(0, 2, n),
        }
    )


def _features(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame:
    return history_features(rows, pool, "patient", "admitted", ["visits"], "y", 30)


def test_history_matches_a_row_by_row_count() -> None:
    table = _visits()
    found = _features(table, table)
    for i in range(0, len(table), 7):
        row = table.iloc[i]
        earlier = table[(table["patient"] == row["patient"]) & (table["admitted"] < row["admitted"])]
        closed = earlier[earlier["admitted"] + pd.Timedelta(days=30) < row["admitted"]]
        assert found["history_rows"].iloc[i] == len(earlier)
        assert found["history_sum_visits"].iloc[i] == earlier["visits"].sum()
        gap = (row["admitted"] - earlier["admitted"].max()).days if len(earlier) else np.nan
        assert found["history_gap"].iloc[i] == pytest.approx(gap, nan_ok=True)
        assert found["history_label_rows"].iloc[i] == len(closed)
        mean = closed["y"].mean() if len(closed) else np.nan
        assert found["history_label_mean"].iloc[i] == pytest.approx(mean, nan_ok=True)


def test_a_rows_features_never_use_a_later_or_simultaneous_row() -> None:
    table = _visits()
    found = _features(table, table)
    cut = pd.Timestamp("2023-04-01")
    before = table[table["admitted"] < cut]
    # Later rows removed, or rewritten beyond recognition: the earlier rows' history does not move.
    alone = _features(before, before)
    rewritten = table.copy()
    later = rewritten["admitted"] >= cut
    rewritten.loc[later, "visits"] = 1e6
    rewritten.loc[later, "y"] = 1 - rewritten.loc[later, "y"]
    again = _features(table, rewritten)
    pd.testing.assert_frame_equal(found.loc[before.index], alone)
    pd.testing.assert_frame_equal(found.loc[before.index], again.loc[before.index])
    # A row never counts itself or a row of the same moment.
    twin = pd.concat([table.iloc[[0]], table.iloc[[0]]], ignore_index=True)
    assert _features(twin, twin)["history_rows"].tolist() == [0, 0]


def test_an_outcome_counts_only_once_its_window_closed() -> None:
    table = pd.DataFrame(
        {
            "patient": ["a", "a", "a"],
            "admitted": pd.to_datetime(["2024-01-01", "2024-01-20", "2024-03-01"]),
            "visits": [1.0, 1.0, 1.0],
            "y": [1, 0, np.nan],
        }
    )
    found = _features(table, table)
    assert found["history_rows"].tolist() == [0, 1, 2]
    assert found["history_label_rows"].tolist() == [0, 0, 2]  # Jan 1's window is open on Jan 20
    assert found["history_label_mean"].iloc[2] == 0.5


def test_labels_are_history_only_for_a_date_order() -> None:
    table = _visits().assign(admitted=lambda t: t["admitted"].rank(method="dense"))
    found = _features(table, table)
    assert "history_label_rows" not in found and "history_gap" in found


@pytest.mark.slow
def test_training_with_history_logs_it_and_the_pyfunc_recomputes_it(tracking, config) -> None:
    import mlflow
    from mlflow import MlflowClient

    from experiments.benchmarks.table import generate_table
    from models.tasks import get_task
    from pipelines.training.data import table_data
    from pipelines.training.run import train

    task = get_task("readmission")
    table = generate_table(3000).drop(columns=["cost"])
    data = table_data(task, table, "readmitted", "admit_date", "patient_id", "admit_date", 30)
    assert "readmitted" in data.inputs and "patient_id" in data.inputs
    result = train(task, data, config, tracking)

    run = MlflowClient().get_run(result.run_id)
    assert run.data.params["encoding.diag_1"].startswith("icd9: ")
    assert run.data.params["encoding.strategy"] == result.choices["encoding"]["strategy"]
    chosen = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/table.json")
    assert set(chosen["encoding"]["validation"]) >= {"categorical", "frequency+rollup"}
    assert {"plain_lightgbm_test_auroc", "logistic_test_brier"} <= set(run.data.metrics)
    assert set(result.comparisons) == {"plain_lightgbm", "logistic"}
    catalog = mlflow.artifacts.load_text(f"runs:/{result.run_id}/features.csv")
    assert "history_rows" in catalog and "history_label_mean" in catalog and "patient_id" not in catalog

    # Served: the rows to score come with the patients' earlier rows (and their known outcomes); the
    # pyfunc computes from them what training computed from the whole table.
    loaded = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    test = data.inputs[data.inputs["admit_date"] >= pd.Timestamp("2023-10-01")]
    scored = test[test["admit_date"] <= test["admit_date"].min() + pd.Timedelta(days=20)]
    given = data.inputs[data.inputs["admit_date"] <= scored["admit_date"].max()]
    served = loaded.predict(given)
    served.index = given.index
    trained = loaded.unwrap_python_model().predict_frame(scored, history=data.inputs)
    pd.testing.assert_frame_equal(served.loc[scored.index].reset_index(drop=True), trained)
    # Alone, a row has no history: its prediction differs for a returning patient.
    alone = loaded.predict(scored.drop(columns=["readmitted"]))
    assert not np.allclose(alone["readmission_probability"], trained["readmission_probability"])


@pytest.mark.slow
def test_cli_trains_cost_with_history_and_says_what_it_chose(tracking, tmp_path) -> None:
    import re

    from typer.testing import CliRunner

    from cli.app import app
    from experiments.benchmarks.table import generate_table
    from models.config import DEFAULT_CONFIG

    path = tmp_path / "stays.csv"
    generate_table(2500).drop(columns=["readmitted"]).to_csv(path, index=False)
    config = tmp_path / "train.toml"
    text = re.sub(r"n_estimators = \d+", "n_estimators = 20", DEFAULT_CONFIG.read_text())
    config.write_text(text.replace("min_rows = 50", "min_rows = 20"))
    common = ["train", "cost", "--table", str(path), "--label", "cost", "--config", str(config)]
    history = ["--group", "admit_date", "--entity", "patient_id", "--order", "admit_date"]
    result = CliRunner().invoke(app, [*common, *history])
    assert result.exit_code == 0, result.output
    assert "encoding chosen on validation" in result.output and "diag_1 (icd9)" in result.output
    assert "tree shape chosen on validation" in result.output
    assert "plain lightgbm" in result.output and "logistic" in result.output
    alone = CliRunner().invoke(app, [*common, "--group", "admit_date", "--entity", "patient_id"])
    assert alone.exit_code == 2 and "--entity and --order go together" in alone.output


def test_only_utilisation_counts_are_summed_over_history() -> None:
    from models.table import TableFeatures

    table = _visits().assign(age=lambda t: 40 + t.index % 50, amount=lambda t: t["visits"] * 10.5)
    features = TableFeatures(entity="patient", order="admitted", exclude=("y",))
    X = features.fit_transform(table)
    assert features.sums_ == ["visits"]
    assert [c for c in X if c.startswith("history")] == ["history_rows", "history_gap", "history_sum_visits"]
    assert "patient" not in X and "admitted" not in X
