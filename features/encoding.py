"""High-cardinality categories: levels learned on training data, rare and unseen levels pooled as "other".

A department or diagnosis category seen a handful of times in training gives a model noise, and a
level first seen at predict time has no learned effect at all; both become ``OTHER``. Levels are
learned from training cases only (never from the cases being scored) and fixed, so the pandas
``category`` dtype has the same categories at fit and predict time — what LightGBM's native
categorical handling requires. A missing value stays missing (NaN), which LightGBM treats on its own.
"""

from __future__ import annotations

import pandas as pd

OTHER = "other"


def learn_levels(values: pd.Series, min_count: int) -> list[str]:
    """Levels seen at least ``min_count`` times, most frequent first (ties by name, so it is stable)."""
    counts = values.dropna().astype(str).value_counts()
    counts = counts[counts >= min_count]
    frame = (
        counts.rename_axis("level").reset_index(name="n").sort_values(["n", "level"], ascending=[False, True])
    )
    return [level for level in frame["level"] if level != OTHER]


def apply_levels(values: pd.Series, levels: list[str]) -> pd.Series:
    """``values`` as a category with categories ``levels + [OTHER]``; other known values become OTHER."""
    text = values.astype(object).where(values.notna(), None)
    known = text.isin(levels) | text.isna()
    pooled = text.where(known, OTHER)
    return pd.Series(
        pd.Categorical(pooled, categories=[*levels, OTHER]), index=values.index, name=values.name
    )
