"""Samples for the steps that run in one process: whole patients, seeded, and said out loud."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from contract.errors import InputError
from pipelines import store
from pipelines.sample import sample_by_patient


def test_sample_keeps_whole_patients(toy_store: Path, toy_cases: pd.DataFrame) -> None:
    sample = sample_by_patient(800, toy_store, seed=3)
    assert 700 < sample.stays <= 800 and sample.store_stays == len(toy_cases)
    per_patient = toy_cases["patient_id"].value_counts()
    drawn = sample.cases["patient_id"].value_counts()
    pd.testing.assert_series_equal(drawn, per_patient[drawn.index], check_names=False)
    assert sample.patients == len(drawn)
    assert f"{sample.stays:,} of 2,400 stays" in sample.describe()
    again = sample_by_patient(800, toy_store, seed=3)
    assert again.cases["case_id"].tolist() == sample.cases["case_id"].tolist()
    assert (
        sample_by_patient(800, toy_store, seed=4).cases["case_id"].tolist() != again.cases["case_id"].tolist()
    )


def test_a_store_within_the_limit_is_read_whole(toy_store: Path) -> None:
    sample = sample_by_patient(10_000, toy_store)
    assert sample.stays == 2_400 and "no sample needed" in sample.describe()
    with pytest.raises(InputError):
        sample_by_patient(0, toy_store)


@pytest.mark.slow
def test_train_says_what_it_sampled(toy_cases: pd.DataFrame, settings) -> None:
    store.write_cases(toy_cases, settings.store_dir)
    result = CliRunner().invoke(app, ["train", "cost", "--sample-stays", "1200"])
    assert result.exit_code == 0, result.output
    assert "training on a sample: " in result.output and "of 2,400 stays" in " ".join(result.output.split())
