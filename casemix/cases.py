"""A batch of cases as numpy arrays: demographics, code lists as id arrays, and validation reasons.

Two input shapes are accepted: the reference test-case columns (``diagnoses`` and ``procedures``,
'|'-separated, principal first) and the canonical contract columns (``principal_diagnosis``,
``other_diagnoses``, ``principal_procedure``, ``other_procedures``). Code lists are split by pyarrow
and each distinct code string is looked up once, so a million cases cost a few vectorised passes.
Malformed values never raise: they make the case invalid with a reason naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from casemix.lookups import Lookups, Vocabulary
from contract.errors import InputError
from contract.fields import code_lists, is_text_categories

REFERENCE_COLUMNS = ("diagnoses", "procedures")
CANONICAL_COLUMNS = ("principal_diagnosis", "other_diagnoses", "principal_procedure", "other_procedures")
NUMBER_COLUMNS = ("sex", "age_years", "age_days", "birth_weight_g")
# What grouping reads from a canonical case.
CANONICAL_INPUT_COLUMNS = (*NUMBER_COLUMNS, *CANONICAL_COLUMNS)
NEWBORN_DAYS = 28
SMALL_BATCH = 1024


@dataclass(frozen=True)
class CodeLists:
    """Each case's codes, principal first, in CSR form: case i owns ``ids[indptr[i]:indptr[i + 1]]``.

    ``uniques[strings[k]]`` is entry k's code text (after translation), kept for reasons and traces.
    """

    indptr: np.ndarray
    ids: np.ndarray
    strings: np.ndarray
    uniques: np.ndarray
    unknown: int

    @cached_property
    def principal(self) -> np.ndarray:
        """The principal code id per case; the unknown id when the case has no code."""
        starts = self.indptr[:-1]
        if not len(self.ids):
            return np.full(len(starts), self.unknown, dtype=np.int32)
        first = self.ids[np.minimum(starts, len(self.ids) - 1)]  # (a gather, then a choice: no masks)
        return np.where(self.indptr[1:] > starts, first, np.int32(self.unknown)).astype(np.int32, copy=False)

    @cached_property
    def distinct_principals(self) -> tuple[np.ndarray, np.ndarray]:
        """(the batch's distinct principal code ids, each case's position among them): tables over
        the few codes a batch holds stand in for tables over the whole vocabulary. A small batch's
        ids are not made distinct (counting over the vocabulary would cost more than the rest)."""
        if len(self.principal) < SMALL_BATCH:  # a few cases: each its own column, repeats and all
            return self.principal, np.arange(len(self.principal), dtype=np.int32)
        ids = np.flatnonzero(np.bincount(self.principal, minlength=self.unknown + 1))
        position = np.zeros(self.unknown + 1, dtype=np.int32)
        position[ids] = np.arange(len(ids), dtype=np.int32)
        return ids, np.take(position, self.principal)

    def any_of_each(self, lookup: np.ndarray) -> np.ndarray:
        """For every case: is any of its codes True in ``lookup``? (Hits counted along all entries.)"""
        hits = np.zeros(len(self.ids) + 1, dtype=np.int64)
        np.cumsum(np.take(lookup, self.ids), out=hits[1:])
        return hits[self.indptr[1:]] > hits[self.indptr[:-1]]

    def any_in(self, lookup: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each case in ``rows``: is any of its codes True in ``lookup``? The rows' entries are
        gathered in order and their hits counted along them, read at the rows' bounds (no owner per
        entry to repeat and count by: a third of the work on a million cases)."""
        starts = self.indptr[rows]
        bounds = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(self.indptr[rows + 1] - starts, out=bounds[1:])
        positions = np.repeat(starts - bounds[:-1], np.diff(bounds))
        positions += np.arange(len(positions))
        hits = np.zeros(len(positions) + 1, dtype=np.int64)
        np.cumsum(np.take(lookup, self.ids[positions]), out=hits[1:])
        return hits[bounds[1:]] > hits[bounds[:-1]]

    def segments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entries of the cases in ``rows``: (position of the case within ``rows``, entry index)."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        owner = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return owner, np.repeat(starts, lengths) + offsets

    def codes_of(self, row: int) -> list[str]:
        return list(self.uniques[self.strings[self.indptr[row] : self.indptr[row + 1]]])


@dataclass(frozen=True)
class EncodedCases:
    """What the grouper reads for a batch; ``invalid_reasons`` are the reasons of the cases not
    ``valid``, in row order (``reasons`` spreads them over every case, empty for a valid one)."""

    sex: np.ndarray
    age_years: np.ndarray
    age_days: np.ndarray
    birth_weight_g: np.ndarray
    diagnoses: CodeLists
    procedures: CodeLists
    valid: np.ndarray
    invalid_reasons: np.ndarray

    def __len__(self) -> int:
        return len(self.sex)

    @cached_property
    def reasons(self) -> np.ndarray:
        """Each case's reasons, empty for a valid case (built when asked: a million empty texts are
        more than the grouper needs)."""
        reasons = np.full(len(self), "", dtype=object)
        reasons[~self.valid] = self.invalid_reasons
        return reasons


def encode_cases(frame: pd.DataFrame, lookups: Lookups, *, translate_codes: bool = False) -> EncodedCases:
    """Encode a batch in either input shape; raises only when the shape itself is wrong."""
    dx_texts, px_texts, shape_checks = _code_columns(frame)
    tables = lookups.tables
    diagnoses = _code_lists(dx_texts, lookups.diagnoses, tables.diagnosis_map if translate_codes else {})
    procedures = _code_lists(px_texts, lookups.procedures, tables.procedure_map if translate_codes else {})
    values, malformed = {}, {}
    for name in NUMBER_COLUMNS:
        values[name], malformed[name] = _number(frame, name)
    sex, age_years, age_days, weight = (values[name] for name in NUMBER_COLUMNS)
    newborn = (age_years == 0) & (age_days <= NEWBORN_DAYS)

    def not_a_number(name: str) -> Callable[[int], str]:
        return lambda i: f"{name} {frame[name].iloc[i]!r} is not a number"

    def missing(name: str) -> np.ndarray:
        return np.isnan(values[name]) & ~malformed[name]

    checks: list[tuple[np.ndarray, Callable[[int], str]]] = [
        (malformed["sex"], not_a_number("sex")),
        (missing("sex"), lambda i: "sex is missing"),
        (~np.isnan(sex) & ~np.isin(sex, (1, 2)), lambda i: f"sex {sex[i]:g} is not 1 (male) or 2 (female)"),
        (malformed["age_years"], not_a_number("age_years")),
        (missing("age_years"), lambda i: "age_years is missing"),
        (_not_count(age_years), lambda i: f"age_years {age_years[i]:g} is not a whole number of years ≥ 0"),
        (malformed["age_days"], not_a_number("age_days")),
        (
            (age_years == 0) & missing("age_days"),
            lambda i: "age_days is missing for a patient under one year",
        ),
        (_not_count(age_days), lambda i: f"age_days {age_days[i]:g} is not a whole number of days ≥ 0"),
        (malformed["birth_weight_g"], not_a_number("birth_weight_g")),
        (
            newborn & ~(weight > 0) & ~malformed["birth_weight_g"],
            lambda i: f"birth_weight_g is missing for a newborn of {age_days[i]:g} days",
        ),
        (weight < 0, lambda i: f"birth_weight_g {weight[i]:g} is negative"),
        (np.diff(diagnoses.indptr) == 0, lambda i: "no diagnosis"),
        *shape_checks,
    ]
    valid, invalid_reasons = _reasons(len(frame), checks)
    return EncodedCases(
        sex=sex,
        age_years=age_years,
        age_days=age_days,
        birth_weight_g=weight,
        diagnoses=diagnoses,
        procedures=procedures,
        valid=valid,
        invalid_reasons=invalid_reasons,
    )


def _code_columns(
    frame: pd.DataFrame,
) -> tuple[list[pa.DictionaryArray], list[pa.DictionaryArray], list[tuple[np.ndarray, Callable[[int], str]]]]:
    """The diagnosis and procedure columns ('|'-separated text, the principal's column first) by
    distinct cell, plus checks the canonical shape needs (answered per distinct cell)."""
    if "sex" not in frame or "age_years" not in frame:
        raise InputError("cases need the columns sex and age_years")
    if "diagnoses" in frame:
        procedures = (
            _text(frame["procedures"]) if "procedures" in frame else pa.nulls(len(frame), pa.string())
        )
        return [_cells(_text(frame["diagnoses"]))], [_cells(procedures)], []
    if "principal_diagnosis" not in frame:
        raise InputError(
            f"cases need either the columns {list(REFERENCE_COLUMNS)} or {list(CANONICAL_COLUMNS)}; "
            f"got {list(frame.columns)}"
        )
    texts = {
        c: _cells(_text(frame[c]) if c in frame else pa.nulls(len(frame), pa.string()))
        for c in CANONICAL_COLUMNS
    }
    blank = {c: _is_empty(cells) for c, cells in texts.items()}
    checks = [
        (
            blank["principal_diagnosis"] & ~blank["other_diagnoses"],
            lambda i: "principal_diagnosis is missing",
        ),
        (
            blank["principal_procedure"] & ~blank["other_procedures"],
            lambda i: "other_procedures are given without a principal_procedure",
        ),
    ]
    return (
        [texts["principal_diagnosis"], texts["other_diagnoses"]],
        [texts["principal_procedure"], texts["other_procedures"]],
        checks,
    )


def _text(column: pd.Series) -> pa.Array:
    """A column as an Arrow string array, or a dictionary of strings for a column of text categories;
    Arrow-backed columns and categories are taken without a copy."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        text = pa.array(column.array)
        text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
        return text.cast(pa.string())
    if is_text_categories(column):
        coded = pa.array(column.array)
        return pa.DictionaryArray.from_arrays(coded.indices, coded.dictionary.cast(pa.string()))
    values = column.to_numpy(dtype=object, na_value=None)
    if column.dtype != object and not pd.api.types.is_string_dtype(column):
        values = np.array([None if v is None else str(v) for v in values], dtype=object)
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None or v != v else str(v) for v in values], type=pa.string())


def _cells(text: pa.Array) -> pa.DictionaryArray:
    """A code column by distinct cell, a missing cell one of them: cells repeat (a million demo
    cases hold 706 distinct principal diagnoses), so what is asked of a cell is asked once. A column
    of categories is by cell already (a category no case holds is a cell no case takes)."""
    if not pa.types.is_dictionary(text.type):
        return text.dictionary_encode(null_encoding="encode")
    if not text.null_count:
        return text
    missing = pa.array([len(text.dictionary)], text.type.index_type)[0]
    dictionary = pa.concat_arrays([text.dictionary, pa.nulls(1, text.dictionary.type)])
    return pa.DictionaryArray.from_arrays(pc.fill_null(text.indices, missing), dictionary)


def _is_empty(cells: pa.DictionaryArray) -> np.ndarray:
    """Missing, empty or only whitespace; tested on the distinct cells, without trimming."""
    text = cells.dictionary
    blank = pc.or_kleene(pc.equal(pc.binary_length(text), 0), pc.utf8_is_space(text))
    return np.take(pc.fill_null(blank, True).to_numpy(zero_copy_only=False), cells.indices.to_numpy())


def _code_lists(
    texts: Sequence[pa.DictionaryArray], vocabulary: Vocabulary, translation: Mapping[str, str]
) -> CodeLists:
    """Each case's codes: its cell of each of ``texts`` split in turn (the principal's column first),
    blank entries dropped, each distinct code string given its id once.

    Cells repeat (a million demo cases hold 706 distinct principal diagnoses, 95,703 distinct lists of
    others, 30 of other procedures), so each column's distinct cells are split once and the cases take
    their cell's codes by index: splitting every cell cost three times as much. Trimming and
    translation work on the distinct code strings, not on every entry.
    """
    columns = [_distinct_cells(text) for text in texts]
    uniques = np.array([c.strip() for u, _, _ in columns for c in u], dtype=object)
    if translation:
        uniques = np.array([translation.get(c, c) for c in uniques], dtype=object)
    offsets = [o for _, o, _ in columns]
    indptr = offsets[0].copy()
    for o in offsets[1:]:
        indptr += o
    strings = np.empty(int(indptr[-1]), dtype=np.int32)
    first = 0
    for k, (dictionary, own, values) in enumerate(columns):
        # Case i's entries from column k start at offsets[k][i], shifted by all its entries in the
        # columns before k (their offsets at i + 1) and by the earlier cases' entries in those after k
        # (with two columns, one of those: a view, nothing added).
        shifts = [o[1:] for o in offsets[:k]] + [o[:-1] for o in offsets[k + 1 :]]
        before = shifts[0] if len(shifts) == 1 else sum(shifts, np.zeros(len(own) - 1, dtype=np.int64))
        lengths = np.diff(own)
        if len(values) == np.count_nonzero(lengths):  # one code a case at most: no repeat
            at = (before + own[:-1])[lengths > 0]
        else:
            at = np.repeat(before, lengths)
            at += np.arange(len(values))
        strings[at] = values + first
        first += len(dictionary)
    blank = uniques == ""
    if blank.any():
        keep = ~blank[strings]
        owner = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        strings = strings[keep]
        indptr = np.zeros_like(indptr)
        np.cumsum(np.bincount(owner[keep], minlength=len(indptr) - 1), out=indptr[1:])
    return CodeLists(
        indptr=indptr,
        ids=np.take(vocabulary.ids(uniques), strings),
        strings=strings,
        uniques=uniques,
        unknown=vocabulary.unknown,
    )


def _distinct_cells(cells: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the column's distinct code strings, each case's codes as indices into them: CSR offsets and
    values); a missing cell has none. Only the distinct cells are split.

    Where every cell holds one code at most (a principal's column), each case's code is its cell's,
    found by one gather: taking Arrow lists per case cost more."""
    lists = code_lists(cells.dictionary)
    entries = pc.list_flatten(lists).dictionary_encode()
    strings = np.array(entries.dictionary.to_pylist(), dtype=object)
    cell_offsets = lists.offsets.to_numpy()  # (a fresh split: from 0)
    cell_lengths = np.diff(cell_offsets)
    if cell_lengths.max(initial=0) <= 1:
        index = cells.indices.to_numpy()
        code = np.full(len(cell_lengths), -1, dtype=np.int32)
        code[cell_lengths > 0] = entries.indices.to_numpy()
        coded = np.take(code, index)
        has = coded >= 0
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(has, out=offsets[1:])
        return strings, offsets, coded[has]
    by_cell = pa.ListArray.from_arrays(lists.offsets, entries.indices)
    taken = pc.take(by_cell, cells.indices)
    return strings, taken.offsets.to_numpy().astype(np.int64), taken.values.to_numpy(zero_copy_only=False)


def _number(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 (NaN when missing) and a mask of present but non-numeric values.

    Text columns hold few distinct values (ages, sexes), so each distinct value of a batch is parsed
    once; a small batch's values are each parsed (factorising one case's value cost 23 µs a column).
    """
    if name not in frame:
        return np.full(len(frame), np.nan), np.zeros(len(frame), dtype=bool)
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(frame), dtype=bool)
    if len(column) < SMALL_BATCH:
        values = column.to_numpy(dtype=object)
        missing = np.fromiter((pd.isna(v) is True for v in values), bool, len(values))
        codes, uniques = np.where(missing, -1, np.arange(len(values))), values
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    parsed = np.array(
        [_parse_number(u) for u in uniques] or [(np.nan, False)], dtype=[("v", "f8"), ("bad", "?")]
    )
    missing = codes < 0
    codes = np.where(missing, 0, codes)
    return np.where(missing, np.nan, parsed["v"][codes]), ~missing & parsed["bad"][codes]


def _parse_number(value: object) -> tuple[float, bool]:
    """(number, malformed) for one distinct cell; blank text is missing, not malformed."""
    text = str(value).strip()
    try:
        return float(text), False
    except ValueError:
        return np.nan, text != ""


def _not_count(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~np.isnan(values) & ((values < 0) | (values != np.floor(values)))


def _reasons(n: int, checks: list[tuple[np.ndarray, Callable[[int], str]]]) -> tuple[np.ndarray, np.ndarray]:
    """Whether each case passes every check (from the checks' masks), and the '; '-joined messages
    of the failed checks of each case that does not, in row order."""
    valid = np.ones(n, dtype=bool)
    messages: dict[int, str] = {}
    for mask, message in checks:
        failed = np.flatnonzero(mask)
        valid[failed] = False
        for i in failed.tolist():
            messages[i] = f"{messages[i]}; {message(i)}" if i in messages else message(i)
    invalid = np.array([messages[i] for i in sorted(messages)], dtype=object)
    return valid, invalid
