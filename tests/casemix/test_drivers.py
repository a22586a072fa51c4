"""``caselens casemix drivers``: both decompositions add up, the demo's planted driver is found, files
and MLflow, the CLI's errors."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app as cli
from contract.fields import COST_CATEGORIES
from contract.settings import Settings
from models.drivers.decompose import (
    CHARGE_GROUPS,
    FEATURES,
    UNALLOCATED,
    UNEXPLAINED,
    case_contributions,
    charge_group_gaps,
    discharge_features,
    driver_cases,
    feature_differences,
    feature_gaps,
    feature_levels,
    fit_cost_model,
)
from pipelines.demo import generate_demo
from pipelines.demo.trauma_ward import WARD
from pipelines.drivers import EXPERIMENT, read_reference, run_drivers, track_run
from pipelines.forecast import price_history
from pipelines.store import write_cases

FEATURE_DRIVERS = [*FEATURES, UNEXPLAINED]
runner = CliRunner()


def handmade(seed: int = 0) -> pd.DataFrame:
    """Priced-looking cases of two DRGs in three departments over two quarters; the groups of some
    abstracts do not add up to their total (as ingestion tolerates)."""
    rng = np.random.default_rng(seed)
    n = 600
    groups = rng.gamma(2.0, 800.0, size=(n, len(COST_CATEGORIES))).round(2)
    frame = pd.DataFrame(groups, columns=list(COST_CATEGORIES))
    frame["total_cost"] = frame.sum(axis=1) + np.where(rng.random(n) < 0.1, rng.uniform(-0.9, 0.9, n), 0.0)
    frame["drg"] = rng.choice(["IF33", "ES33"], n)
    frame["department"] = rng.choice(["orthopaedics", "trauma", "respiratory"], n)
    frame["hospital_id"] = "H1"
    frame["status"] = np.where(rng.random(n) < 0.03, "ungroupable", "grouped")
    frame["discharge_date"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 180, n), unit="D")
    frame["drg_payment"] = 15_000.0
    frame["los_days"] = rng.integers(1, 20, n)
    frame["mcc_count"] = rng.integers(0, 2, n)
    frame["cc_count"] = rng.integers(0, 3, n)
    frame["principal_diagnosis"] = "S72.000"
    frame["other_diagnoses"] = np.where(rng.random(n) < 0.5, "I10.x00|E11.900", None)
    frame["principal_procedure"] = np.where(rng.random(n) < 0.6, "79.3501", None)
    frame["other_procedures"] = None
    frame["age_years"] = rng.integers(20, 90, n)
    frame["sex"] = rng.integers(1, 3, n)
    frame["admission_source"] = rng.choice([1, 2, 3], n)
    frame["admission_type"] = rng.choice([1, 2], n)
    frame["discharge_disposition"] = 1
    frame["total_cost"] += frame["los_days"] * 300.0  # a feature that drives cost
    return frame


def test_charge_groups_add_up_to_the_gap_and_the_gap_is_against_the_hospitals_drg_mean() -> None:
    cases = driver_cases(handmade(), "quarter")
    table = charge_group_gaps(cases, "department")
    assert len(cases) < 600  # the ungroupable cases are left out
    drivers = table[list(CHARGE_GROUPS)].sum(axis=1)
    assert np.allclose(drivers, table["gap_total"], rtol=0, atol=1e-6)
    assert table[UNALLOCATED].abs().max() > 0  # the groups that do not add up are a driver of their own
    cell = table.iloc[0]
    same = cases[(cases["drg"] == cell["drg"]) & (cases["period"] == cell["period"])]
    own = same[same["department"] == cell["department"]]
    assert cell["cases"] == len(own)
    assert cell["benchmark_per_case"] == pytest.approx(same["total_cost"].mean())
    assert cell["gap_total"] == pytest.approx(
        len(own) * (own["total_cost"].mean() - same["total_cost"].mean())
    )
    assert cell["cost_consumables"] == pytest.approx(
        len(own) * (own["cost_consumables"].mean() - same["cost_consumables"].mean())
    )
    assert cell["surplus"] == pytest.approx((own["drg_payment"] - own["total_cost"]).sum())
    # the department cells of a DRG-period sum to zero gap: the benchmark is their case-weighted mean
    assert np.allclose(table.groupby(["drg", "period"])["gap_total"].sum(), 0.0, atol=1e-6)


def test_a_reference_file_is_the_benchmark_and_bad_ones_name_line_and_field(tmp_path: Path) -> None:
    cases = driver_cases(handmade(), "year")
    rows = {"drg": ["IF33", "ES33"], **{c: [1000.0, 500.0] for c in COST_CATEGORIES}}
    path = tmp_path / "region.csv"
    pd.DataFrame({**rows, "total_cost": [10_100.0, 5_000.0]}).to_csv(path, index=False)
    table = charge_group_gaps(cases, "hospital", read_reference(path))
    assert len(table) == 2
    assert np.allclose(table[list(CHARGE_GROUPS)].sum(axis=1), table["gap_total"], atol=1e-6)
    own = cases[cases["drg"] == "IF33"]
    row = table[table["drg"] == "IF33"].iloc[0]
    assert row["gap_total"] == pytest.approx(len(own) * (own["total_cost"].mean() - 10_100.0))
    assert row["cost_diagnostics"] == pytest.approx(len(own) * (own["cost_diagnostics"].mean() - 1000.0))

    bad = pd.DataFrame(rows)
    bad.loc[1, "cost_blood"] = "n/a"
    bad.to_csv(path, index=False)
    with pytest.raises(Exception, match="line 3, field cost_blood"):
        read_reference(path)
    pd.DataFrame(rows).drop(columns="cost_tcm").to_csv(path, index=False)
    with pytest.raises(Exception, match=r"missing column.*cost_tcm"):
        read_reference(path)


def test_shap_levels_add_up_to_the_cells_mean_cost_and_feature_gaps_to_the_gap() -> None:
    cases = driver_cases(handmade(), "quarter")
    X = discharge_features(cases)
    contributions = case_contributions(fit_cost_model(X, cases["cost"]), X, cases["cost"])
    levels = feature_levels(cases, contributions, "department")
    assert np.allclose(levels[["base", *FEATURE_DRIVERS]].sum(axis=1), levels["mean_cost"], rtol=0, atol=1e-6)
    gaps = feature_gaps(cases, contributions, "department")
    assert np.allclose(gaps[FEATURE_DRIVERS].sum(axis=1), gaps["gap_total"], rtol=0, atol=1e-6)
    charges = charge_group_gaps(cases, "department")
    assert np.allclose(gaps["gap_total"], charges["gap_total"], atol=1e-6)  # the same gap, two ways
    # the model learnt the stay: length of stay carries the largest mean |SHAP| in yuan
    spread = contributions[list(FEATURES)].abs().mean()
    assert spread.idxmax() == "los_days"
    moved = feature_differences(cases, X, "department").iloc[0]
    same = cases[(cases["drg"] == moved["drg"]) & (cases["period"] == moved["period"])]
    own = same[same["department"] == moved["department"]]
    assert moved["los_days"] == pytest.approx(own["los_days"].mean() - same["los_days"].mean())


def test_a_run_leaves_no_chart_of_an_earlier_run(tmp_path: Path) -> None:
    priced = handmade()
    run_drivers(priced, tmp_path, period="year", top=3, min_cases=1)
    assert len(list(tmp_path.glob("cell-*.png"))) == 3
    run_drivers(priced, tmp_path, period="year", top=1, min_cases=1)
    assert [p.name for p in tmp_path.glob("cell-*.png")] == ["cell-01.png"]


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """A demo hospital big enough to have a few trauma-ward femoral-fracture stays a year."""
    return price_history(generate_demo(9000, 2, seed=5).cases).cases


@pytest.fixture(scope="module")
def planted_run(planted: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("drivers")
    return out, run_drivers(planted, out, period="year", top=5, min_cases=3)


def test_the_demo_trauma_wards_consumables_are_found_and_ranked_first_in_its_cells(planted_run) -> None:
    _, run = planted_run
    table = run.charge_groups
    ward = table[(table["department"] == WARD) & (table["cases"] >= 3) & (table["gap_total"] > 0)]
    assert len(ward) >= 3  # a handful of stays a year: noise can put a small cell under its benchmark
    for _, cell in ward.iterrows():
        assert cell[list(CHARGE_GROUPS)].astype(float).idxmax() == "cost_consumables", cell["drg"]
    ranked = run.cells[run.cells["department"] == WARD]
    assert len(ranked) >= 1 and ranked["rank"].min() == 1  # the dearest cell of the hospital
    top = ranked.iloc[0]
    assert top["sentence_en"].split("charge groups: ")[1].startswith("consumables +¥")
    assert "耗材类每例+¥" in top["sentence_zh"]
    # case features cannot explain a habit of the ward: the rest is its practice
    features = run.features[run.features["department"] == WARD]
    row = features[(features["drg"] == top["drg"]) & (features["period"] == top["period"])].iloc[0]
    assert row[FEATURE_DRIVERS].astype(float).idxmax() == UNEXPLAINED


def test_run_writes_csvs_that_add_up_charts_and_logs_to_mlflow(planted_run, settings: Settings) -> None:
    out, run = planted_run
    for name, drivers in (("charge-groups.csv", list(CHARGE_GROUPS)), ("features.csv", FEATURE_DRIVERS)):
        table = pd.read_csv(out / name, encoding="utf-8-sig")
        assert list(table.columns[:7]) == [
            "hospital_id",
            "drg",
            "department",
            "period",
            "cases",
            "gap_total",
            drivers[0],
        ]
        assert np.allclose(table[drivers].sum(axis=1), table["gap_total"], atol=1e-6)
    charts = sorted(p.name for p in out.glob("cell-*.png"))
    assert charts == [f"cell-{r:02d}.png" for r in run.cells["rank"]]
    assert (out / "cell-01.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run_id = track_run(run, out, {"period": "year"}, settings)
    found = mlflow.get_run(run_id)
    assert mlflow.get_experiment(found.info.experiment_id).name == EXPERIMENT
    assert found.data.metrics["addup_error_features"] < 1e-6
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"charge-groups.csv", "features.csv", "cells.csv", "cell-01.png", "run.json"} <= artifacts


def test_cli_runs_on_the_store_and_refuses_a_hospital_level_without_reference(
    demo_hospital, settings: Settings, tmp_path: Path
) -> None:
    write_cases(demo_hospital.cases, settings.store_dir)
    args = ["casemix", "drivers", "--period", "year", "--top", "2", "--min-cases", "2"]
    result = runner.invoke(cli, [*args, "--no-track", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    assert "超出基准" in result.output and "Cost drivers" in result.output
    assert (settings.data_dir / "drivers" / "charge-groups.csv").is_file()
    result = runner.invoke(cli, [*args, "--by", "hospital", "--no-track"])
    assert result.exit_code == 2 and "give a reference file" in result.output
    result = runner.invoke(cli, [*args, "--reference", str(tmp_path / "none.csv"), "--no-track"])
    assert result.exit_code != 0 and "no such reference file" in result.output
    region = tmp_path / "region.csv"
    drgs = demo_hospital.cases.groupby("department").size().index  # not DRGs: matches nothing
    pd.DataFrame({"drg": drgs, **dict.fromkeys(COST_CATEGORIES, 100.0)}).to_csv(region, index=False)
    result = runner.invoke(cli, [*args, "--by", "hospital", "--reference", str(region), "--no-track"])
    assert result.exit_code == 2 and "shares no DRG" in result.output
    grouped = pd.read_csv(settings.data_dir / "drivers" / "charge-groups.csv", encoding="utf-8-sig")
    pd.DataFrame({"drg": grouped["drg"].unique(), **dict.fromkeys(COST_CATEGORIES, 100.0)}).to_csv(
        region, index=False
    )
    result = runner.invoke(cli, [*args, "--by", "hospital", "--reference", str(region), "--no-track"])
    assert result.exit_code == 0, result.output
    hospital = pd.read_csv(settings.data_dir / "drivers" / "charge-groups.csv", encoding="utf-8-sig")
    assert "department" not in hospital.columns and (hospital["benchmark_per_case"] == 1000.0).all()
    assert np.allclose(hospital[list(CHARGE_GROUPS)].sum(axis=1), hospital["gap_total"], atol=1e-6)
    assert "Traceback" not in result.output
