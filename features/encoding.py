"""High-cardinality categories: levels learned on training data, rare and unseen levels pooled as "other".

A department or diagnosis category seen a handful of times in training gives a model noise, and a
level first seen at predict time has no learned effect at all; both become ``OTHER``. Levels are
learned from training cases only (never from the cases being scored) and fixed, so the pandas
``category`` dtype has the same categories at fit and predict time — what LightGBM's native
categorical handling requires. A missing value stays missing (NaN), which LightGBM treats on its own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from features.view import FEW_ROWS

OTHER = "other"


def learn_levels(values: pd.Series, min_count: int) -> list[str]:
    """Levels seen at least ``min_count`` times, most frequent first (ties by name, so it is stable)."""
    return levels_from_counts(level_counts(values), min_count)


def level_counts(values: pd.Series) -> pd.Series:
    """How often each level (as text) occurs: counts of parts of the data add up to the whole's."""
    counts = values.value_counts(dropna=True)
    counts.index = counts.index.astype(str)
    return counts.groupby(level=0).sum()


def levels_from_counts(counts: pd.Series, min_count: int) -> list[str]:
    """:func:`learn_levels` from ``level_counts`` of the data, or of its parts concatenated (the
    counts of a level repeated in several parts are added here)."""
    counts = counts.groupby(level=0).sum()
    counts = counts[counts >= min_count]
    frame = counts.rename_axis("level").reset_index(name="n")
    frame = frame.sort_values(["n", "level"], ascending=[False, True])
    return [level for level in frame["level"] if level != OTHER]


def apply_levels(values: pd.Series, levels: list[str]) -> pd.Series:
    """``values`` as a category with categories ``levels + [OTHER]``; other known values become OTHER.

    Works on the distinct values only (factorize, then look each one up), so it stays fast on
    a million rows.
    """
    return pd.Series(encode_levels(values, levels), index=values.index, name=values.name)


def factorize_column(
    values: pd.Series | np.ndarray | pd.api.extensions.ExtensionArray,
) -> tuple[np.ndarray, Any]:
    """``pd.factorize`` of a column's own array (codes, distinct values; -1 where missing).

    A Series' factorize costs a single case twice the work; a NumPy-backed Series' ``.array`` is a
    wrapper pandas deprecates factorizing, so its NumPy array is taken instead."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = values.to_numpy()
    return pd.factorize(values, use_na_sentinel=True)


def encode_levels(values: pd.Series, levels: list[str] | tuple[str, ...]) -> pd.Categorical:
    """:func:`apply_levels` without the Series around it (the categorical, positionally aligned)."""
    dtype, position = _levels_dtype(tuple(levels))
    other = len(position) - 1
    if len(values) <= FEW_ROWS:  # a request's rows: a dict lookup each, no factorize
        codes = np.fromiter(
            (-1 if pd.isna(v) else position.get(v if type(v) is str else str(v), other) for v in values),
            dtype=np.int64,
            count=len(values),
        )
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    codes_of, distinct = factorize_column(values)
    # Each distinct value read as text (what ``Index.astype(str)`` gives), looked up once; a dict
    # lookup per distinct value has no per-call pandas overhead, which dominates for a single case.
    lookup = np.fromiter(
        (position.get(v if type(v) is str else str(v), other) for v in distinct),
        dtype=np.int64,
        count=len(distinct),
    )
    lookup = np.append(lookup, -1)  # position -1 (missing) stays -1
    return pd.Categorical.from_codes(lookup[codes_of], dtype=dtype, validate=False)


@lru_cache(maxsize=1024)
def _levels_dtype(levels: tuple[str, ...]) -> tuple[pd.CategoricalDtype, dict[str, int]]:
    """The category dtype of ``levels + [OTHER]`` and each category's code, built once per level list."""
    categories = pd.Index([*levels, OTHER])
    position = {str(c): i for i, c in enumerate(categories)}
    position[OTHER] = len(levels)
    return pd.CategoricalDtype(categories), position
