"""Code roll-ups and code lists: ICD-10 chapter and 3-character category, ICD-9-CM-3 two-digit section.

Discharge abstracts carry tens of thousands of distinct codes (ICD-10 医保版 has 33,000 diagnoses), too
many for a model to learn from; rolling them up to the category or chapter keeps the signal and
bounds the number of levels. Every function works on the distinct codes only and maps back, so a
million rows cost little more than the distinct codes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contract.fields import code_lists
from features.encoding import factorize_column

DATA_DIR = Path(__file__).parent / "data"


@lru_cache(maxsize=1)
def icd10_chapters() -> pd.DataFrame:
    """The 22 ICD-10 chapters: chapter (roman numeral), first and last category, zh, en; sorted by first."""
    table = pd.read_csv(DATA_DIR / "icd10_chapters.tsv", sep="\t", dtype=str)
    return table.sort_values("first", ignore_index=True)


Codes = pd.Series | np.ndarray
"""A column of codes: a Series (the result keeps its index) or an object array."""
_ROLLED: dict[tuple[str, object], object] = {}
_ROLLED_LIMIT = 500_000
_SMALL = 64  # up to this many distinct codes, roll-ups are looked up (and remembered) per code


def _on_distinct(codes: Codes, rollup) -> Codes:
    """Apply ``rollup`` (an array of distinct codes -> array of results) and map back to every row.

    ``rollup`` works code by code, so its result for a code is remembered: a single served case pays
    a dictionary lookup per code instead of a pass of pandas string operations. Codes given as an
    array come back as one (no Series around a served case's codes).
    """
    positions, distinct = factorize_column(codes)
    distinct = np.asarray(distinct, dtype=object)
    if len(distinct) <= _SMALL:
        rolled = _remembered(distinct, rollup)
    else:
        rolled = np.asarray(rollup(distinct), dtype=object)
    out = np.full(len(codes), None, dtype=object)
    known = positions >= 0
    out[known] = rolled[positions[known]]
    return pd.Series(out, index=codes.index, dtype=object) if isinstance(codes, pd.Series) else out


def _remembered(distinct: np.ndarray, rollup) -> np.ndarray:
    """``rollup(distinct)``, computing only the codes not seen before (keyed by roll-up and code)."""
    name = rollup.__qualname__
    keys = [(name, _key(c)) for c in distinct]
    unseen = [i for i, k in enumerate(keys) if k not in _ROLLED]
    if unseen:
        if len(_ROLLED) + len(unseen) > _ROLLED_LIMIT:
            _ROLLED.clear()
        try:
            computed = np.asarray(rollup(distinct[unseen]), dtype=object)
        except Exception:  # e.g. pandas' .str refuses a part holding no text at all: roll up all of it
            return np.asarray(rollup(distinct), dtype=object)
        for i, value in zip(unseen, computed, strict=True):
            _ROLLED[keys[i]] = value
    out = np.empty(len(distinct), dtype=object)
    out[:] = [_ROLLED[k] for k in keys]
    return out


def _key(code: object) -> object:
    """A cache key that tells apart values that compare equal but roll up differently (1 and "1")."""
    return (type(code), code)


def _icd10_categories(distinct: np.ndarray) -> np.ndarray:
    category = pd.Series(distinct, dtype=object).str.strip().str.upper().str[:3]
    valid = category.str.fullmatch(r"[A-Z]\d\d", na=False)
    return category.where(valid, None).to_numpy(dtype=object)


def icd10_category(codes: Codes) -> Codes:
    """The 3-character ICD-10 category of each code ("I21.000x001" -> "I21"); None when missing or invalid."""
    return _on_distinct(codes, _icd10_categories)


def _icd10_chapters(distinct: np.ndarray) -> np.ndarray:
    chapters = icd10_chapters()
    category = _icd10_categories(distinct)
    out = np.full(len(distinct), None, dtype=object)
    valid = np.array([c is not None for c in category], dtype=bool)
    cats = category[valid].astype(str)
    row = np.searchsorted(chapters["first"].to_numpy(dtype=str), cats, side="right") - 1
    inside = (row >= 0) & (cats <= chapters["last"].to_numpy(dtype=str)[np.clip(row, 0, None)])
    rolled = np.full(len(cats), None, dtype=object)
    rolled[inside] = chapters["chapter"].to_numpy(dtype=object)[row[inside]]
    out[valid] = rolled
    return out


def icd10_chapter(codes: Codes) -> Codes:
    """The ICD-10 chapter (roman numeral, "IX") of each code; None when missing or outside every chapter."""
    return _on_distinct(codes, _icd10_chapters)


def _icd9cm3_sections(distinct: np.ndarray) -> np.ndarray:
    section = pd.Series(distinct, dtype=object).str.strip().str[:2]
    return section.where(section.str.fullmatch(r"\d\d", na=False), None).to_numpy(dtype=object)


def icd9cm3_section(codes: Codes) -> Codes:
    """The two-digit ICD-9-CM-3 section ("36.1000x001" -> "36"); None when missing or invalid."""
    return _on_distinct(codes, _icd9cm3_sections)


def code_count(code_lists: Codes) -> Codes:
    """How many codes each '|'-separated cell holds (missing or empty: 0); an array of cells gives
    an array (no Series around a served case's codes)."""
    rows, _ = explode_codes(code_lists)
    counts = np.bincount(rows, minlength=len(code_lists)).astype(np.int64)
    return pd.Series(counts, index=code_lists.index) if isinstance(code_lists, pd.Series) else counts


def explode_codes(*columns: Codes) -> tuple[np.ndarray, pd.Categorical]:
    """Long form of code columns of one frame: (row position, code) pairs, blanks dropped, codes trimmed.

    Each column may hold single codes or '|'-separated lists; rows are positions 0..n-1 of the frame.
    Codes come back as a categorical (each distinct code once), so callers work on distinct codes.
    Splitting runs in pyarrow: pandas' Python-level ``str.split`` is ten times slower on a million rows.
    """
    rows, codes = [], []
    for column in columns:
        lists = code_lists(column)
        flat = pc.utf8_trim_whitespace(pc.list_flatten(lists))
        keep = pc.fill_null(pc.not_equal(flat, ""), False)
        rows.append(pc.list_parent_indices(lists).filter(keep).to_numpy().astype(np.int64))
        codes.append(flat.filter(keep))
    encoded = pa.chunked_array(codes, type=pa.string()).combine_chunks().dictionary_encode()
    categorical = pd.Categorical.from_codes(
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        categories=pd.Index(encoded.dictionary.to_pylist(), dtype=object),
    )
    return np.concatenate(rows), categorical
