"""``PRICING_INPUT_COLUMNS`` is every column pricing reads: `caselens group` sends only those (and the
grouper's) through pandas, so a rule reading another column would be priced without it, silently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from casemix.engine import GROUPER_INPUT_COLUMNS, CasemixEngine
from casemix.payment import DEFAULT_RULES, POINT_CITY_RULES, PRICING_INPUT_COLUMNS, PaymentRules
from pipelines.demo import generate_demo


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return generate_demo(1200, 2, 5).cases


@pytest.mark.parametrize("rules_file", [DEFAULT_RULES, POINT_CITY_RULES], ids=lambda p: Path(p).stem)
def test_pricing_reads_only_the_declared_columns(cases: pd.DataFrame, rules_file: Path) -> None:
    engine = CasemixEngine(rules=PaymentRules.load(rules_file), remember=False)
    whole = engine.grouped(cases)
    weights = engine.weights(whole)
    declared = [c for c in (*GROUPER_INPUT_COLUMNS, *PRICING_INPUT_COLUMNS) if c in cases.columns]
    narrow = engine.grouped(cases[declared])
    assert len(declared) < len(cases.columns)  # the narrow frame really leaves columns out
    priced_whole = engine.price(whole, weights)
    priced_narrow = engine.price(narrow, weights)
    changed = [
        c
        for c in priced_narrow.columns
        if not priced_narrow[c].equals(priced_whole[c].astype(priced_narrow[c].dtype))
    ]
    assert not changed, f"pricing under {Path(rules_file).name} reads undeclared columns: {changed}"
