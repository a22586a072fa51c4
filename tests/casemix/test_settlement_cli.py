"""``caselens casemix settlement`` end to end on a small cases file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.casemix.test_payment_cli import _data_in_tmp, cases_csv  # noqa: F401 (fixtures)

runner = CliRunner()


@pytest.fixture
def insured_csv(cases_csv: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The 300 cases at 10,000 each, one in ten self-paying (payer 7), the rest employees."""
    frame = pd.read_csv(cases_csv)
    frame["insurance_type"] = [7 if i % 10 == 0 else 1 for i in range(len(frame))]
    frame["hospital_id"] = "H1"
    path = tmp_path / "insured.csv"
    frame.to_csv(path, index=False)
    return path


def test_settlement_writes_the_hospital_year_and_its_months(insured_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "settlement.csv"
    args = ["casemix", "settlement", "--input", str(insured_csv), "--quality-score", "H1=90", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    year = pd.read_csv(out)
    months = pd.read_csv(tmp_path / "out" / "settlement-months.csv")
    assert year["cases"].sum() == 300
    assert year["insured_cases"].sum() == 270  # the 30 self-paying cases are priced at charges
    assert year["charges"].sum() == pytest.approx(270 * 10000.0)
    assert (year["balance"] == year["drg_due"] - year["charges"]).all()
    assert year["prepaid"].sum() == pytest.approx(0.9 * months["fund_provisional"].sum())
    assert (year["prepaid"] + year["cleared"]).to_numpy() == pytest.approx(year["fund_final"].to_numpy())
    # Score 90: a tenth of the 5% quality reserve is kept by the insurer.
    assert year["quality_returned"].to_numpy() == pytest.approx(0.9 * year["quality_withheld"].to_numpy())
    assert "差额率" in result.output and "cleared" in result.output


def test_settlement_without_payers_is_a_clear_error(cases_csv: Path) -> None:  # noqa: F811
    result = runner.invoke(app, ["casemix", "settlement", "--input", str(cases_csv)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "fund_payment is missing" in output and "Traceback" not in output


def test_a_bad_quality_score_is_a_clear_error(insured_csv: Path) -> None:
    result = runner.invoke(
        app, ["casemix", "settlement", "--input", str(insured_csv), "--quality-score", "H1"]
    )
    assert result.exit_code == 2 and "HOSPITAL=SCORE" in " ".join(result.output.split())
