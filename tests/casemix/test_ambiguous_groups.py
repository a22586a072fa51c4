"""歧义组 (QY): a case whose OR procedure fits none of its MDC's procedure ADRGs, on hand-built cases.

Acute MI (I21.001, MDCF, medical ADRG FR1) with a hip resurfacing (00.8500x001, an OR procedure of
MDCI) fits no cardiac procedure ADRG: the CHS-DRG 1.1 reference puts it in FR19 (QY off); with QY on
it is FQY. An ECG (89.5200) is no OR procedure, so the same diagnosis with it stays FR19. A
complication of a cardiac procedure (I97.101, MDCF) with a deep cervical lymph-node excision
(40.2100) matches no ADRG of any MDC: 0000 off, FQY on. The reference file's 100% agreement with QY
off is tests/casemix/test_grouper_reference.py.
"""

from __future__ import annotations

import pandas as pd
import pytest

from casemix.grouper import Grouper
from casemix.payment import PaymentRules, price_cases
from casemix.tables import load_tables

TABLES = load_tables()
MI, HIP, ECG = "I21.001", "00.8500x001", "89.5200"
CARDIAC_COMPLICATION, LYMPH_NODES = "I97.101", "40.2100"


def group(ambiguous: bool, diagnoses: list[str], procedures: list[str]):
    return Grouper(TABLES, ambiguous_groups=ambiguous).group_case(
        sex=2, age_years=55, diagnoses=diagnoses, procedures=procedures
    )


def test_the_codes_are_what_the_cases_need() -> None:
    assert HIP in TABLES.or_procedures and LYMPH_NODES in TABLES.or_procedures
    assert ECG not in TABLES.or_procedures


@pytest.mark.parametrize(
    ("diagnoses", "procedures", "off", "on"),
    [
        ([MI], [HIP], "FR19", "FQY"),  # a medical ADRG would take it: its OR procedure makes it QY
        ([MI], [], "FR19", "FR19"),  # no procedure
        ([MI], [ECG], "FR19", "FR19"),  # no OR procedure
        ([CARDIAC_COMPLICATION], [LYMPH_NODES], "0000", "FQY"),  # instead of ungroupable
        ([CARDIAC_COMPLICATION], [], "0000", "0000"),  # ungroupable without an OR procedure
    ],
)
def test_ambiguous_groups_only_when_switched_on(diagnoses, procedures, off, on) -> None:
    assert group(False, diagnoses, procedures).drg == off
    found = group(True, diagnoses, procedures)
    assert found.drg == on
    if on == "FQY":
        assert (found.status, found.mdc, found.adrg) == ("grouped", "MDCF", "FQY")
        assert found.drg_name == "MDCF 歧义组"
        assert any("歧义组" in line for line in found.trace)


def test_a_batch_groups_as_one_case_at_a_time() -> None:
    frame = pd.DataFrame(
        {
            "sex": [2, 2, 2],
            "age_years": [55, 55, 55],
            "diagnoses": [MI, MI, CARDIAC_COMPLICATION],
            "procedures": [HIP, ECG, LYMPH_NODES],
        }
    )
    grouped = Grouper(TABLES, ambiguous_groups=True).group_frame(frame)
    assert grouped["drg"].tolist() == ["FQY", "FR19", "FQY"]
    assert grouped["status"].tolist() == ["grouped"] * 3


def test_the_payment_rules_switch_it_and_pay_it_at_the_discount() -> None:
    """The default rules ask for QY ([grouping] ambiguous_groups = true) and pay it by item at 0.8: the
    MI with a hip resurfacing costing ¥30,000 is paid ¥24,000 instead of FR19's standard."""
    rules = PaymentRules.load()
    assert Grouper.for_rules(rules, TABLES).ambiguous_groups
    plain = rules.model_copy(
        update={"grouping": rules.grouping.model_copy(update={"ambiguous_groups": False})}
    )
    assert not Grouper.for_rules(plain, TABLES).ambiguous_groups
    cases = pd.DataFrame(
        {
            "sex": [2],
            "age_years": [55],
            "diagnoses": [MI],
            "procedures": [HIP],
            "department": ["心内科"],
            "discharge_date": [pd.Timestamp("2024-06-01")],
            "los_days": [8],
            "total_cost": [30000.0],
            "insurance_type": [1],
        }
    )
    grouped = cases.join(Grouper.for_rules(rules, TABLES).group_frame(cases))
    weights = pd.DataFrame(
        {"rw": [1.0], "mean_cost": [10000.0], "mean_los": [6.0]}, index=pd.Index(["FR19"], name="drg")
    )
    (row,) = price_cases(grouped, rules, weights).itertuples()
    assert (row.drg, row.payment_method, row.by_item_reason) == ("FQY", "by_item", "ambiguous")
    assert row.drg_payment == pytest.approx(24000.0)
