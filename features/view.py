"""The feature-view framework: a feature declared with its entity, stage, source fields and names.

Like a Feast feature view, a :class:`FeatureView` groups features of one entity that become known at
one moment (``stage``, from :mod:`contract.fields`) and says which contract fields each feature is
computed from. Declaring a feature whose own-case source is recorded later than its view's stage fails
at construction, so a leaking declaration cannot even be imported. History features also name
``prior_sources``: fields of the patient's *earlier* stays, which the point-in-time builder
(:mod:`features.history`) only reads once those stays are discharged.

Each view carries a pure ``compute(cases, context)`` function: ``cases`` holds only the columns known
at the view's stage (missing optional fields as nulls), and the result has exactly the declared
columns, one value per case, raw (category features as text; :mod:`features.encoding` limits them).
Both are :data:`Columns`, a table by column name rather than a frame: the framework assembles one
frame from every view's columns, where a frame per view (and Series per column read) was pandas'
fixed cost per call, which a single served case pays in full. A view must not change its input.
The declared views themselves are in :mod:`features.catalog`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from contract.errors import ConfigError
from contract.fields import DERIVED_STAGE, FIELD_BY_NAME, STAGE_ORDER, Stage
from contract.instay import table_field_stage

Kind = Literal["numeric", "categorical"]
Entity = Literal["case", "patient"]


class FeatureStageError(ConfigError):
    """A feature declared at a stage earlier than one of its source fields becomes known."""


@dataclass(frozen=True)
class Feature:
    name: str
    zh: str
    en: str
    sources: tuple[str, ...]
    kind: Kind = "numeric"
    prior_sources: tuple[str, ...] = ()


Columns = Mapping[str, Any]
"""A table by column name: 1-d arrays (NumPy or pandas extension arrays) of one length, the cases'
order. A frame reads the same way (its Series are arrays to NumPy), so a view may be given one."""

Table = pd.DataFrame | Columns
"""Rows given as a frame or as :data:`Columns`: a request's few rows go through the features (and
the in-stay cut and pre-grouping) without a frame built around them, whose cost they would pay in
full; columns read as rows 0..n-1."""


FEW_ROWS = 16
"""Up to this many rows (a request's), values are looked up one by one rather than through a pandas
or vectorised call: those calls' fixed cost, not the work, was most of a one-stay answer. Every place
that takes this path is tested to give what the general path gives."""


def table_column(table: Table, name: str) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """A column's own array (a frame's without its Series: pandas' per-call cost, not the work)."""
    return table[name].array if isinstance(table, pd.DataFrame) else table[name]


def table_length(table: Table) -> int:
    """The number of rows (of a frame, or of its first column)."""
    return len(table) if isinstance(table, pd.DataFrame) else len(next(iter(table.values()), ()))


def table_index(table: Table) -> pd.Index:
    """A frame's index; 0..n-1 for columns."""
    return table.index if isinstance(table, pd.DataFrame) else pd.RangeIndex(table_length(table))


@dataclass(frozen=True)
class FeatureContext:
    """What a view may read besides the case's own fields."""

    prior: Columns | None = None  # the cases' history features (``StayIndex.feature_columns``)
    stays: pd.DataFrame | None = None  # stored stays, for views reading earlier cases' own fields
    tables: Any = None  # casemix.tables.CasemixTables
    casemix: Any = None  # casemix.engine.CasemixEngine over those tables
    weights: pd.DataFrame | None = None  # drg -> rw


Compute = Callable[[Columns, FeatureContext], Columns]


def field_stage(name: str) -> Stage:
    """The stage a contract field (or derived column) becomes known."""
    if name in DERIVED_STAGE:
        return DERIVED_STAGE[name]
    if (other_table := table_field_stage(name)) is not None:  # charges.<group>, in-stay columns
        return other_table
    if name not in FIELD_BY_NAME:
        raise FeatureStageError(f"'{name}' is not a field of contract.fields")
    return FIELD_BY_NAME[name].stage


STAGE_TIMESTAMP: dict[str, str] = {
    "admission": "admission_date",
    "discharge": "discharge_date",
    "settlement": "settlement_date",
    "audit": "audit_date",
}


@dataclass(frozen=True)
class FeatureView:
    """Features of one entity known at one stage, as of the case's ``timestamp`` field.

    ``timestamp`` (default: the stage's date, e.g. ``discharge_date``) is the time the view's
    point-in-time reads of earlier records are as of; it must itself be known at the stage.
    ``shared=False`` marks a view one model's transformer joins itself (``coding_audit`` needs a
    fitted RW table): it is registered, so the stage check, name uniqueness and the catalogue cover
    it, but :class:`features.pipeline.CaseFeatures` does not join it.
    """

    name: str
    entity: Entity
    stage: Stage
    description: str
    features: tuple[Feature, ...]
    compute: Compute
    timestamp: str = ""
    shared: bool = True

    def __post_init__(self) -> None:
        limit = STAGE_ORDER[self.stage]
        if not self.timestamp:
            object.__setattr__(self, "timestamp", STAGE_TIMESTAMP[self.stage])
        if STAGE_ORDER[field_stage(self.timestamp)] > limit:
            raise FeatureStageError(
                f"view '{self.name}' ({self.stage}) is timed by '{self.timestamp}', "
                f"which is only known at {field_stage(self.timestamp)}"
            )
        for feature in self.features:
            for source in (*feature.sources, *feature.prior_sources):
                known = field_stage(source)
                if source in feature.sources and STAGE_ORDER[known] > limit:
                    raise FeatureStageError(
                        f"feature '{feature.name}' of view '{self.name}' ({self.stage}) reads '{source}', "
                        f"which is only known at {known}"
                    )

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for f in self.features for s in f.sources))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


class ViewRegistry(dict[str, FeatureView]):
    """Views by name, in declaration order: the catalogue's (:mod:`features.catalog`), then a model's own."""

    def register(self, view: FeatureView) -> FeatureView:
        """Add ``view``; its name and feature names must be unique across the registry."""
        taken = {f.name for v in self.values() for f in v.features}
        clash = taken & set(view.names)
        if view.name in self or clash:
            raise ConfigError(f"view '{view.name}' repeats a registered name: {sorted(clash) or view.name}")
        self[view.name] = view
        return view

    def at(self, stage: Stage) -> list[FeatureView]:
        """The shared views usable at ``stage``: its own and every earlier stage's, in declaration order."""
        return [v for v in self.values() if v.shared and STAGE_ORDER[v.stage] <= STAGE_ORDER[stage]]
