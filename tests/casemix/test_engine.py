"""The casemix engine: one grouper per table set and grouping option, a case grouped once, and weights
and prices exactly as the payment module computes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest

from casemix import engine as engine_module
from casemix.engine import CasemixEngine, forget_groupings
from casemix.grouper import Grouper
from casemix.payment import POINT_CITY_RULES, BaseRate, PaymentRules, drg_cost, price_cases
from casemix.rw_table import read_weights
from casemix.tables import CasemixTables
from casemix.weights import calibrate_weights
from contract.errors import ConfigError

ROWS = 600  # above MEMO_MIN_ROWS: batches this size go through the memo


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of every batch the grouper is asked to group, from a memo emptied for the test."""
    sizes: list[int] = []
    group_frame = Grouper.group_frame

    def counted(self: Grouper, cases: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        sizes.append(len(cases))
        return group_frame(self, cases, **kwargs)

    forget_groupings()
    monkeypatch.setattr(Grouper, "group_frame", counted)
    yield sizes
    forget_groupings()


@pytest.fixture(scope="module")
def cases(reference_cases: pd.DataFrame) -> pd.DataFrame:
    """Reference cases in canonical columns, indexed unlike 0..n-1 (answers must follow the index)."""
    first = reference_cases.head(ROWS)
    diagnoses = first["diagnoses"].str.split("|", n=1, expand=True).reindex(columns=[0, 1])
    procedures = first["procedures"].str.split("|", n=1, expand=True).reindex(columns=[0, 1])
    frame = pd.DataFrame(
        {
            "sex": pd.to_numeric(first["sex"], errors="coerce"),
            "age_years": pd.to_numeric(first["age_years"], errors="coerce"),
            "age_days": pd.to_numeric(first["age_days"], errors="coerce"),
            "birth_weight_g": pd.to_numeric(first["birth_weight_g"], errors="coerce"),
            "principal_diagnosis": diagnoses[0].replace("", None),
            "other_diagnoses": diagnoses[1],
            "principal_procedure": procedures[0].replace("", None),
            "other_procedures": procedures[1],
        }
    )
    return frame.set_axis(np.arange(ROWS) * 3 + 100)


@pytest.fixture(scope="module")
def rules() -> PaymentRules:
    return PaymentRules.load()


def without_rw_table(rules: PaymentRules, **calibration: object) -> PaymentRules:
    update = {"rw_table": None, **calibration}
    return rules.model_copy(update={"calibration": rules.calibration.model_copy(update=update)})


def test_groups_as_the_rules_say_and_as_the_reference_without_rules(cases, rules, tables, calls) -> None:
    priced_by_rules = CasemixEngine(tables, rules).group(cases)
    pd.testing.assert_frame_equal(priced_by_rules, Grouper.for_rules(rules, tables).group_frame(cases))
    assert priced_by_rules["drg"].str.endswith("QY").any()  # the default rules' 歧义组 is on
    reference = CasemixEngine(tables).group(cases)
    pd.testing.assert_frame_equal(reference, Grouper(tables).group_frame(cases))
    assert not reference["drg"].str.endswith("QY").any()


def test_engines_over_the_same_tables_and_grouping_share_one_grouper(tables, rules) -> None:
    one, other = CasemixEngine(tables, rules), CasemixEngine.from_settings()
    assert one.grouper is other.grouper
    assert one.grouper.ambiguous_groups
    assert CasemixEngine(tables).grouper is not one.grouper  # the reference grouping is another grouper
    reference_rules = rules.model_copy(
        update={"grouping": rules.grouping.model_copy(update={"ambiguous_groups": False})}
    )
    assert CasemixEngine(tables, reference_rules).grouper is CasemixEngine(tables).grouper


def test_a_case_is_grouped_once_however_the_frame_is_cut(cases, tables, rules, calls) -> None:
    engine = CasemixEngine(tables, rules)
    first = engine.group(cases)
    assert calls == [ROWS]
    again = CasemixEngine.from_settings().group(cases)  # another engine of the run: same memo
    later = engine.group(cases.iloc[::-1].iloc[: ROWS // 2])  # a split of the same cases, reordered
    assert calls == [ROWS]
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(later, first.loc[later.index])


def test_only_new_or_changed_cases_reach_the_grouper(cases, tables, rules, calls) -> None:
    engine = CasemixEngine(tables, rules)
    engine.group(cases.iloc[:400])
    changed = cases.copy()
    changed.loc[changed.index[0], "age_years"] = 121  # a changed case is regrouped
    found = engine.group(changed)
    assert calls == [400, ROWS - 400 + 1]
    pd.testing.assert_frame_equal(found, Grouper.for_rules(rules, tables).group_frame(changed))


def test_identical_cases_in_a_batch_are_grouped_once(cases, tables, rules, calls) -> None:
    doubled = pd.concat([cases, cases], ignore_index=True)
    found = CasemixEngine(tables, rules).group(doubled)
    assert calls == [ROWS]
    pd.testing.assert_frame_equal(found, Grouper.for_rules(rules, tables).group_frame(doubled))


def test_small_batches_are_looked_up_but_not_remembered(cases, tables, rules, calls) -> None:
    engine = CasemixEngine(tables, rules)
    engine.group(cases.head(10))  # nothing remembered yet: grouped as it comes
    engine.group(cases)
    assert calls == [10, ROWS]
    small = cases.head(10).copy()
    small.loc[small.index[3], "age_years"] = 121  # no other case is that old
    expected = Grouper.for_rules(rules, tables).group_frame(small)
    calls.clear()
    pd.testing.assert_frame_equal(engine.group(small), expected)
    pd.testing.assert_frame_equal(engine.group(small), expected)
    assert calls == [1, 1]  # the changed case only, and not remembered


def test_a_one_pass_engine_groups_without_the_memo(cases, tables, rules, calls) -> None:
    one_pass = CasemixEngine(tables, rules, remember=False)
    one_pass.group(cases)
    one_pass.group(cases)
    assert calls == [ROWS, ROWS]


def test_a_full_memo_starts_again_and_still_answers_right(cases, tables, rules, calls, monkeypatch) -> None:
    monkeypatch.setattr(engine_module, "MEMO_ROWS", 500)
    expected = Grouper.for_rules(rules, tables).group_frame(cases)
    engine = CasemixEngine(tables, rules)
    engine.group(cases.iloc[:300])
    found = engine.group(cases)  # 300 remembered + 300 new > 500: only this batch's answers are kept
    engine.group(cases)
    assert calls == [ROWS, 300, 300]  # (the first: the expected answers)
    pd.testing.assert_frame_equal(found, expected)


def test_grouped_replaces_the_grouper_columns_a_frame_had(cases, tables, rules) -> None:
    stale = cases.assign(drg="XX99", status="stale", department="内科")
    grouped = CasemixEngine(tables, rules).grouped(stale)
    assert list(grouped.columns[: len(stale.columns) - 2]) == [
        c for c in stale.columns if c not in ("drg", "status")
    ]
    pd.testing.assert_series_equal(grouped["drg"], CasemixEngine(tables, rules).group(cases)["drg"])


def test_weights_are_the_rules_table_read_once(demo_hospital, rules, tables, monkeypatch) -> None:
    engine = CasemixEngine(tables, rules)
    grouped = engine.grouped(demo_hospital.cases)
    table = engine.weights(grouped)
    pd.testing.assert_frame_equal(table, read_weights(rules.calibration.rw_table))
    monkeypatch.setattr(engine_module, "read_weights", lambda path: pytest.fail("read twice"))
    assert engine.weights() is table  # no history needed for an insurer's table
    assert engine.rw_table == rules.calibration.rw_table


def test_without_a_table_weights_are_calibrated_on_the_history(demo_hospital, rules, tables) -> None:
    own = without_rw_table(rules)
    engine = CasemixEngine(tables, own)
    grouped = engine.grouped(demo_hospital.cases)
    table = engine.weights(grouped)
    expected = calibrate_weights(grouped, own.calibration, cost=drg_cost(grouped, own))
    pd.testing.assert_frame_equal(table.drop(columns="name"), expected.drop(columns="name"))
    assert table["name"].tolist() == [tables.drg_name(drg) for drg in table.index]
    assert engine.rw_table is None
    with pytest.raises(ConfigError, match="no RW table"):
        engine.weights()


def test_a_table_given_wins_and_by_item_rules_drop_its_unstable_groups(demo_hospital, rules, tables) -> None:
    table = read_weights(rules.calibration.rw_table)
    flagged = table.assign(stable=pd.array([i % 2 == 0 for i in range(len(table))], dtype="boolean"))
    assert CasemixEngine(tables, rules, flagged).weights() is flagged
    by_item = CasemixEngine(tables, without_rw_table(rules, unstable="by_item"), flagged).weights()
    assert by_item.index.tolist() == flagged.index[flagged["stable"]].tolist()


def test_price_is_price_cases_with_the_engine_rules_and_weights(demo_hospital, rules, tables) -> None:
    engine = CasemixEngine(tables, rules)
    grouped = engine.grouped(demo_hospital.cases)
    weights = engine.weights(grouped)
    pd.testing.assert_frame_equal(engine.price(grouped), price_cases(grouped, rules, weights))


@pytest.mark.parametrize("rules_file", [None, POINT_CITY_RULES], ids=["rate", "point"])
def test_at_rate_is_price_with_one_base_rate(demo_hospital, tables, rules_file) -> None:
    rules = PaymentRules.load(rules_file)
    engine = CasemixEngine(tables, rules)
    grouped = engine.grouped(demo_hospital.cases)
    weights = engine.weights(grouped)
    one_rate = rules.model_copy(
        update={"method": "rate", "base_rates": [BaseRate(effective_from=date.min, yuan=12_345.0)]}
    )
    at_rate = engine.at_rate(grouped, 12_345.0, weights)
    pd.testing.assert_frame_equal(at_rate, CasemixEngine(tables, one_rate).price(grouped, weights))
    by_drg = at_rate["payment_method"].eq("rate").to_numpy()
    assert by_drg.any()
    assert at_rate.loc[by_drg, "base_rate"].eq(12_345.0).all()
    assert not np.allclose(at_rate["drg_payment"], engine.price(grouped, weights)["drg_payment"])


def test_a_grouping_only_engine_refuses_to_price(cases, tables: CasemixTables) -> None:
    engine = CasemixEngine(tables)
    with pytest.raises(ConfigError, match="give it payment rules"):
        engine.price(engine.grouped(cases))
    with pytest.raises(ConfigError, match="give it payment rules"):
        engine.weights()
