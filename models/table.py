"""Features of a prepared table: a hospital's own feature table, encoded the way a careful analyst would.

Numbers are used as they are. Text columns with few levels are LightGBM categoricals (rare and unseen
levels pooled as "other"); text columns with many levels, and columns whose values look like ICD
codes, get the encodings of :mod:`models.encoders` under one strategy, which :func:`choose_strategy`
picks on the validation period. Identifier-like text columns (nearly one level per row) are left out.
With an entity and an order column, each row also gets its point-in-time history
(:mod:`models.history`) from the rows it is given.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone

from contract.errors import ConfigError
from features.encoding import encode_levels, learn_levels
from models.encoders import STRATEGIES, ColumnEncoder, code_kind
from models.errors import TrainingInputError
from models.history import history_features

DEFAULT_STRATEGY = "frequency+target+rollup"
# A text column with more distinct values than this share of rows is an id (any column above 0.9).
IDENTIFIER_SHARE = 0.5


class TableFeatures(TransformerMixin, BaseEstimator):
    """Column selection, encoding and (with ``entity`` and ``order``) history of a prepared table.

    ``exclude`` columns are inputs but never features (the entity, order and label columns history
    reads). ``max_levels``: a text column with more training levels is high-cardinality.
    """

    def __init__(
        self,
        exclude: tuple[str, ...] = (),
        strategy: str = DEFAULT_STRATEGY,
        max_levels: int = 30,
        min_count: int = 10,
        entity: str | None = None,
        order: str | None = None,
        label: str | None = None,
        label_horizon_days: float | None = None,
        seed: int = 0,
    ) -> None:
        self.exclude = exclude
        self.strategy = strategy
        self.max_levels = max_levels
        self.min_count = min_count
        self.entity = entity
        self.order = order
        self.label = label
        self.label_horizon_days = label_horizon_days
        self.seed = seed

    def fit(
        self, table: pd.DataFrame, y: pd.Series | None = None, history: pd.DataFrame | None = None
    ) -> TableFeatures:
        self.fit_transform(table, y, history=history)
        return self

    def fit_transform(
        self, table: pd.DataFrame, y: pd.Series | None = None, history: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Fit on the training rows and encode them; target encodings of these rows are out of fold."""
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        skip = {*self.exclude, *(c for c in (self.entity, self.order, self.label) if c)}
        columns = [c for c in table.columns if c not in skip]
        if not columns:
            raise TrainingInputError("the table has no feature column besides the label and the period")
        target = _encoding_target(y)
        self.numeric_, self.levels_, self.encoders_, self.dropped_ = [], {}, {}, []
        self.kinds_: dict[str, str] = {}
        parts: dict[str, Any] = {}
        for c in columns:
            values = table[c]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                self.numeric_.append(c)
                self.kinds_[c] = "numeric"
                parts[c] = _number(values)
                continue
            text = values.astype("string")
            levels = text.nunique()
            kind = code_kind(text) if not pd.api.types.is_bool_dtype(values) else "text"
            self.kinds_[c] = kind
            share = levels / max(len(table), 1)
            if levels > self.max_levels and (share > 0.9 or (kind == "text" and share > IDENTIFIER_SHARE)):
                self.dropped_.append(c)
            elif levels > self.max_levels:
                encoder = ColumnEncoder(c, kind, STRATEGIES[self.strategy], self.min_count)
                self.encoders_[c] = encoder
                parts[c] = encoder.fit_transform(values, target, self.seed)
            else:
                self.levels_[c] = learn_levels(text, min(self.min_count, 5))
                parts[c] = encode_levels(text, self.levels_[c])
        if self.dropped_:
            warnings.warn(
                f"identifier-like column(s) left out of the features: {', '.join(self.dropped_)}",
                stacklevel=2,
            )
        self.sums_ = [c for c in self.numeric_ if c != self.order and _is_count(table[c])]
        self.columns_ = [c for c in columns if c not in self.dropped_]
        out = self._assemble(parts, table, history)
        self.features_ = list(out.columns)
        self.categorical_ = [c for c in out.columns if isinstance(out[c].dtype, pd.CategoricalDtype)]
        return out

    def transform(self, table: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Encoded features of ``table``; history (when configured) from ``history``, else ``table``."""
        missing = [c for c in self.columns_ if c not in table.columns]
        if missing:
            raise TrainingInputError(f"feature column(s) missing from the input: {', '.join(missing)}")
        parts: dict[str, Any] = {}
        for c in self.columns_:
            if c in self.encoders_:
                parts[c] = self.encoders_[c].transform(table[c])
            elif c in self.levels_:
                parts[c] = encode_levels(table[c].astype("string"), self.levels_[c])
            else:
                parts[c] = _number(table[c])
        return self._assemble(parts, table, history)

    def _assemble(
        self, parts: dict[str, Any], table: pd.DataFrame, history: pd.DataFrame | None
    ) -> pd.DataFrame:
        frames = []
        for c in self.columns_:
            part = parts[c]
            frames.append(
                part if isinstance(part, pd.DataFrame) else pd.DataFrame({c: part}, index=table.index)
            )
        if self.entity and self.order:
            pool = table if history is None else history
            frames.append(
                history_features(
                    table, pool, self.entity, self.order, self.sums_, self.label, self.label_horizon_days
                )
            )
        out = pd.concat(frames, axis=1)
        out.index = table.index
        return out

    @property
    def encodings(self) -> dict[str, dict[str, Any]]:
        """What was done to each text column: its code kind, levels, encoding and output columns."""
        found: dict[str, dict[str, Any]] = {}
        for c, kind in self.kinds_.items():
            if kind == "numeric":
                continue
            if c in self.encoders_:
                encoder = self.encoders_[c]
                found[c] = {"kind": kind, "encoding": self.strategy, "outputs": encoder.outputs}
            elif c in self.dropped_:
                found[c] = {"kind": kind, "encoding": "left out (identifier-like)", "outputs": []}
            else:
                found[c] = {"kind": kind, "encoding": "categorical (few levels)", "outputs": [c]}
        return found

    @property
    def high_cardinality(self) -> bool:
        """Whether any column is encoded by the strategy (else every strategy gives the same features)."""
        return bool(self.encoders_)

    @property
    def catalog(self) -> pd.DataFrame:
        """One row per feature, like :class:`features.pipeline.CaseFeatures`' catalog."""
        source = {out: c for c, e in self.encoders_.items() for out in e.outputs}
        kinds = ["categorical" if f in self.categorical_ else "numeric" for f in self.features_]
        return pd.DataFrame(
            {
                "feature": self.features_,
                "stage": "table",
                "kind": kinds,
                "source": [source.get(f, f if f in self.columns_ else "history") for f in self.features_],
            }
        )


def _is_count(values: pd.Series) -> bool:
    """A utilisation count (visits, emergency attendances): whole numbers >= 0, often zero.

    Ages, stay lengths and amounts are never zero or not whole, and their sums over earlier rows
    would only repeat the count of earlier rows.
    """
    number = pd.to_numeric(values, errors="coerce").dropna()
    if number.empty or (number < 0).any() or (number != np.round(number)).any():
        return False
    return bool((number == 0).mean() >= 0.05)


def _number(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()


def _encoding_target(y: pd.Series | None) -> pd.Series | None:
    """The label as target encoding sees it: 0/1, or a skewed amount on the log scale."""
    if y is None:
        return None
    y = pd.to_numeric(y, errors="coerce").astype("float64")
    if set(pd.unique(y.dropna())) <= {0.0, 1.0}:
        return y
    if (y >= 0).all() and y.skew() > 1:
        return np.log1p(y)
    return y


def choose_strategy(
    features: TableFeatures,
    inputs: dict[str, pd.DataFrame],
    target: pd.Series,
    history: pd.DataFrame | None,
    score: Callable[[dict[str, pd.DataFrame]], float],
    greater_is_better: bool,
    strategies: tuple[str, ...] = tuple(STRATEGIES),
) -> tuple[TableFeatures, dict[str, pd.DataFrame], dict[str, Any]]:
    """The encoding strategy that scores best on validation, its fitted features and every part encoded.

    ``score`` fits the task's estimator on ``X["train"]`` and returns its primary metric on
    ``X["validation"]``; the test part is encoded only once the choice is made.
    """
    scores: dict[str, float] = {}
    best: tuple[float, TableFeatures, dict[str, pd.DataFrame]] | None = None
    for strategy in strategies:
        candidate = clone(features).set_params(strategy=strategy)
        X = {
            "train": candidate.fit_transform(inputs["train"], target, history=history),
            "validation": candidate.transform(inputs["validation"], history=history),
        }
        if not candidate.high_cardinality:
            best = (np.nan, candidate, X)
            break
        value = score(X)
        scores[strategy] = value
        if best is None or (value > best[0] if greater_is_better else value < best[0]):
            best = (value, candidate, X)
    assert best is not None
    _, chosen, X = best
    X["test"] = chosen.transform(inputs["test"], history=history)
    report = {"strategy": chosen.strategy if scores else "none needed", "validation": scores}
    return chosen, X, report | {"columns": chosen.encodings}


def table_params(params: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The task's params with the ``[table.lightgbm]`` defaults (categorical regularisation) under them.

    The task's own ``lightgbm`` table wins, so a config that sets cat_smooth for a task keeps it.
    """
    defaults = config.get("table", {}).get("lightgbm", {})
    return {**params, "lightgbm": {**defaults, **params["lightgbm"]}}


def log_choices(choices: dict[str, Any]) -> None:
    """The run's table-mode choices: one param per column (``encoding.<column>``) and ``table.json``."""
    encoding = choices.get("encoding", {})
    flat = {"encoding.strategy": encoding.get("strategy")}
    for column, found in encoding.get("columns", {}).items():
        flat[f"encoding.{column}"] = f"{found['kind']}: {found['encoding']}"[:500]
    for key, value in choices.get("depth", {}).get("chosen", {}).items():
        flat[f"depth.{key}"] = value
    mlflow.log_params(flat)
    mlflow.set_tag("table.encoding", str(encoding.get("strategy")))
    mlflow.log_text(json.dumps(choices, indent=2, default=str), "table.json")
