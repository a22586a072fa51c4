"""High-cardinality categories: levels learned on training data, rare and unseen levels pooled as "other".

A department or diagnosis category seen a handful of times in training gives a model noise, and a
level first seen at predict time has no learned effect at all; both become ``OTHER``. Levels are
learned from training cases only (never from the cases being scored) and fixed, so the pandas
``category`` dtype has the same categories at fit and predict time — what LightGBM's native
categorical handling requires. A missing value stays missing (NaN), which LightGBM treats on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OTHER = "other"


def learn_levels(values: pd.Series, min_count: int) -> list[str]:
    """Levels seen at least ``min_count`` times, most frequent first (ties by name, so it is stable)."""
    counts = values.value_counts(dropna=True)
    counts.index = counts.index.astype(str)
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
    categories = pd.Index([*levels, OTHER])
    positions, distinct = pd.factorize(values, use_na_sentinel=True)
    lookup = categories.get_indexer(pd.Index(distinct).astype(str))
    lookup = np.append(np.where(lookup < 0, len(levels), lookup), -1)  # position -1 (missing) stays -1
    codes = lookup[positions]
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=categories), index=values.index, name=values.name
    )
