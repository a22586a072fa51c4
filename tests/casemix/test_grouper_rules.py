"""Handmade cases over the real CHS-DRG 1.1 tables: each rule kind, each split, validation, bad input.

Codes are picked from the tables by what they are (an ADRG's list, an MCC of another exclusion
table...), and each test asserts the pick before relying on it, so a table change fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from casemix.grouper import Grouper, GroupResult
from casemix.tables import CasemixTables

ADULT = {"sex": 1, "age_years": 60, "age_days": 21915}
# A medical ADRG entered by principal diagnosis only, split mcc / mcc_or_cc / none.
MEDICAL_ADRG, MEDICAL_PRINCIPAL = "ER3", "J68.101"


def group(grouper: Grouper, **case: object) -> GroupResult:
    return grouper.group_case(**{**ADULT, **case})


def first(codes: object) -> str:
    return sorted(codes)[0]


def complication(tables: CasemixTables, kind: str, principal: str, *, excluded: bool) -> str:
    """An MCC or CC code whose exclusion table does (or does not) equal the principal's."""
    listed = tables.mcc if kind == "mcc" else tables.cc
    own = tables.principal_exclusions[principal]
    return next(code for code, table in sorted(listed.items()) if (table == own) == excluded)


def newborn(weight: object, days: int = 3) -> dict[str, object]:
    return {"sex": 2, "age_years": 0, "age_days": days, "birth_weight_g": weight}


def test_principal_diagnosis_in_enters_mdc_and_adrg(grouper: Grouper, tables: CasemixTables) -> None:
    assert MEDICAL_PRINCIPAL in tables.mdcs["MDCE"].lists["diagnoses"]
    result = group(grouper, diagnoses=[MEDICAL_PRINCIPAL])
    assert (result.status, result.mdc, result.adrg, result.drg) == ("grouped", "MDCE", "ER3", "ER35")
    assert any(
        line.startswith("MDCE entered: principal diagnosis J68.101 化学性肺水肿") for line in result.trace
    )


@pytest.mark.parametrize(
    ("kind", "expected_drg", "counts"),
    [("mcc", "ER31", (1, 0)), ("cc", "ER33", (0, 1))],
)
def test_splits_mcc_and_mcc_or_cc(
    grouper: Grouper, tables: CasemixTables, kind, expected_drg, counts
) -> None:
    secondary = complication(tables, kind, MEDICAL_PRINCIPAL, excluded=False)
    result = group(grouper, diagnoses=[MEDICAL_PRINCIPAL, secondary])
    assert result.drg == expected_drg
    assert (result.mcc_count, result.cc_count) == counts
    label = "an MCC" if kind == "mcc" else "a CC"
    assert any(f"secondary {secondary} " in line and line.endswith(label) for line in result.trace)


def test_split_none_when_no_complication(grouper: Grouper) -> None:
    result = group(grouper, diagnoses=[MEDICAL_PRINCIPAL, "Z99.999-not-a-code"])
    assert result.drg == "ER35"
    assert any("ER31" in line and "not chosen" in line for line in result.trace)


def test_excluded_complication_does_not_count(grouper: Grouper, tables: CasemixTables) -> None:
    principal = next(
        p
        for p in sorted(tables.adrgs[MEDICAL_ADRG].lists["diagnoses"])
        if tables.principal_exclusions.get(p) in set(tables.mcc.values())
    )
    excluded = complication(tables, "mcc", principal, excluded=True)
    assert not tables.is_mcc(excluded, principal) and tables.is_mcc(excluded, None)
    result = group(grouper, diagnoses=[principal, excluded])
    assert (result.drg, result.mcc_count) == ("ER35", 0)
    assert any("excluded by the principal diagnosis's exclusion table" in line for line in result.trace)


def test_single_diagnosis_has_no_secondary(grouper: Grouper, tables: CasemixTables) -> None:
    mcc = complication(tables, "mcc", MEDICAL_PRINCIPAL, excluded=False)
    assert group(grouper, diagnoses=[mcc]).mcc_count == 0


def test_principal_procedure_in_and_or_procedure_enter_pre_mdc(
    grouper: Grouper, tables: CasemixTables
) -> None:
    assert tables.adrgs["AA1"].lists["procedures"] == ("37.5100",) and "37.5100" in tables.or_procedures
    result = group(grouper, diagnoses=[MEDICAL_PRINCIPAL], procedures=["37.5100"])
    assert (result.mdc, result.adrg, result.drg) == ("MDCA", "AA1", "AA19")
    assert result.drg_name == tables.drg_name("AA19") == "心脏移植"
    # as a secondary procedure it no longer counts: principal_procedure_in looks at the first only
    moved = group(grouper, diagnoses=[MEDICAL_PRINCIPAL], procedures=["89.5200", "37.5100"])
    assert moved.adrg != "AA1"


def test_any_procedure_in_needs_both_lists(grouper: Grouper, tables: CasemixTables) -> None:
    lists = tables.adrgs["AC1"].lists
    one, two = lists["procedures"][0], lists["procedures_2"][0]
    assert group(grouper, diagnoses=[MEDICAL_PRINCIPAL], procedures=[two, one]).adrg == "AC1"
    assert group(grouper, diagnoses=[MEDICAL_PRINCIPAL], procedures=[one]).adrg != "AC1"


def test_any_diagnosis_in_with_or_procedure(grouper: Grouper, tables: CasemixTables) -> None:
    hiv = first(tables.adrgs["YC1"].lists["diagnoses"])
    assert hiv in tables.mdcs["MDCY"].lists["diagnoses"]
    surgery = next(
        p
        for p in sorted(tables.or_procedures)
        if group(grouper, diagnoses=[hiv], procedures=[p]).adrg == "YC1"
    )
    result = group(grouper, diagnoses=[hiv], procedures=[surgery])
    assert result.mdc == "MDCY"
    assert any(line.startswith("ADRG YC1 matched: diagnosis") for line in result.trace)
    no_or = next(p for p in sorted(tables.procedures) if p not in tables.or_procedures)
    assert group(grouper, diagnoses=[hiv], procedures=[no_or]).adrg != "YC1"


def test_no_or_procedure_and_trauma_regions(grouper: Grouper, tables: CasemixTables) -> None:
    regions = tables.mdcs["MDCZ"].rule[1].groups
    head, chest = first(regions["头颈部创伤"]), first(regions["胸部创伤"])
    two_regions = group(grouper, diagnoses=[head, chest])
    assert (two_regions.mdc, two_regions.adrg) == ("MDCZ", "ZZ1")
    assert any("2 trauma regions (头颈部创伤、胸部创伤), ≥ 2" in line for line in two_regions.trace)
    assert group(grouper, diagnoses=[head]).mdc != "MDCZ"
    surgery = next(p for p in sorted(tables.or_procedures) if p not in tables.adrg_codes("ZB1").procedures)
    with_or = group(grouper, diagnoses=[head, chest], procedures=[surgery])
    assert with_or.adrg != "ZZ1"


def test_procedure_groups_any_of(grouper: Grouper, tables: CasemixTables) -> None:
    rule = tables.adrgs["JA1"].rule
    principal = first(tables.adrgs["JA1"].lists["diagnoses"])
    groups = rule[1].groups
    only_1 = sorted(groups["1"] - groups["2"] - groups["3"] - groups["4"])[0]
    only_2 = sorted(groups["2"] - groups["1"])[0]
    women = {"sex": 2, "age_years": 50}
    assert grouper.group_case(**women, diagnoses=[principal], procedures=[only_1, only_2]).adrg == "JA1"
    alone = grouper.group_case(**women, diagnoses=[principal], procedures=[only_1])
    assert alone.adrg != "JA1"
    assert any(line.startswith("ADRG JA1 not matched: procedure groups hit ['1']") for line in alone.trace)


def test_sex_and_age_years_enter_mdcs(grouper: Grouper, tables: CasemixTables) -> None:
    male_only = first(tables.mdcs["MDCM"].lists["diagnoses"])
    assert group(grouper, diagnoses=[male_only]).mdc == "MDCM"
    as_female = group(grouper, sex=2, diagnoses=[male_only])
    assert as_female.mdc != "MDCM"
    assert any(line.startswith("MDCM not entered: sex 2 (female) ≠ 1 (male)") for line in as_female.trace)
    neonatal = first(tables.adrgs["PU1"].lists["diagnoses"])
    assert grouper.group_case(**newborn(3000, days=10), diagnoses=[neonatal]).adrg == "PU1"
    assert grouper.group_case(sex=2, age_years=1, age_days=400, diagnoses=[neonatal]).mdc != "MDCP"


def test_age_days_at_most(grouper: Grouper, tables: CasemixTables) -> None:
    neonatal = first(tables.adrgs["PU1"].lists["diagnoses"])
    assert grouper.group_case(**newborn(3000, days=28), diagnoses=[neonatal]).adrg == "PU1"
    older = grouper.group_case(sex=2, age_years=0, age_days=29, diagnoses=[neonatal])
    assert older.adrg != "PU1"
    assert any("age 29 days is not ≤ 28" in line for line in older.trace)


@pytest.mark.parametrize(
    ("weight", "adrg"),
    [(900, "PS1"), (1499, "PS1"), (1500, "PS2"), (1999, "PS2"), (2000, "PS3"), (2499, "PS3"), (2500, "PS4")],
)
def test_newborn_birth_weight_bands(grouper: Grouper, tables: CasemixTables, weight: int, adrg: str) -> None:
    premature = first(tables.adrgs["PS1"].lists["diagnoses"])
    result = grouper.group_case(**newborn(weight), diagnoses=[premature])
    assert (result.mdc, result.adrg) == ("MDCP", adrg)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ({"sex": None}, "sex is missing"),
        ({"sex": 3}, "sex 3 is not 1 (male) or 2 (female)"),
        ({"sex": "m"}, "sex 'm' is not a number"),
        ({"age_years": None}, "age_years is missing"),
        ({"age_years": "abc"}, "age_years 'abc' is not a number"),
        ({"age_years": -1}, "age_years -1 is not a whole number of years ≥ 0"),
        ({"age_years": 0, "age_days": None}, "age_days is missing for a patient under one year"),
        (
            {"age_years": 0, "age_days": 3, "birth_weight_g": None},
            "birth_weight_g is missing for a newborn of 3 days",
        ),
        (
            {"age_years": 0, "age_days": 3, "birth_weight_g": "heavy"},
            "birth_weight_g 'heavy' is not a number",
        ),
        ({"diagnoses": []}, "no diagnosis"),
        ({"diagnoses": " | "}, "no diagnosis"),
    ],
)
def test_validation_reasons(grouper: Grouper, case: dict[str, object], reason: str) -> None:
    result = grouper.group_case(**{**ADULT, "diagnoses": [MEDICAL_PRINCIPAL], **case})
    assert (result.status, result.reason) == ("invalid", reason)
    assert (result.mdc, result.adrg, result.drg) == ("0000", "00", "0000")
    assert result.trace[-1] == f"invalid: {reason}"


def test_several_reasons_are_joined(grouper: Grouper) -> None:
    result = grouper.group_case(sex=None, age_years="x", diagnoses=[])
    assert result.reason == "sex is missing; age_years 'x' is not a number; no diagnosis"


def test_canonical_shape_checks(grouper: Grouper) -> None:
    frame = pd.DataFrame(
        {
            "sex": [1, 1],
            "age_years": [60, 60],
            "principal_diagnosis": [None, MEDICAL_PRINCIPAL],
            "other_diagnoses": [MEDICAL_PRINCIPAL, None],
            "principal_procedure": [None, None],
            "other_procedures": [None, "89.5200"],
        }
    )
    result = grouper.group_frame(frame)
    assert result["reason"].tolist() == [
        "principal_diagnosis is missing",
        "other_procedures are given without a principal_procedure",
    ]


def test_bad_rows_do_not_spoil_the_batch(grouper: Grouper) -> None:
    frame = pd.DataFrame(
        {
            "sex": ["1", "x", "2", None, "1"],
            "age_years": ["60", "60", "abc", "40", "3.5"],
            "age_days": ["", "", "", "", ""],
            "birth_weight_g": [None, None, None, None, None],
            "diagnoses": [
                MEDICAL_PRINCIPAL,
                MEDICAL_PRINCIPAL,
                MEDICAL_PRINCIPAL,
                MEDICAL_PRINCIPAL,
                "J68.101",
            ],
            "procedures": [None, "", np.nan, None, None],
        },
        index=[10, 11, 12, 13, 14],
    )
    result = grouper.group_frame(frame)
    assert result["status"].tolist() == ["grouped", "invalid", "invalid", "invalid", "invalid"]
    assert result["reason"].tolist()[1:] == [
        "sex 'x' is not a number",
        "age_years 'abc' is not a number",
        "sex is missing",
        "age_years 3.5 is not a whole number of years ≥ 0",
    ]
    assert result.loc[10, "drg"] == "ER35"


def test_unknown_codes_are_named_when_ungroupable(grouper: Grouper) -> None:
    result = group(grouper, diagnoses=["XYZ.123", MEDICAL_PRINCIPAL], procedures=["99.9999x999"])
    assert result.status == "ungroupable"
    assert result.reason == (
        "unknown diagnosis codes XYZ.123; unknown procedure codes 99.9999x999; no MDC's entry rule holds"
    )
    assert "XYZ.123 (not in the dictionary)" in result.trace[1]


def test_ungroupable_names_the_mdcs_entered(grouper: Grouper, tables: CasemixTables) -> None:
    # an operating-room procedure enters MDCA; with a principal diagnosis in no MDC nothing else fits
    outside = next(
        c
        for c in sorted(tables.diagnoses)
        if not any(c in m.lists.get("diagnoses", ()) for m in tables.mdcs.values())
    )
    surgery = next(
        p
        for p in sorted(tables.or_procedures)
        if not any(p in tables.adrg_codes(a).procedures for a in tables.mdcs["MDCA"].children)
    )
    result = group(grouper, diagnoses=[outside], procedures=[surgery])
    assert (result.status, result.reason) == (
        "ungroupable",
        "no ADRG rule held in MDCA and no other MDC's entry rule holds",
    )


def test_translation_through_the_diagnosis_map(grouper: Grouper, tables: CasemixTables) -> None:
    source, target = next(
        (s, t) for s, t in sorted(tables.diagnosis_map.items()) if s != t and s not in tables.diagnoses
    )
    plain = group(grouper, diagnoses=[source])
    translated = group(grouper, diagnoses=[source], translate_codes=True)
    assert plain.status == "ungroupable" and "unknown diagnosis codes" in plain.reason
    assert translated.status == "grouped"
    assert translated.drg == group(grouper, diagnoses=[target]).drg


def test_counts_are_exposed_for_the_models(grouper: Grouper, tables: CasemixTables) -> None:
    mcc = complication(tables, "mcc", MEDICAL_PRINCIPAL, excluded=False)
    cc = complication(tables, "cc", MEDICAL_PRINCIPAL, excluded=False)
    frame = pd.DataFrame(
        {
            "sex": [1],
            "age_years": [60],
            "diagnoses": ["|".join([MEDICAL_PRINCIPAL, mcc, cc, cc])],
            "procedures": [None],
        }
    )
    result = grouper.group_frame(frame)
    assert result[["mcc_count", "cc_count"]].iloc[0].tolist() == [1, 2]
    assert result["mcc_count"].dtype == np.int64


def test_trace_names_every_mdc_and_adrg_tried_before_the_one_entered(
    group_reference_case: Callable[[Any], GroupResult], tables: CasemixTables, reference_cases: pd.DataFrame
) -> None:
    """The walk tries a case only on the MDCs and ADRGs its principal codes can open; the others are
    still in its trace, in order, as not entered or not matched, as a walk through all of them says."""
    checked = 0
    for case in reference_cases.head(400).itertuples():
        result = group_reference_case(case)
        if result.status != "grouped" or not result.trace[0].startswith("MDC"):
            continue
        mdc = next(i for i, line in enumerate(result.trace) if " entered: " in line and " not " not in line)
        if result.trace[mdc].split()[0] != result.mdc:
            continue  # (an MDC entered before, left for a later one: its ADRG lines come between)
        assert [line.split()[0] for line in result.trace[:mdc]] == list(tables.mdc_order[:mdc])
        assert all(" not entered: " in line for line in result.trace[:mdc])
        adrgs = tables.mdcs[result.mdc].children
        matched = adrgs.index(result.adrg)
        lines = result.trace[mdc + 1 : mdc + 1 + matched]
        assert [line.split()[1] for line in lines] == list(adrgs[:matched])
        assert all(" not matched: " in line for line in lines)
        assert result.trace[mdc + 1 + matched].startswith(f"ADRG {result.adrg} matched: ")
        checked += 1
    assert checked > 100
