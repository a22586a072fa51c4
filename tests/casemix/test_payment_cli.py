"""``caselens casemix report`` and ``weights`` end to end on a small cases file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from casemix.payment import DEFAULT_RULES, PaymentRules
from casemix.rw_table import read_weights, weights_source
from cli.app import app
from contract.fields import COST_CATEGORIES, FIELDS, canonical_frame
from pipelines import store

REFERENCE = Path(__file__).parents[1] / "data" / "chs_drg_11_test_cases.tsv"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_in_tmp(settings: object) -> None:
    """Every default path (reports, weights, store, payment rules) points into a temporary folder."""


@pytest.fixture
def cases_csv(tmp_path: Path) -> Path:
    """300 reference cases with departments, dates and charges added, as a canonical CSV."""
    ref = pd.read_csv(REFERENCE, sep="\t", dtype=str, keep_default_na=False).head(300)
    rng = np.random.default_rng(7)
    n = len(ref)
    discharged = pd.Timestamp("2024-10-01") + pd.to_timedelta(rng.integers(0, 180, n), unit="D")
    los = pd.to_numeric(ref["los_days"]).clip(lower=1)
    frame = pd.DataFrame(
        {
            "case_id": ref["case_id"],
            "department": rng.choice(["内科", "外科"], n),
            "sex": ref["sex"],
            "age_years": ref["age_years"],
            "age_days": ref["age_days"],
            "birth_weight_g": ref["birth_weight_g"],
            "diagnoses": ref["diagnoses"],
            "procedures": ref["procedures"],
            "admission_date": discharged - pd.to_timedelta(los, unit="D"),
            "discharge_date": discharged,
            "los_days": los,
            "total_cost": 10000.0,
            **dict.fromkeys(COST_CATEGORIES, 1000.0),
            "cost_negotiated_drugs": 0.0,
        }
    )
    path = tmp_path / "cases.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def own_history(tmp_path: Path) -> Path:
    """The embedded rules without the insurer's RW table, small DRGs shrunk towards the mean."""
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    text = text.replace('rw_table = "rw_table.demo-region.csv"\n', "").replace(
        'unstable = "adrg"', 'unstable = "shrink"'
    )
    path = tmp_path / "own-history.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_report_prices_with_the_insurer_table_of_the_rules(cases_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.csv"
    result = runner.invoke(
        app,
        ["casemix", "report", "--input", str(cases_csv), "--by", "drg", "--period", "year", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out)
    assert set(report["weights_source"]) == {"insurer table"}
    assert not (tmp_path / "out" / "report-weights.csv").exists()
    table = read_weights(PaymentRules.load().calibration.rw_table)
    priced = report[report["drg"].isin(table.index)]
    assert len(priced) > 0
    assert priced["cmi"].to_numpy() == pytest.approx(priced["drg"].map(table["rw"]).to_numpy())
    # Cost 10,000 everywhere, against the region's mean cost of each DRG.
    expected_cci = 10000 / priced["drg"].map(table["mean_cost"])
    assert priced["cci"].to_numpy() == pytest.approx(expected_cci.to_numpy())
    assert "insurer table" in " ".join(result.output.split())


def test_report_estimates_weights_without_a_table_and_says_so(
    cases_csv: Path, tmp_path: Path, own_history: Path
) -> None:
    out = tmp_path / "out" / "report.csv"
    args = ["casemix", "report", "--input", str(cases_csv), "--period", "year", "-o", str(out)]
    result = runner.invoke(app, [*args, "--payment", str(own_history)])
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out)
    assert report["cases"].sum() == 300
    assert set(report["department"]) == {"内科", "外科"}
    assert set(report["period"].astype(str)) == {"2024", "2025"}
    assert set(report["weights_source"]) == {"estimated from own history"}
    # Equal costs of 10,000 everywhere: against the rules' regional mean of 11,000 every DRG weighs
    # 10/11, and every grouped case costs exactly its DRG's standard cost.
    weights = read_weights(tmp_path / "out" / "report-weights.csv")
    assert weights_source(weights) == "estimated from own history"
    assert weights["rw"].to_numpy() == pytest.approx(10 / 11)
    assert weights["name"].notna().all()
    assert report["cmi"].to_numpy() == pytest.approx(10 / 11)
    assert report["cci"].to_numpy() == pytest.approx(1.0)
    output = " ".join(result.output.split())
    assert "CMI" in output and "estimated from own history (an estimate" in output


def test_report_by_drg_with_given_weights(cases_csv: Path, tmp_path: Path, own_history: Path) -> None:
    weights = tmp_path / "rw.csv"
    command = [
        "casemix",
        "weights",
        "--input",
        str(cases_csv),
        "--payment",
        str(own_history),
        "-o",
        str(weights),
    ]
    made = runner.invoke(app, command)
    assert made.exit_code == 0 and "estimated from own history" in made.output
    out = tmp_path / "by_drg.csv"
    args = [
        "casemix",
        "report",
        "--input",
        str(cases_csv),
        "--by",
        "drg",
        "--rw-table",
        str(weights),
        "-o",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "by_drg-weights.csv").exists()
    assert set(pd.read_csv(out)["weights_source"]) == {"estimated from own history"}


def test_a_bad_rw_table_names_line_and_field(cases_csv: Path, tmp_path: Path) -> None:
    table = tmp_path / "rw.csv"
    table.write_text("drg,rw,mean_cost\nFM19,2.0,x\n", encoding="utf-8")
    result = runner.invoke(app, ["casemix", "report", "--input", str(cases_csv), "--rw-table", str(table)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "line 2 (drg FM19): mean_cost must be a positive number" in output


def test_the_template_is_written_once(tmp_path: Path) -> None:
    out = tmp_path / "rw.csv"
    assert runner.invoke(app, ["casemix", "rw-template", "-o", str(out)]).exit_code == 0
    assert weights_source(read_weights(out)) == "insurer table"
    again = runner.invoke(app, ["casemix", "rw-template", "-o", str(out)])
    assert again.exit_code == 2 and "not overwritten" in again.output


def test_bad_payment_rules_exit_with_the_field_named(cases_csv: Path, tmp_path: Path) -> None:
    rules = tmp_path / "city.toml"
    rules.write_text('name = "x"\nmethod = "rate"\n[[outliers.bands]]\nhigh_multiple = 0\nlow_multiple = 0\n')
    result = runner.invoke(app, ["casemix", "report", "--input", str(cases_csv), "--payment", str(rules)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "invalid payment rules" in output and "outliers.bands.0.high_multiple" in output
    assert "Traceback" not in output


def test_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["casemix", "weights", "--input", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "no such file" in " ".join(result.output.split())


def test_report_reads_the_store(cases_csv: Path, tmp_path: Path) -> None:
    cases = pd.read_csv(cases_csv, parse_dates=["admission_date", "discharge_date"])
    valid = cases["sex"].isin([1, 2]) & cases["age_years"].notna() & cases["diagnoses"].notna()
    cases = cases[valid].reset_index(drop=True)
    for codes, principal, others in [
        ("diagnoses", "principal_diagnosis", "other_diagnoses"),
        ("procedures", "principal_procedure", "other_procedures"),
    ]:
        split = cases.pop(codes).str.split("|", n=1, expand=True).reindex(columns=[0, 1])
        cases[principal], cases[others] = split[0], split[1]
    for field in FIELDS:
        if field.name not in cases.columns:
            cases[field.name] = _filler(field, cases)
    cases = canonical_frame(cases)
    store.write_cases(cases, tmp_path / "store")
    out = tmp_path / "report.csv"
    args = ["casemix", "report", "--store", str(tmp_path / "store"), "--by", "hospital", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out)
    assert report["cases"].sum() == len(cases) > 100
    assert report["grouping_rate"].min() > 0.5


def _filler(field, cases: pd.DataFrame) -> object:
    """A plausible value for a contract column the reference cases lack."""
    if not field.required:
        return None
    if field.kind == "int":
        return field.allowed[0] if field.allowed else 0
    if field.kind == "date":
        return cases["admission_date"]
    return cases["principal_diagnosis"] if field.name == "admission_diagnosis" else "x"


def test_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["casemix", "weights", "--store", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no case store" in " ".join(result.output.split())
