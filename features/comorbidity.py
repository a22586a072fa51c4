"""Charlson comorbidity index from ICD-10 codes (Quan et al. 2005 coding, Charlson 1987 weights).

The coding algorithm is a data table (``data/charlson_icd10.tsv``: condition, weight, the condition it
supersedes, names, ICD-10 prefixes) so a hospital can review or replace it. A code belongs to a
condition when it starts with one of the condition's prefixes ("I25.2" matches "I25.200x003").
Conditions of a case are held as a bit mask (one bit per condition, in table order), which lets the
history builder accumulate "conditions seen before" with plain integer arithmetic. When a condition
and the condition it supersedes are both present, only the heavier one is weighted (complicated over
uncomplicated diabetes, severe over mild liver disease, metastatic over any malignancy).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from features.codes import DATA_DIR, explode_codes


@lru_cache(maxsize=1)
def charlson_table() -> pd.DataFrame:
    """The Charlson conditions: condition, weight, supersedes, zh, en, icd10_prefixes (a tuple)."""
    table = pd.read_csv(
        DATA_DIR / "charlson_icd10.tsv", sep="\t", dtype={"weight": "int64"}, keep_default_na=False
    )
    table["icd10_prefixes"] = table["icd10_prefixes"].str.split().map(tuple)
    return table


@lru_cache(maxsize=1)
def _prefix_masks() -> dict[int, dict[str, int]]:
    """Prefix length -> {prefix: condition bits}: a code's mask is the OR over its prefixes' entries."""
    out: dict[int, dict[str, int]] = {}
    for bit, prefixes in enumerate(charlson_table()["icd10_prefixes"]):
        for prefix in prefixes:
            by_length = out.setdefault(len(prefix), {})
            by_length[prefix] = by_length.get(prefix, 0) | (1 << bit)
    return out


_MASK_CACHE: dict[str, int] = {}
_MASK_CACHE_LIMIT = 500_000


def _code_masks(codes: np.ndarray) -> np.ndarray:
    """The condition bit mask of each code, remembered per code string (a served case repeats codes
    already seen, and the pandas string operations cost more than the lookup for a few codes)."""
    cache = _MASK_CACHE
    unseen = [c for c in dict.fromkeys(codes) if c not in cache]
    if unseen:
        if len(cache) + len(unseen) > _MASK_CACHE_LIMIT:
            cache.clear()
        computed = _compute_code_masks(np.asarray(unseen, dtype=object))
        cache.update(zip(unseen, computed.tolist(), strict=True))
    return np.fromiter((cache[c] for c in codes), dtype=np.int64, count=len(codes))


def _compute_code_masks(codes: np.ndarray) -> np.ndarray:
    """The condition bit mask of each code (one dictionary lookup per prefix length, no scanning)."""
    text = pd.Series(codes, dtype=object).str.strip().str.upper()
    mask = np.zeros(len(codes), dtype=np.int64)
    for length, masks in _prefix_masks().items():
        mask |= text.str[:length].map(masks).fillna(0).to_numpy(dtype=np.int64)
    return mask


def condition_masks(*code_columns: pd.Series) -> np.ndarray:
    """One Charlson bit mask per row from the rows' diagnosis columns (single codes or '|' lists)."""
    rows, codes = explode_codes(*code_columns)
    per_code = _code_masks(np.asarray(codes.categories, dtype=object))[codes.codes]
    mask = np.zeros(len(code_columns[0]), dtype=np.int64)
    np.bitwise_or.at(mask, rows, per_code)
    return mask


def mask_bits(mask: np.ndarray) -> np.ndarray:
    """The mask as an (n, conditions) 0/1 matrix, columns in table order."""
    bits = np.arange(len(charlson_table()), dtype=np.int64)
    return ((mask[:, None] >> bits[None, :]) & 1).astype(np.int64)


def bits_mask(bits: np.ndarray) -> np.ndarray:
    """The inverse of :func:`mask_bits` for a 0/1 (or count > 0) matrix."""
    weights = np.int64(1) << np.arange(bits.shape[1], dtype=np.int64)
    return ((bits > 0).astype(np.int64) * weights[None, :]).sum(axis=1)


def charlson_index(mask: np.ndarray) -> np.ndarray:
    """The Charlson comorbidity index of each mask, superseded conditions dropped."""
    table = charlson_table()
    bit = {c: 1 << i for i, c in enumerate(table["condition"])}
    mask = np.asarray(mask, dtype=np.int64).copy()
    for condition, superseded in zip(table["condition"], table["supersedes"], strict=True):
        if superseded:
            mask[(mask & bit[condition]) != 0] &= ~bit[superseded]
    return (mask_bits(mask) * table["weight"].to_numpy()[None, :]).sum(axis=1).astype(np.float64)


def condition_count(mask: np.ndarray) -> np.ndarray:
    """How many Charlson conditions each mask holds."""
    return mask_bits(np.asarray(mask, dtype=np.int64)).sum(axis=1).astype(np.float64)
