"""Grouping and pricing on a Dask cluster give the in-process rows, to the row."""

from __future__ import annotations

import gc
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from casemix.payment import DEFAULT_RULES, PaymentRules, PointValue
from cli.app import app
from contract.errors import ConfigError
from pipelines import cluster
from pipelines.cluster import connect
from pipelines.cluster_casemix import group_store

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_in_tmp(settings: object) -> None:
    """Every default path points into a temporary folder."""


def _in_process(store: Path, out: Path, *options: str) -> pd.DataFrame:
    result = runner.invoke(app, ["group", str(store), "-o", str(out), *options])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out).sort_values("case_id").reset_index(drop=True)


def _on_cluster(store: Path, out: Path, address: str, *options: str) -> pd.DataFrame:
    result = runner.invoke(app, ["group", str(store), "-o", str(out), "--scheduler", address, *options])
    assert result.exit_code == 0, result.output
    assert "partitions on the cluster" in result.output
    files = sorted(out.glob("part.*.parquet"))
    assert len(files) > 2  # the work really was split
    return pd.read_parquet(out).sort_values("case_id").reset_index(drop=True)


def test_group_on_cluster_equals_in_process(toy_store: Path, local_cluster, tmp_path: Path) -> None:
    expected = _in_process(toy_store, tmp_path / "local.parquet")
    found = _on_cluster(toy_store, tmp_path / "cluster", local_cluster.scheduler_address)
    pd.testing.assert_frame_equal(found, expected, check_exact=True)


def test_priced_on_cluster_equals_in_process(toy_store: Path, local_cluster, tmp_path: Path) -> None:
    """The default rules have the readmission rule: the cluster shuffles by patient first."""
    payment = ["--payment", str(DEFAULT_RULES)]
    expected = _in_process(toy_store, tmp_path / "local.parquet", *payment)
    found = _on_cluster(toy_store, tmp_path / "cluster", local_cluster.scheduler_address, *payment)
    assert expected["readmitted"].sum() > 0  # the cross-stay rule is exercised
    pd.testing.assert_frame_equal(found, expected, check_exact=True)


def test_env_setting_turns_the_cluster_on(
    toy_store: Path, local_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contract.settings import get_settings

    monkeypatch.setenv("CASELENS_DASK_SCHEDULER", local_cluster.scheduler_address)
    get_settings.cache_clear()
    result = runner.invoke(app, ["group", str(toy_store), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").is_dir() and "partitions on the cluster" in result.output


def test_estimated_weights_are_calibrated_on_every_partition(
    toy_store: Path, toy_cases: pd.DataFrame, local_cluster, tmp_path: Path
) -> None:
    """Without an insurer table the weights come from all the cases, not from each partition's."""
    from casemix.engine import CasemixEngine
    from pipelines.store import read_cases

    rules = PaymentRules.load(DEFAULT_RULES)
    rules = rules.model_copy(update={"calibration": rules.calibration.model_copy(update={"rw_table": None})})
    with connect(local_cluster) as client:
        found = group_store(client, tmp_path / "out", store_dir=toy_store, rules=rules)
    assert found.weights_source != "insurer table"
    cases = read_cases(toy_store)
    engine = CasemixEngine(rules=rules, remember=False)
    grouped = engine.grouped(cases)
    expected = engine.price(grouped, engine.weights(grouped))
    got = pd.read_parquet(tmp_path / "out").sort_values("case_id").reset_index(drop=True)
    expected = expected.sort_values("case_id").reset_index(drop=True)
    pd.testing.assert_series_equal(got["rw"], expected["rw"])
    pd.testing.assert_series_equal(got["drg_payment"], expected["drg_payment"])
    assert found.drg_payment == pytest.approx(expected["drg_payment"].sum())


def test_budget_point_value_is_refused_on_the_cluster(toy_store: Path, local_cluster, tmp_path: Path) -> None:
    """A budget shared by the priced cases' own points needs every case's points at once."""
    rules = PaymentRules.load(DEFAULT_RULES.with_name("payment.point-city.toml"))
    closing = [PointValue(year=year, budget_yuan=1e8) for year in (2023, 2024)]
    rules = rules.model_copy(update={"point_values": closing})
    with connect(local_cluster) as client, pytest.raises(ConfigError, match="total_points"):
        group_store(client, tmp_path / "out", store_dir=toy_store, rules=rules)


def test_unreachable_scheduler_is_a_clear_error(
    toy_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    result = runner.invoke(
        app, ["group", str(toy_store), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in " ".join(result.output.split())


def test_cluster_output_must_be_a_folder(toy_store: Path, local_cluster, tmp_path: Path) -> None:
    out = tmp_path / "grouped.csv"
    result = runner.invoke(
        app, ["group", str(toy_store), "-o", str(out), "--scheduler", local_cluster.scheduler_address]
    )
    assert result.exit_code == 2 and "Parquet folder" in " ".join(result.output.split())


@pytest.mark.parametrize("by", ["department", "hospital"])
def test_casemix_report_on_cluster_equals_in_process(
    by: str, toy_store: Path, local_cluster, tmp_path: Path
) -> None:
    """Partition sums added up give the report of all cases (to the float summation order)."""
    args = ["casemix", "report", "--store", str(toy_store), "--by", by, "--period", "quarter"]
    local = runner.invoke(app, [*args, "-o", str(tmp_path / "local.csv")])
    assert local.exit_code == 0, local.output
    on_cluster = runner.invoke(
        app, [*args, "-o", str(tmp_path / "cluster.csv"), "--scheduler", local_cluster.scheduler_address]
    )
    assert on_cluster.exit_code == 0, on_cluster.output
    expected, found = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "cluster.csv")
    assert expected["cases"].sum() == 2_400 and len(expected) > 4
    pd.testing.assert_frame_equal(found, expected, rtol=1e-9)


def test_a_client_that_could_not_connect_is_gone_before_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask closes such a client when it is collected; collected later, inside the next connection's
    start, that close hung the test run. Nothing of it may outlive the error."""
    from distributed import Client

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, Client)}
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"), connect("tcp://127.0.0.1:9"):
        pass
    assert [o for o in gc.get_objects() if isinstance(o, Client) and id(o) not in before] == []
