"""Each case's code lists as the grouper encodes them (distinct cells split once, taken by index)
equal splitting the case's own cells in turn: principal column first, blank entries dropped, codes
trimmed and translated, a missing cell giving no code."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from casemix.cases import encode_cases
from casemix.grouper import Grouper
from casemix.lookups import Lookups
from casemix.tables import CodeTable
from contract.fields import split_codes

PRINCIPALS = ["J18.900", " I10.x00 ", None, "", "E11.900|I10.x00", "J18.900", "UNKNOWN.1"]
OTHERS = ["E87.200|I10.x00", None, "E11.900", "", "|J18.900||", "E87.200|I10.x00", " E87.200 | "]
PROCEDURES = [None, "36.0700", "", "36.0700", None, "36.0700", "36.0700|"]
OTHER_PROCEDURES = ["88.7201", None, "88.7201|", None, "", "88.7201", None]


def _expected(*columns: list[str | None], translation: dict[str, str] | None = None) -> list[list[str]]:
    """Per case: the codes of each column's cell in turn, trimmed, translated, blanks dropped."""
    translation = translation or {}
    cases = []
    for cells in zip(*columns, strict=True):
        codes = [c.strip() for cell in cells for c in split_codes(cell)]
        cases.append([translation.get(c, c) for c in codes if c])
    return cases


def _codes(lists, rows: int) -> list[list[str]]:
    return [lists.codes_of(i) for i in range(rows)]


def test_code_lists_equal_each_case_split_on_its_own(grouper: Grouper) -> None:
    n = len(PRINCIPALS)
    frame = pd.DataFrame(
        {
            "sex": [1] * n,
            "age_years": [60] * n,
            "principal_diagnosis": PRINCIPALS,
            "other_diagnoses": OTHERS,
            "principal_procedure": PROCEDURES,
            "other_procedures": OTHER_PROCEDURES,
        }
    )
    encoded = encode_cases(frame.astype({c: "string[pyarrow]" for c in frame.columns[2:]}), grouper.lookups)
    assert _codes(encoded.diagnoses, n) == _expected(PRINCIPALS, OTHERS)
    assert _codes(encoded.procedures, n) == _expected(PROCEDURES, OTHER_PROCEDURES)
    # ids follow the text: the same code has one id wherever it stands, an unknown code the unknown id
    known = grouper.lookups.diagnoses.ids(np.array(["J18.900", "UNKNOWN.1"], dtype=object))
    assert encoded.diagnoses.ids[encoded.diagnoses.indptr[0]] == known[0]
    assert encoded.diagnoses.ids[encoded.diagnoses.indptr[5]] == known[0]
    assert encoded.diagnoses.principal[6] == encoded.diagnoses.unknown == known[1]


def test_reference_shape_and_translation(grouper: Grouper) -> None:
    diagnoses = ["J18.900|E87.200", "", None, " X99 |J18.900"]
    frame = pd.DataFrame({"sex": [1] * 4, "age_years": [60] * 4, "diagnoses": diagnoses}, dtype=object)
    translation = {"X99": "J18.900"}
    translated = CodeTable.of({**grouper.tables.diagnosis_map, **translation})
    tables = replace(grouper.tables, diagnosis_map=translated)
    encoded = encode_cases(frame, Lookups(tables), translate_codes=True)
    assert _codes(encoded.diagnoses, 4) == _expected(diagnoses, translation=translation)
    assert _codes(encoded.procedures, 4) == [[], [], [], []]


def test_a_blank_principal_beside_other_codes_is_missing(grouper: Grouper) -> None:
    """Empty, whitespace-only (any Unicode space) and missing principals are all missing."""
    principals = ["", "  \t", "\u3000", None, "J18.900", " J18.900 "]
    n = len(principals)
    frame = pd.DataFrame(
        {
            "sex": [1] * n,
            "age_years": [60] * n,
            "principal_diagnosis": principals,
            "other_diagnoses": ["E11.900"] * n,
        }
    ).astype({"principal_diagnosis": "string[pyarrow]", "other_diagnoses": "string[pyarrow]"})
    reasons = encode_cases(frame, grouper.lookups).reasons
    assert ["principal_diagnosis is missing" in r for r in reasons] == [True] * 4 + [False] * 2


def test_ids_of_few_codes_match_the_arrow_lookup(grouper: Grouper) -> None:
    """Fewer codes than the vocabulary are looked up in a dict, more through Arrow: the same ids."""
    vocabulary = grouper.lookups.diagnoses
    known = vocabulary.codes.to_pylist()
    codes = np.array([*known[::-1], "UNKNOWN.1", "", "j18.900"], dtype=object)  # more than it holds
    by_arrow = vocabulary.ids(codes)
    assert by_arrow.dtype == np.int32
    assert by_arrow[: len(known)].tolist() == list(range(len(known)))[::-1]
    assert by_arrow[len(known) :].tolist() == [vocabulary.unknown] * 3
    for part in (codes[:1], codes[-5:], codes[100:2100]):
        one_by_one = vocabulary.ids(part)
        assert one_by_one.dtype == np.int32
        assert one_by_one.tolist() == vocabulary.ids(np.concatenate([part, codes]))[: len(part)].tolist()
