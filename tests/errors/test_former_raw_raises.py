"""Checks that used to raise a bare ValueError or OSError now raise the hierarchy's kind, so the command
line (exit 2, one message) and the service (its HTTP status, never a 500) answer them the same way."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from contract.errors import CaselensError, ConfigError, InputError, NotFound, exit_code
from serving.errors import status_code


def _bad_toml(tmp: Path) -> Path:
    path = tmp / "rules.toml"
    path.write_text("name = [unclosed", encoding="utf-8")
    return path


def _select_bogus_period(tmp: Path) -> None:
    from models.review_queue import select_cases

    select_cases(pd.DataFrame({"discharge_date": pd.to_datetime(["2025-01-05"])}), "bogus")


def _price_without_columns(tmp: Path) -> None:
    from casemix.payment import PaymentRules, price_cases

    price_cases(pd.DataFrame({"drg": ["FR21"]}), PaymentRules.load(), pd.DataFrame({"rw": [1.0]}))


def _forecast_without_columns(tmp: Path) -> None:
    from models.forecast.panel import check_cases

    check_cases(pd.DataFrame({"department": ["心内科"]}))


def _labels_without_columns(tmp: Path) -> None:
    from models.readmission.labels import readmission_labels

    readmission_labels(pd.DataFrame({"patient_id": ["p1"]}))


def _rules_file_absent(tmp: Path) -> None:
    from casemix.payment import PaymentRules

    PaymentRules.load(tmp / "absent.toml")


def _rules_file_not_toml(tmp: Path) -> None:
    from casemix.payment import PaymentRules

    PaymentRules.load(_bad_toml(tmp))


def _rw_table_absent(tmp: Path) -> None:
    from casemix.rw_table import read_weights

    read_weights(tmp / "absent.csv")


def _features_of_no_stage(tmp: Path) -> None:
    from features.pipeline import CaseFeatures

    CaseFeatures("at_birth").catalog  # noqa: B018 - reading it runs the check


def _negative_base_rate(tmp: Path) -> None:
    from models.forecast.schedule import RateSchedule

    RateSchedule((date(2025, 1, 1),), (-1.0,))


def _docs_absent(tmp: Path) -> None:
    from features.docs import write_docs

    write_docs(tmp / "absent.md")


@pytest.mark.parametrize(
    ("call", "kind", "status", "message"),
    [
        (_select_bogus_period, InputError, 422, "'bogus' is not a period"),
        (_price_without_columns, InputError, 422, "cannot price cases: missing columns"),
        (_forecast_without_columns, InputError, 422, "forecast input lacks column(s)"),
        (_labels_without_columns, InputError, 422, "readmission labels need column(s)"),
        (_rules_file_absent, ConfigError, 503, "absent.toml: no such payment rules file"),
        (_rules_file_not_toml, ConfigError, 503, "rules.toml: not valid TOML"),
        (_rw_table_absent, ConfigError, 503, "absent.csv: no such RW table"),
        (_features_of_no_stage, ConfigError, 503, "stage must be 'admission' or 'discharge'"),
        (_negative_base_rate, ConfigError, 503, "base rates must be positive"),
        (_docs_absent, NotFound, 404, "absent.md: no such document"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_former_raw_raise_is_a_kind_of_the_hierarchy_with_its_exit_code_and_status(
    call: Callable[[Path], None], kind: type[CaselensError], status: int, message: str, tmp_path: Path
) -> None:
    with pytest.raises(kind, match=re.escape(message)) as caught:
        call(tmp_path)
    assert exit_code(caught.value) == 2
    assert status_code(caught.value) == status


def test_the_command_line_shows_a_former_raw_raise_as_one_message(settings, tmp_path: Path) -> None:
    from cli.app import app

    cases = tmp_path / "cases.csv"
    cases.write_text("case_id,principal_diagnosis,sex,age_years\nc1,I21.0,1,70\n", encoding="utf-8")
    args = ["group", str(cases), "-o", str(tmp_path / "out.csv"), "--payment", str(_bad_toml(tmp_path))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "rules.toml: not valid TOML" in " ".join(result.output.split()) and result.exception is not None
