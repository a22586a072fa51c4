"""The in-stay task: past stays cut at a day, final cost with an interval and overrun probability,
trained and judged by time like the other tasks, explained by SHAP."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from contract.fields import FIELDS
from features.instay import cut_stays, in_hospital
from models import lgbm
from models.tasks import get_task
from models.tasks.instay import top_reasons
from models.tasks.margin import discharge_margin
from pipelines.instay import instay_data
from pipelines.training.run import train

pytestmark = pytest.mark.slow


def test_training_rows_are_stays_cut_before_discharge(demo_hospital, settings) -> None:
    hospital = demo_hospital
    data = instay_data(get_task("instay"), hospital.cases, hospital.inpatients, hospital.charges, settings)
    stays = hospital.cases.loc[data.inputs.index]
    assert data.inputs["case_id"].is_unique and (stays["los_days"] >= 2).all()
    assert (data.inputs["as_of_date"] < stays["discharge_date"]).all()
    assert (data.inputs["as_of_date"] >= stays["admission_date"]).all()
    discharge_fields = {f.name for f in FIELDS if f.stage != "admission"}
    assert not discharge_fields & set(data.inputs.columns)
    assert (data.inputs["charges_to_date"] <= stays["total_cost"] + 0.01).all()
    priced = discharge_margin(stays, settings)
    overrun = (priced["drg_payment"] < stays["total_cost"]).astype(float)
    pd.testing.assert_series_equal(data.labels["overrun"], overrun, check_names=False)
    assert (data.periods == stays["discharge_date"]).all()


def test_instay_model_beats_the_drg_mean_and_explains_itself(demo_hospital, config, tracking) -> None:
    hospital = demo_hospital
    task = get_task("instay")
    data = instay_data(task, hospital.cases, hospital.inpatients, hospital.charges, tracking)
    result = train(task, data, config, tracking)

    metrics, baseline = result.metrics, result.baseline_metrics
    assert result.split["test_periods"] == "2025Q4..2025Q4"
    assert metrics["mae"] < 0.8 * baseline["mae"]
    assert metrics["overrun_auroc"] > baseline["overrun_auroc"] + 0.1
    assert 0.6 <= metrics["coverage"] <= 0.95
    features = mlflow.artifacts.load_text(f"runs:/{result.run_id}/features.csv")
    assert "in_stay" in features and "ratio_to_date" in features

    # the watch list of the demo's last day, from the registered champion
    model = mlflow.pyfunc.load_model("models:/caselens-instay@champion").unwrap_python_model()
    last = hospital.cases["discharge_date"].max()
    cuts = in_hospital(hospital.inpatients, last, hospital.cases[["case_id", "discharge_date"]])
    frame = cut_stays(hospital.inpatients, hospital.charges, cuts)
    found = model.predict_frame(frame, hospital.cases)
    assert len(found) == len(hospital.in_hospital) > 0
    assert found["p_overrun"].between(0, 1).all()
    assert (found["final_cost_lower"] <= found["final_cost"]).all()
    assert (found["final_cost"] <= found["final_cost_upper"]).all()
    X = model.features.transform(frame, history=hospital.cases)
    reasons = top_reasons(model.contributions(X).values, X, model.features.catalog)
    assert len(reasons) == len(frame) and all(r.count(" = ") == 3 for r in reasons)
    values, base = lgbm.contributions(model.estimator.explained, X)
    log_odds = np.log(found["p_overrun"] / (1 - found["p_overrun"]))
    np.testing.assert_allclose(base + values.sum(axis=1), log_odds, atol=1e-6)


def test_train_all_skips_the_in_stay_task_without_daily_charges(settings, demo_hospital) -> None:
    from cli.train import _lacks_daily_tables
    from pipelines.store import write_table

    assert _lacks_daily_tables("instay") and not _lacks_daily_tables("cost")
    write_table("charges", demo_hospital.charges.head(50))
    assert not _lacks_daily_tables("instay")


def test_the_in_stay_task_does_not_take_a_table(settings, tmp_path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    (tmp_path / "t.csv").write_text("a,final_cost\n1,2\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["train", "instay", "--table", str(tmp_path / "t.csv"), "--label", "final_cost"]
    )
    assert result.exit_code == 2 and "daily charges" in result.output
