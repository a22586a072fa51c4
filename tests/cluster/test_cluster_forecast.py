"""The surplus forecast with its inputs priced on a Dask cluster gives the in-process tables, to the row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from casemix.payment import DEFAULT_RULES, POINT_CITY_RULES, PaymentRules
from cli.app import app
from pipelines.cluster import connect
from pipelines.cluster_forecast import HISTORY_COLUMNS, price_history_on_cluster
from pipelines.forecast import price_history
from pipelines.store import read_cases

runner = CliRunner()
# Small, so the whole forecast runs twice in seconds; the backtest and its loss calibration included.
FAST = ["--horizon", "2", "--draws", "60", "--origins", "2", "--top", "3", "--no-track"]


@pytest.fixture(autouse=True)
def _data_in_tmp(settings: object) -> None:
    """Every default path points into a temporary folder."""


@pytest.mark.slow
def test_forecast_on_cluster_equals_in_process(toy_store: Path, local_cluster, tmp_path: Path) -> None:
    """With a scenario whose base rate is new to the schedule: history re-priced at it in the client."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(
        'name = "rate +3%"\n[[base_rate]]\neffective_from = 2025-01-01\nchange = 0.03\n', encoding="utf-8"
    )
    args = ["forecast", "surplus", "--store", str(toy_store), "--scenario", str(scenario), *FAST]
    local = runner.invoke(app, [*args, "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    on_cluster = runner.invoke(
        app, [*args, "-o", str(tmp_path / "cluster"), "--scheduler", local_cluster.scheduler_address]
    )
    assert on_cluster.exit_code == 0, on_cluster.output
    tables = sorted(p.name for p in (tmp_path / "local").glob("*.csv"))
    assert {
        "surplus-hospital.csv",
        "scenario-difference-hospital.csv",
        "backtest.csv",
        "loss-risk.csv",
    } <= set(tables)
    assert tables == sorted(p.name for p in (tmp_path / "cluster").glob("*.csv"))
    for name in tables:
        expected = pd.read_csv(tmp_path / "local" / name, encoding="utf-8-sig")
        found = pd.read_csv(tmp_path / "cluster" / name, encoding="utf-8-sig")
        pd.testing.assert_frame_equal(found, expected, check_exact=True, obj=name)
    hospital = pd.read_csv(tmp_path / "local" / "surplus-hospital.csv", encoding="utf-8-sig")
    assert hospital.loc[hospital["kind"] == "actual", "volume"].sum() > 2_000  # the history is all there


def _without_table(rules: PaymentRules) -> PaymentRules:
    return rules.model_copy(update={"calibration": rules.calibration.model_copy(update={"rw_table": None})})


@pytest.mark.parametrize(
    "rules",
    [_without_table(PaymentRules.load(DEFAULT_RULES)), PaymentRules.load(POINT_CITY_RULES)],
    ids=["rate", "point"],
)
def test_priced_history_on_cluster_is_the_in_process_one_narrowed(
    rules: PaymentRules, toy_store: Path, local_cluster
) -> None:
    """Weights calibrated once on every partition (no insurer table); readmissions across partitions
    linked after the shuffle by patient; only the pricing columns come back, in the store's order;
    under the point method the schedule's expected point values come from those columns."""
    assert rules.calibration.rw_table is None and rules.readmission is not None
    expected = price_history(read_cases(toy_store), rules)
    with connect(local_cluster) as client:
        found = price_history_on_cluster(client, rules, store_dir=toy_store)
    assert list(found.cases.columns) == [c for c in HISTORY_COLUMNS if c in expected.cases.columns]
    assert "other_diagnoses" not in found.cases.columns and "coder_id" not in found.cases.columns
    assert expected.cases["readmitted"].sum() > 0
    pd.testing.assert_frame_equal(found.cases, expected.cases[list(found.cases.columns)], check_exact=True)
    pd.testing.assert_frame_equal(found.weights, expected.weights, check_exact=True)
    assert found.schedule == expected.schedule and found.names == expected.names
