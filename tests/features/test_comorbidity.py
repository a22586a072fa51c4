"""Charlson comorbidity index (Quan 2005 ICD-10 coding) on known codes."""

from __future__ import annotations

import pandas as pd
import pytest

from features import comorbidity


def _index(*diagnoses: str | None) -> float:
    principal = pd.Series([diagnoses[0]])
    others = pd.Series(["|".join(d for d in diagnoses[1:] if d) or None])
    return float(comorbidity.charlson_index(comorbidity.condition_masks(principal, others))[0])


@pytest.mark.parametrize(
    ("diagnoses", "expected"),
    [
        (("I21.000x001",), 1),  # myocardial infarction
        (("I25.200",), 1),  # old myocardial infarction, a 4-character prefix
        (("I25.100",), 0),  # other chronic ischaemic heart disease is not in the index
        (("J44.900", "I50.900"), 2),  # COPD + heart failure
        (("E11.900", "E11.200x001"), 2),  # complicated diabetes supersedes uncomplicated
        (("C34.900", "C78.000"), 6),  # metastatic tumour supersedes any malignancy
        (("C44.300",), 0),  # skin cancer is excluded
        (("K70.300", "K72.100"), 3),  # severe liver disease supersedes mild
        (("N18.500", "G81.900"), 4),  # renal disease + hemiplegia
        (("B20.000",), 6),  # HIV
        (("A09.000", None), 0),
        ((None,), 0),
    ],
)
def test_charlson_index_of_known_codes(diagnoses: tuple[str | None, ...], expected: int) -> None:
    assert _index(*diagnoses) == expected


def test_condition_count_and_bits_round_trip() -> None:
    masks = comorbidity.condition_masks(
        pd.Series(["C34.900", "I21.000"]), pd.Series(["C78.000|E11.900", None])
    )
    assert comorbidity.condition_count(masks).tolist() == [3.0, 1.0]
    assert (comorbidity.bits_mask(comorbidity.mask_bits(masks)) == masks).all()


def test_table_is_complete() -> None:
    table = comorbidity.charlson_table()
    assert len(table) == 17
    assert set(table["supersedes"]) - {""} <= set(table["condition"])
    assert table["weight"].sum() == 1 * 10 + 2 * 4 + 3 + 6 * 2
