"""Fixtures for the casemix tests: the CHS-DRG 1.1 tables, one grouper, the reference cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from casemix.grouper import Grouper, GroupResult
from casemix.tables import CasemixTables, load_tables

REFERENCE_CASES = Path(__file__).parents[1] / "data" / "chs_drg_11_test_cases.tsv"


@pytest.fixture(scope="session")
def tables() -> CasemixTables:
    return load_tables()


@pytest.fixture(scope="session")
def grouper(tables: CasemixTables) -> Grouper:
    return Grouper(tables)


@pytest.fixture(scope="session")
def reference_cases() -> pd.DataFrame:
    """The 5,000 reference cases exactly as written (every column text, empty cells as '')."""
    return pd.read_csv(REFERENCE_CASES, sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def group_reference_case(grouper: Grouper) -> Callable[[Any], GroupResult]:
    """A reference case (a row of ``reference_cases.itertuples()``) through ``group_case``, trace and all."""

    def group(case: Any) -> GroupResult:
        return grouper.group_case(
            sex=case.sex,
            age_years=case.age_years,
            age_days=case.age_days,
            birth_weight_g=case.birth_weight_g,
            diagnoses=case.diagnoses,
            procedures=case.procedures,
        )

    return group
