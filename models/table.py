"""Features of a prepared table: a hospital's own feature table used as it is.

Every column but the label and the period is a feature; text and boolean columns become pandas
categories fixed at fit time, so LightGBM treats them as categorical and unseen values as missing.
"""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from models.errors import TrainingInputError


class TableFeatures(TransformerMixin, BaseEstimator):
    """Column selection and categorical encoding of a prepared feature table."""

    def __init__(self, exclude: tuple[str, ...] = ()) -> None:
        self.exclude = exclude

    def fit(self, table: pd.DataFrame, y: object = None) -> TableFeatures:
        columns = [c for c in table.columns if c not in self.exclude]
        if not columns:
            raise TrainingInputError("the table has no feature column besides the label and the period")
        self.categories_ = {
            c: pd.Index(table[c].dropna().astype(str).unique()).sort_values()
            for c in columns
            if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])
        }
        self.columns_ = columns
        return self

    def transform(self, table: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns_ if c not in table.columns]
        if missing:
            raise TrainingInputError(f"feature column(s) missing from the input: {', '.join(missing)}")
        out = {}
        for c in self.columns_:
            if c in self.categories_:
                text = table[c].astype("string").astype(object).where(table[c].notna(), None)
                out[c] = pd.Categorical(text, categories=self.categories_[c])
            else:
                out[c] = pd.to_numeric(table[c], errors="coerce").astype("float64")
        return pd.DataFrame(out, index=table.index)

    @property
    def catalog(self) -> pd.DataFrame:
        """One row per feature, like :class:`features.pipeline.CaseFeatures`' catalog."""
        kinds = ["categorical" if c in self.categories_ else "numeric" for c in self.columns_]
        return pd.DataFrame({"feature": self.columns_, "stage": "table", "kind": kinds})
