"""`caselens watch`: the stays in hospital at the end of a day, ranked, with warning levels, as CSV."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from casemix.payment import Overrun, PaymentRules
from cli.app import app
from contract.errors import ConfigError
from models.tasks import get_task
from models.watch_list import WATCH_COLUMNS, WarningPolicy
from pipelines.instay import instay_data
from pipelines.store import write_cases, write_table
from pipelines.training.run import train
from pipelines.watch import LATEST


def test_levels_follow_the_hospitals_thresholds() -> None:
    policy = WarningPolicy()
    ratio = np.array([0.5, 0.9, 1.1, 0.5, 0.5, np.nan, np.nan])
    predicted = np.array([0.8, 0.95, 1.0, 1.2, 0.8, np.nan, np.nan])
    probability = np.array([0.1, 0.1, 0.1, 0.1, 0.6, 0.6, 0.1])
    assert policy.levels(ratio, predicted, probability).tolist() == [
        "none",
        "watch",
        "overrun",
        "overrun",
        "watch",
        "watch",
        "none",
    ]
    strict = WarningPolicy(watch_ratio=0.8, overrun_ratio=1.0, watch_probability=0.9)
    expected = ["none", "watch", "overrun", "overrun", "none"]
    assert strict.levels(ratio, predicted, probability).tolist()[:5] == expected
    with pytest.raises(ConfigError, match="watch ratio"):
        WarningPolicy(watch_ratio=1.2, overrun_ratio=1.1)


def test_default_thresholds_are_the_payment_rules() -> None:
    rules = PaymentRules.load()
    assert WarningPolicy.from_rules(rules) == WarningPolicy(0.9, 1.1, 0.5)
    city = rules.model_copy(update={"overrun": Overrun(watch=0.85, threshold=1.2)})
    assert WarningPolicy.from_rules(city, 0.7) == WarningPolicy(0.85, 1.2, 0.7)
    with pytest.raises(ValueError, match=r"overrun\.watch"):
        Overrun(watch=1.3, threshold=1.2)


@pytest.mark.slow
def test_watch_lists_every_stay_in_hospital_on_the_day(demo_hospital, config, tracking, tmp_path) -> None:
    hospital = demo_hospital
    write_cases(hospital.cases)
    write_table("charges", hospital.charges)
    write_table("inpatients", hospital.inpatients)
    task = get_task("instay")
    train(
        task,
        instay_data(task, hospital.cases, hospital.inpatients, hospital.charges, tracking),
        config,
        tracking,
    )

    last = hospital.cases["discharge_date"].max()
    out = tmp_path / "watch.csv"
    result = CliRunner().invoke(app, ["watch", "--as-of", f"{last:%Y-%m-%d}", "-o", str(out)])
    assert result.exit_code == 0, result.output
    found = pd.read_csv(out, encoding="utf-8-sig")
    assert list(found.columns) == list(WATCH_COLUMNS)
    assert set(found["case_id"]) == set(hospital.in_hospital["case_id"])
    assert found["rank"].tolist() == list(range(1, len(found) + 1))
    assert found["expected_overrun"].is_monotonic_decreasing
    ratio = found["cost_to_date"] / found["payment_standard"]
    np.testing.assert_allclose(found["ratio_to_date"], ratio, atol=1e-4)
    assert (found.loc[ratio >= 1.1, "warning_level"] == "overrun").all()
    assert (found.loc[(ratio >= 0.9) & (ratio < 1.1), "warning_level"] != "none").all()
    calm = (ratio < 0.9) & (found["overrun_probability"] < 0.5)
    calm &= found["predicted_final_cost"] < 1.1 * found["payment_standard"]
    assert (found.loc[calm, "warning_level"] == "none").all()
    assert found["top_reasons"].str.len().gt(0).all()
    latest = json.loads((tracking.data_dir / "reports" / LATEST).read_text(encoding="utf-8"))
    assert latest["file"] == str(out.resolve()) and latest["as_of"] == f"{last:%Y-%m-%d}"
    assert latest["stays"] == len(found) and latest["department"] is None

    department = found["department"].iloc[0]
    one = tmp_path / "one.csv"
    args = ["watch", "--as-of", f"{last:%Y-%m-%d}", "--department", department, "-o", str(one)]
    assert CliRunner().invoke(app, [*args, "--watch-probability", "0"]).exit_code == 0
    mine = pd.read_csv(one, encoding="utf-8-sig")
    assert set(mine["department"]) == {department} and (mine["warning_level"] != "none").all()
    wrong = CliRunner().invoke(app, ["watch", "--as-of", f"{last:%Y-%m-%d}", "--department", "nowhere"])
    assert wrong.exit_code == 2 and "nowhere" in wrong.output
