"""Code roll-ups on known codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import codes


def test_icd10_category_and_chapter_of_known_codes() -> None:
    given = pd.Series(
        [
            "I21.000x001",
            "C34.900",
            "S72.000",
            "T81.400",
            "Z51.100",
            "U07.100",
            "V01.000",
            "H60.000",
            "H59.000",
            "D48.900",
            "D50.000",
            "A54.301+H13.1*",
            " k25.000 ",
            "abc",
            None,
            "",
        ],
        index=range(10, 26),
    )
    category = codes.icd10_category(given)
    chapter = codes.icd10_chapter(given)
    assert list(category.index) == list(given.index)
    assert category.tolist() == [
        "I21",
        "C34",
        "S72",
        "T81",
        "Z51",
        "U07",
        "V01",
        "H60",
        "H59",
        "D48",
        "D50",
        "A54",
        "K25",
        None,
        None,
        None,
    ]
    assert chapter.tolist() == [
        "IX",
        "II",
        "XIX",
        "XIX",
        "XXI",
        "XXII",
        "XX",
        "VIII",
        "VII",
        "II",
        "III",
        "I",
        "XI",
        None,
        None,
        None,
    ]


def test_category_outside_every_chapter_has_no_chapter() -> None:
    assert codes.icd10_chapter(pd.Series(["D49.000"])).tolist() == [None]


def test_icd9cm3_section() -> None:
    given = pd.Series(["36.0601", "00.6600x004", "81.5100", "3.5", None])
    assert codes.icd9cm3_section(given).tolist() == ["36", "00", "81", None, None]


def test_code_lists_are_counted_and_exploded() -> None:
    lists = pd.Series(["A|B|C", None, "", "D", "E||F"])
    assert codes.code_count(lists).tolist() == [3, 0, 0, 1, 2]
    # the arrays a feature view reads (no Series): an array back, the same counts
    for column in (lists.to_numpy(dtype=object), lists.astype("string[pyarrow]").array):
        counted = codes.code_count(column)
        assert isinstance(counted, np.ndarray) and counted.tolist() == [3, 0, 0, 1, 2]
    rows, found = codes.explode_codes(pd.Series(["X", None, "Y"]), lists.iloc[:3])
    order = np.lexsort((found, rows))
    assert list(zip(rows[order].tolist(), found[order].tolist(), strict=True)) == [
        (0, "A"),
        (0, "B"),
        (0, "C"),
        (0, "X"),
        (2, "Y"),
    ]


def test_roll_ups_of_an_array_are_those_of_its_series() -> None:
    """A served case's codes may come as an object array (no Series around them): same roll-ups."""
    values = ["I21.000x001", " j18.900 ", None, "", "36.1000x001", "Z99", "X", "I21.000x001"]
    for rollup in (codes.icd10_category, codes.icd10_chapter, codes.icd9cm3_section):
        as_series = rollup(pd.Series(values, dtype=object))
        as_array = rollup(np.array(values, dtype=object))
        assert isinstance(as_array, np.ndarray)
        assert list(as_array) == list(as_series)
