"""End to end on the demo hospital: group, price, forecast, scenario, backtest, files, MLflow, CLI, API."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from casemix.payment import PaymentRules, PointValue
from casemix.settlement import expected_point_values
from cli.app import app as cli
from contract.settings import Settings
from models.forecast import RateSchedule, Scenario, forecast_surplus
from models.forecast.levels import level_forecast
from pipelines.forecast import EXPERIMENT, PricedHistory, price_history, run_surplus_forecast, track_run
from pipelines.store import write_cases
from serving.app import create_app
from serving.config import ServingSettings
from serving.security import add_key, revoke_key

SCENARIO = Scenario(name="oncology +10%", volume=[{"department": "oncology", "change": 0.10}])


@pytest.fixture(scope="module")
def history(demo_hospital) -> PricedHistory:
    return price_history(demo_hospital.cases)


@pytest.fixture(scope="module")
def written(history: PricedHistory, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("forecast")
    return out, run_surplus_forecast(history, 2, out, scenario=SCENARIO, n_draws=100, origins=2, top=5)


def test_the_demo_rate_change_is_in_the_schedule_and_the_forecast(history: PricedHistory, written) -> None:
    assert history.schedule.rate_on(date(2024, 12, 31)) == 10_000.0
    assert history.schedule.rate_on(date(2025, 1, 1)) == 10_500.0
    out, _ = written
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert meta["history"] == ["2023Q1", "2025Q4"]
    assert meta["rate_by_quarter"] == {"2026Q1": 10_500.0, "2026Q2": 10_500.0}
    assert meta["weights_source"] == "insurer table"  # the embedded rules name the city's RW table


def test_forecast_is_priced_at_the_forecast_quarters_rate(history: PricedHistory) -> None:
    """Re-pricing all history at ¥10,500 instead of ¥10,000 raises payment by (almost) the 5%: only
    cases paid by item (ungroupable, long stays, low-cost) do not follow the rate."""
    old = RateSchedule.from_pairs([(date(2023, 1, 1), 10_000.0)])
    new, _ = forecast_surplus(history.cases, history.reprice, history.schedule, 1, n_draws=50)
    flat, _ = forecast_surplus(history.cases, history.reprice, old, 1, n_draws=50)
    ratio = (
        level_forecast(new, "hospital")["payment"].iloc[0]
        / level_forecast(flat, "hospital")["payment"].iloc[0]
    )
    assert 1.03 < ratio <= 1.05 + 1e-9
    assert np.allclose(new.point["cost"], flat.point["cost"])


def test_run_writes_a_table_and_chart_per_level(written) -> None:
    out, run = written
    for level in ("hospital", "department", "drg"):
        table = pd.read_csv(out / f"surplus-{level}.csv", encoding="utf-8-sig")
        assert {"actual", "forecast"} == set(table["kind"])
        assert (out / f"surplus-{level}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / f"scenario-difference-{level}.csv").is_file()
    hospital = run.tables["hospital"].query("kind == 'forecast'")
    departments = (
        run.tables["department"].query("kind == 'forecast'").groupby("quarter")[["surplus", "cost"]].sum()
    )
    assert np.allclose(departments.to_numpy(), hospital.set_index("quarter")[["surplus", "cost"]].to_numpy())
    assert "name" in run.tables["drg"].columns
    oncology = run.difference_tables["department"].set_index("key")
    assert (oncology.drop(index="oncology")["volume"].abs() < 1e-9).all()
    assert (oncology.loc["oncology", "volume"] > 0).all()
    assert set(run.summary.index) == {"hospital", "department", "drg"}
    settlement = pd.read_csv(out / "settlement.csv", encoding="utf-8-sig")
    assert list(settlement["year"]) == [2026] and settlement["insured_cases"].iloc[0] > 0
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert meta["settlement"][0]["fund_final"] == pytest.approx(settlement["fund_final"].iloc[0])


def test_run_writes_the_loss_risk_ranked_and_calibrated_on_its_backtest(written) -> None:
    out, run = written
    risk = pd.read_csv(out / "loss-risk.csv", encoding="utf-8-sig", dtype={"quarter": str})
    assert set(risk["quarter"]) == {"2026Q1", "2026Q2"} and risk["p_loss"].between(0, 1).all()
    cells = risk.drop_duplicates(["department", "drg"])
    assert list(cells["rank"]) == list(range(1, len(cells) + 1))
    assert cells["expected_loss_total"].is_monotonic_decreasing
    assert risk["name"].notna().all()  # DRG names beside the codes
    drivers = risk[["driver_volume", "driver_payment_change", "driver_cost_trend"]].sum(axis=1)
    assert np.allclose(drivers, risk["surplus"] - risk["reference_surplus"], atol=1e-6)
    # the published probability is the backtest's calibration of the simulated one and the history rate
    assert run.loss_calibration is not None
    expected = run.loss_calibration(risk["p_loss_simulated"], risk["loss_rate_history"])
    assert np.allclose(risk["p_loss"], expected)
    scores = pd.read_csv(out / "loss-risk-backtest.csv", encoding="utf-8-sig")
    assert set(scores["origin"]) == {"2025Q3", "2025Q4"}
    assert run.loss_summary.loc["all cells", "n"] == len(scores)
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert meta["loss_risk"]["probability"] == "calibrated"
    assert meta["loss_risk"]["backtest"]["all cells"]["brier_naive"] == pytest.approx(
        ((scores["naive"] - scores["lost"]) ** 2).mean()
    )


def test_run_is_logged_to_mlflow(written, settings: Settings) -> None:
    out, run = written
    run_id = track_run(run, out, {"horizon": 2}, settings)
    found = mlflow.get_run(run_id)
    assert "hospital_mape" in found.data.metrics and "hospital_coverage80" in found.data.metrics
    assert found.data.metrics["loss_brier_calibrated"] == pytest.approx(
        run.loss_summary.loc["all cells", "brier_calibrated"]
    )
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"surplus-hospital.csv", "surplus-hospital.png", "backtest-summary.csv"} <= artifacts
    assert {"loss-risk.csv", "loss-risk-backtest-summary.csv", "loss-risk-reliability.csv"} <= artifacts
    assert mlflow.get_experiment(found.info.experiment_id).name == EXPERIMENT


def test_cli_runs_on_the_store_and_reports_bad_scenarios(
    demo_hospital, settings: Settings, tmp_path: Path
) -> None:
    write_cases(demo_hospital.cases, settings.store_dir)
    runner = CliRunner()
    args = ["forecast", "surplus", "--horizon", "1", "--draws", "50", "--origins", "0", "--no-track"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Hospital surplus forecast" in result.output and "医保年终清算预测" in result.output
    assert "DRG loss risk" in result.output and "as simulated, uncalibrated" in result.output
    assert (settings.data_dir / "forecast" / "surplus-hospital.csv").is_file()
    assert (settings.data_dir / "forecast" / "loss-risk.csv").is_file()
    scenario = tmp_path / "typo.toml"
    scenario.write_text('[[cost]]\ndepartment = "cardiolgy"\nchange = -0.05\n', encoding="utf-8")
    result = runner.invoke(cli, [*args, "--scenario", str(scenario)])
    assert result.exit_code == 2 and "department 'cardiolgy'" in result.output
    assert "Traceback" not in result.output


def serve_run(out: Path, settings: Settings, roles: tuple[str, ...]) -> tuple[object, dict[str, str], Path]:
    """An app serving the run written to ``out`` as the latest forecast, a key per role, and the
    run's folder in the data folder (``t-<role>`` are the keys' ids)."""
    target = settings.data_dir / "forecast"
    target.mkdir(parents=True)
    for path in out.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    keys_path = settings.data_dir / "api-keys.json"
    keys = {role: add_key(keys_path, f"t-{role}", role) for role in roles}
    return create_app(settings, ServingSettings(api_keys=str(keys_path))), keys, target


def test_api_and_page_serve_the_latest_run(written, settings: Settings) -> None:
    out, _ = written
    app, keys, target = serve_run(out, settings, ("finance", "clinician"))
    finance = {"Authorization": f"Bearer {keys['finance']}"}
    with TestClient(app) as client:
        answer = client.get(
            "/v1/forecast/surplus", params={"level": "department", "horizon": 1}, headers=finance
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["forecast"] == ["2026Q1"] and body["level"] == "department"
        assert body["weights_source"] == "insurer table"
        forecast = [r for r in body["rows"] if r["kind"] == "forecast"]
        assert {r["quarter"] for r in forecast} == {"2026Q1"}
        assert all(r["surplus"]["lo80"] <= r["surplus"]["hi80"] for r in forecast)
        (year,) = body["settlement"]  # 2026Q1–Q2: the run's full horizon, one year
        assert (year["year"], year["quarters_actual"], year["quarters_forecast"]) == (2026, 0, 2)
        assert year["balance"]["lo80"] <= year["balance"]["value"] <= year["balance"]["hi80"]
        assert year["cleared"]["value"] == pytest.approx(
            year["fund_final"]["value"] - year["prepaid"]["value"]
        )
        assert client.get("/v1/forecast/surplus", params={"horizon": 3}, headers=finance).status_code == 422
        nurse = {"Authorization": f"Bearer {keys['clinician']}"}
        assert client.get("/v1/forecast/surplus", headers=nurse).status_code == 403
        chart = client.get("/v1/forecast/surplus/chart", params={"level": "drg"}, headers=finance)
        assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
        page = client.get("/forecast", params={"lang": "zh", "level": "drg"}, headers=finance)
        assert page.status_code == 200 and "DRG结余季度预测" in page.text and "80%区间" in page.text
        english = client.get("/forecast", params={"lang": "en"}, headers=finance)
        assert "Quarterly DRG surplus forecast" in english.text
        assert "weights: insurer table" in english.text and "权重：医保局权重表" in page.text
        assert "结算差额率" in page.text and "超支分担" in page.text and 'id="settlement"' in english.text
        meta = json.loads((target / "run.json").read_text(encoding="utf-8"))
        estimated = {**meta, "weights_source": "estimated from own history"}
        (target / "run.json").write_text(json.dumps(estimated), encoding="utf-8")
        warned = client.get("/forecast", params={"lang": "en"}, headers=finance)
        assert "payment and surplus are estimates" in warned.text
        assert client.get("/v1/forecast/surplus", headers=finance).json()["weights_source"] == (
            "estimated from own history"
        )


def test_point_method_forecasts_at_the_expected_point_value_and_takes_a_point_value_scenario(
    demo_hospital,
) -> None:
    """点数法: yuan per RW is points per RW × the year's point value; a future year expects its budget
    over the points expected then (not last year's value carried forward), and a point-value change
    scenario moves payment by exactly its share."""
    values = [PointValue(year=y, yuan=v) for y, v in ((2023, 100.0), (2024, 100.0), (2025, 105.0))]
    rules = PaymentRules.load().model_copy(update={"method": "point", "point_values": values})
    history = price_history(demo_hospital.cases, rules=rules)
    assert history.schedule.rate_on(date(2024, 12, 31)) == 10_000.0
    assert history.schedule.rate_on(date(2025, 6, 30)) == 10_500.0
    expected = expected_point_values(history.cases, rules, [2026])[2026]
    assert expected != pytest.approx(105.0)  # the demo's points grow, so a point is worth less

    up = Scenario(base_rate=[{"effective_from": date(2026, 4, 1), "change": 0.04}])  # point value +4%
    base, changed = forecast_surplus(
        history.cases, history.reprice, history.schedule, 2, scenario=up, n_draws=50
    )
    assert base.rate.tolist() == pytest.approx([100 * expected] * 2)
    assert changed.rate.tolist() == pytest.approx([100 * expected, 104 * expected])
    ratio = level_forecast(changed, "hospital")["payment"] / level_forecast(base, "hospital")["payment"]
    assert ratio.iloc[0] == pytest.approx(1.0)
    assert 1.0 < ratio.iloc[1] <= 1.04 + 1e-9


def test_loss_risk_endpoint_and_page(written, settings: Settings) -> None:
    out, run = written
    app, keys, target = serve_run(out, settings, ("finance", "admin", "clinician", "coder"))
    finance = {"Authorization": f"Bearer {keys['finance']}"}
    with TestClient(app) as client:
        answer = client.get("/v1/forecast/loss-risk", params={"top": 5}, headers=finance)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["probability"] == "calibrated" and body["forecast"] == ["2026Q1", "2026Q2"]
        assert body["backtest"]["all cells"]["brier_calibrated"] >= 0
        cells = body["cells"]
        assert [c["rank"] for c in cells] == [1, 2, 3, 4, 5]
        totals = [c["expected_loss_total"] for c in cells]
        assert totals == sorted(totals, reverse=True)
        top = run.loss_risk[run.loss_risk["rank"] == 1]
        assert (cells[0]["department"], cells[0]["drg"]) == tuple(top[["department", "drg"]].iloc[0])
        for cell in cells:
            assert [q["quarter"] for q in cell["quarters"]] == ["2026Q1", "2026Q2"]
            for q in cell["quarters"]:
                assert 0 <= q["p_loss"] <= 1
                parts = q["driver_volume"] + q["driver_payment_change"] + q["driver_cost_trend"]
                assert parts == pytest.approx(q["surplus"] - q["reference_surplus"], abs=1e-3)
        # one quarter: re-ranked on that quarter's expected loss alone
        first = client.get("/v1/forecast/loss-risk", params={"horizon": 1, "top": 3}, headers=finance).json()
        assert all(len(c["quarters"]) == 1 for c in first["cells"])
        assert [c["expected_loss_total"] for c in first["cells"]] == [
            c["quarters"][0]["expected_loss"] for c in first["cells"]
        ]
        expected = run.loss_risk[run.loss_risk["h"] == 1].nlargest(3, "expected_loss")["expected_loss"]
        assert [c["expected_loss_total"] for c in first["cells"]] == pytest.approx(list(expected))
        department = cells[0]["department"]
        own = client.get(
            "/v1/forecast/loss-risk", params={"department": department, "top": 500}, headers=finance
        )
        expected_cells = run.loss_risk.loc[run.loss_risk["department"] == department, "drg"].nunique()
        assert {c["department"] for c in own.json()["cells"]} == {department}
        assert len(own.json()["cells"]) == expected_cells and own.json()["cells"][0]["rank"] == 1
        nobody = client.get("/v1/forecast/loss-risk", params={"department": "x' OR 1=1"}, headers=finance)
        assert nobody.status_code == 200 and nobody.json()["cells"] == []
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        assert client.get("/v1/forecast/loss-risk", headers=admin).status_code == 200
        for role in ("clinician", "coder"):
            refused = client.get("/v1/forecast/loss-risk", headers={"Authorization": f"Bearer {keys[role]}"})
            assert refused.status_code == 403
        assert client.get("/v1/forecast/loss-risk").status_code == 401
        assert (
            client.get("/v1/forecast/loss-risk", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        for bad in ({"top": 0}, {"top": "many"}, {"horizon": 3}, {"horizon": -1}):
            assert client.get("/v1/forecast/loss-risk", params=bad, headers=finance).status_code == 422

        page = client.get("/forecast", params={"lang": "zh"}, headers=finance)
        assert page.status_code == 200 and 'id="loss-risk"' in page.text and "各科室DRG亏损风险" in page.text
        assert 'src="/forecast/charts/loss-risk.png"' in page.text
        chart = client.get("/forecast/charts/loss-risk.png", headers=finance)
        assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"
        api_chart = client.get("/v1/forecast/loss-risk/chart", headers=finance)
        assert api_chart.status_code == 200 and api_chart.content == chart.content
        assert client.get("/forecast/charts/run.json", headers=finance).status_code == 422
        assert client.get("/forecast/charts/..%2Frun.json", headers=finance).status_code in (404, 422)
        anonymous = client.get("/forecast/charts/loss-risk.png", follow_redirects=False)
        assert anonymous.status_code in (303, 307, 401) and not anonymous.content.startswith(b"\x89PNG")
        english = client.get("/forecast", params={"lang": "en"}, headers=finance).text
        assert "Loss risk by DRG and department" in english and "calibrated on the backtest" in english
        assert f"<td>{cells[0]['department']}</td>" in english and cells[0]["drg"] in english

        revoke_key(settings.data_dir / "api-keys.json", "t-finance")
        time.sleep(1.1)  # the key file is re-read within a second
        assert client.get("/v1/forecast/loss-risk", headers=finance).status_code == 401

        (target / "loss-risk.csv").unlink()  # a run from before the loss risk: the page still shows the rest
        older = client.get("/forecast", params={"lang": "en"}, headers=admin)
        assert older.status_code == 200 and "no loss risk in this run" in older.text
        assert client.get("/v1/forecast/loss-risk", headers=admin).status_code == 503
