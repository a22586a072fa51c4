"""``CaseFeatures``: the scikit-learn transformer every caselens model puts in front of its estimator.

It turns canonical cases (``contract.fields`` columns) into one LightGBM-ready row per case: the
registered feature views of its stage (:mod:`features.catalog`), history features computed point in
time (:mod:`features.history`), and category levels learned on the training cases only
(:mod:`features.encoding`). A view only ever sees the columns known at its stage, so an admission-stage
model cannot read a discharge field even by mistake, and a pre-admission request that has no
discharge columns at all is valid input. The fitted object is small and picklable: it goes inside the
MLflow pyfunc model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from contract.errors import ConfigError, InputError
from contract.fields import DERIVED_STAGE, FIELD_BY_NAME, STAGE_ORDER, Stage, fields_known_at, los_days
from features.catalog import VIEWS
from features.encoding import encode_levels, learn_levels, level_counts, levels_from_counts
from features.history import StayIndex
from features.view import Columns, FeatureContext, FeatureView, Table, table_column, table_index, table_length

EVENT_COLUMNS = (
    "case_id",
    "patient_id",
    "admission_date",
    "discharge_date",
    "total_cost",
    "los_days",
    "admission_source",
    "principal_diagnosis",
    "other_diagnoses",
)
# Fields no row can do without: they place a case in time and in its patient's history. Other
# required fields may be null in a row; their features are then missing (NaN), which models handle.
KEY_FIELDS = ("case_id", "patient_id", "admission_date", "discharge_date")
_NEEDS_PRIOR = ("patient_history", "comorbidity")
_NEEDS_TABLES = ("coding", "casemix")


class FeatureInputError(InputError):
    """Cases that cannot be turned into features; the message names the field and the row."""


def _known_columns(stage: Stage) -> tuple[str, ...]:
    derived = tuple(n for n, s in DERIVED_STAGE.items() if STAGE_ORDER[s] <= STAGE_ORDER[stage])
    return (*fields_known_at(stage), *derived)


def _dates(values: Any, index: pd.Index, name: str, what: str) -> np.ndarray:
    """A date column's array as ``datetime64[ns]``; text is parsed, and what is no date names its row."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # (a zone-aware column is refused by astype)
        if isinstance(values.dtype, np.dtype):
            return np.asarray(values, dtype="datetime64[ns]")
        return pd.Series(values, copy=False).astype("datetime64[ns]").to_numpy()
    values = pd.Series(values, copy=False)
    parsed = pd.to_datetime(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise FeatureInputError(f"{what}: {name} of row {_row(index, bad)} is not a date")
    return parsed.to_numpy(dtype="datetime64[ns]")


def _row(index: pd.Index, flags: pd.Series | np.ndarray) -> str:
    """The first flagged row, by position and index label (never by case or patient id)."""
    position = int(np.flatnonzero(np.asarray(flags))[0])
    return f"{position} (index {index[position]!r})"


def canonical_view(cases: Table, columns: tuple[str, ...], needed: set[str], what: str) -> pd.DataFrame:
    """``cases`` restricted to ``columns``: missing optional ones become nulls, dates parsed, los derived.

    A column in ``needed`` that the contract marks required must be present; key fields must also be
    non-null on every row.
    """
    return pd.DataFrame(canonical_columns(cases, columns, needed, what), index=table_index(cases), copy=True)


def canonical_columns(cases: Table, columns: tuple[str, ...], needed: set[str], what: str) -> dict[str, Any]:
    """:func:`canonical_view`'s columns by name (the feature views' input, :data:`features.view.Columns`),
    of cases given as a frame or as columns: the input's own arrays where nothing changes (not
    copies: views never change their input)."""
    present = set(cases.columns) if isinstance(cases, pd.DataFrame) else set(cases)
    n, index = table_length(cases), table_index(cases)
    missing = sorted(
        c for c in needed if c not in present and c in FIELD_BY_NAME and FIELD_BY_NAME[c].required
    )
    if missing:
        raise FeatureInputError(f"{what}: required column(s) missing: {', '.join(missing)}")
    # Column order: the present columns, then the absent ones.
    data: dict[str, Any] = {}
    for name in columns:
        if name in present:
            data[name] = table_column(cases, name)
    for name in ("admission_date", "discharge_date"):  # parsed in this order, as before
        if name in data:
            data[name] = _dates(data[name], index, name, what)
    for name in columns:
        if name not in present and name != "los_days":
            kind = FIELD_BY_NAME[name].kind
            if name in ("admission_date", "discharge_date"):
                data[name] = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
            elif kind in ("int", "float"):
                data[name] = np.full(n, np.nan)
            else:
                data[name] = np.full(n, None, dtype=object)
    for name in sorted(needed & set(data) & set(KEY_FIELDS)):
        flags = pd.isna(data[name])
        if flags.any():
            raise FeatureInputError(f"{what}: {name} is missing in row {_row(index, flags)}")
    if "discharge_date" in data:
        early = data["discharge_date"] < data["admission_date"]
        if early.any():
            raise FeatureInputError(
                f"{what}: discharge_date is before admission_date in row {_row(index, early)}"
            )
        if "los_days" in columns and "los_days" not in data:
            stay = los_days(data["admission_date"], data["discharge_date"])
            data["los_days"] = stay.astype("Int64").array
    return data


def event_frame(cases: Table, what: str) -> pd.DataFrame:
    """The columns of ``cases`` the history builder reads about discharged stays (nulls where absent)."""
    return canonical_view(cases, EVENT_COLUMNS, {"case_id", "patient_id", "admission_date"}, what)


class CaseFeatures(TransformerMixin, BaseEstimator):
    """Point-in-time features of canonical cases for one stage (``admission`` or ``discharge``).

    ``tables`` is a :class:`casemix.tables.CasemixTables` (None: the configured default);
    ``weights`` a DataFrame of DRG relative weights (``drg``, ``rw``) calibrated on training data only;
    category levels seen fewer than ``min_category_count`` times in training become "other";
    ``exclude`` names views or features to leave out (e.g. ``("costs",)`` when cost is the label).
    """

    def __init__(
        self,
        stage: Stage = "discharge",
        tables: Any = None,
        weights: pd.DataFrame | None = None,
        min_category_count: int = 20,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.stage = stage
        self.tables = tables
        self.weights = weights
        self.min_category_count = min_category_count
        self.exclude = exclude

    # -- public API ------------------------------------------------------------------------------

    def fit(self, cases: pd.DataFrame, y: object = None, history: pd.DataFrame | None = None) -> CaseFeatures:
        """Learn category levels from the training ``cases`` (history features are not needed for that)."""
        views = [v for v in self._views() if any(f.kind == "categorical" for f in v.features)]
        self._learn(self._raw(cases, history, views))
        return self

    def fit_transform(
        self, cases: pd.DataFrame, y: object = None, history: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        raw = self._raw(cases, history, self._views())
        self._learn(raw)
        return self._encode(raw)

    def transform(self, cases: Table, history: pd.DataFrame | StayIndex | None = None) -> pd.DataFrame:
        """One feature row per case, same index and order; ``history``: other canonical stays as context
        (or a :class:`features.history.StayIndex` prepared over them).

        History rows only describe the patients' earlier stays; they get no feature row. A case present
        in both frames is taken from ``cases``. Cases given as columns (:data:`features.view.Table`)
        give a frame indexed 0..n-1.
        """
        return pd.DataFrame(self.encoded_columns(cases, history), index=table_index(cases))

    def encoded_columns(
        self, cases: Table, history: pd.DataFrame | StayIndex | None = None
    ) -> dict[str, Any]:
        """:meth:`transform`'s columns by name (arrays, in order) before they make a frame: for a
        transformer that puts its own features beside them in one frame (``InstayFeatures``)."""
        check_is_fitted(self, "levels_")
        parts = self._parts(cases, history, self._views())
        # Encoded straight from the views' columns: the same columns as ``_encode(_raw(...))``
        # without a frame of them first.
        return self._encoded({name: column for part in parts for name, column in part.items()})

    def category_counts(self, cases: pd.DataFrame) -> dict[str, pd.Series]:
        """How often each level of each categorical feature occurs in ``cases``: what ``fit`` learns from.

        Counts of parts of the cases add up (``pd.concat(...).groupby(level=0).sum()``), so a cluster
        learns the levels of the whole store from its partitions (:meth:`fit_counts`).
        """
        views = [v for v in self._views() if any(f.kind == "categorical" for f in v.features)]
        raw = self._raw(cases, None, views)
        categorical = set(self.catalog.query("kind == 'categorical'")["feature"])
        return {c: level_counts(raw[c]) for c in raw.columns if c in categorical}

    def fit_counts(self, counts: dict[str, pd.Series]) -> CaseFeatures:
        """Fit from :meth:`category_counts` (summed over parts): the same levels ``fit`` learns."""
        self.levels_ = {c: levels_from_counts(n, self.min_category_count) for c, n in counts.items()}
        self.feature_names_out_ = self._names(self._views())
        return self

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "levels_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def prepare(self) -> CaseFeatures:
        """Build the casemix engine now when a view groups or reads the tables (it is built on first
        use otherwise): a service does it when the model loads, not in a request."""
        if {v.name for v in self._views()} & set(_NEEDS_TABLES):
            self._casemix()
        return self

    @property
    def catalog(self) -> pd.DataFrame:
        """One row per feature: feature, view, entity, stage, kind, sources, prior_sources, zh, en."""
        catalog = feature_catalog(self._views())
        return catalog[~catalog["feature"].isin(self.exclude)].reset_index(drop=True)

    # -- internals -------------------------------------------------------------------------------

    def _views(self) -> list[FeatureView]:
        if self.stage not in ("admission", "discharge"):
            raise ConfigError(f"stage must be 'admission' or 'discharge', not {self.stage!r}")
        unknown = (
            set(self.exclude)
            - {v.name for v in VIEWS.at("discharge")}
            - {f.name for v in VIEWS.at("discharge") for f in v.features}
        )
        if unknown:
            raise ConfigError(f"exclude names no view or feature: {sorted(unknown)}")
        views = [v for v in VIEWS.at(self.stage) if v.name not in self.exclude]
        if not views:
            raise ConfigError(f"exclude leaves no feature view: {sorted(self.exclude)}")
        return views

    def _names(self, views: list[FeatureView]) -> list[str]:
        return [n for v in views for n in v.names if n not in self.exclude]

    def _raw(
        self, cases: pd.DataFrame, history: pd.DataFrame | None, views: list[FeatureView]
    ) -> pd.DataFrame:
        parts = self._parts(cases, history, views)
        columns = {
            name: column for part in parts for name, column in part.items() if name not in self.exclude
        }
        return pd.DataFrame(columns, index=table_index(cases))

    def _parts(
        self, cases: Table, history: pd.DataFrame | StayIndex | None, views: list[FeatureView]
    ) -> list[Columns]:
        """Each view's raw columns (declared names, in order, one value per case)."""
        if not isinstance(cases, pd.DataFrame | Mapping):
            raise FeatureInputError(
                f"cases must be a pandas DataFrame or columns, not {type(cases).__name__}"
            )
        n = table_length(cases)
        names = {v.name for v in views}
        needed = {s for v in views for s in v.sources}
        if names & set(_NEEDS_PRIOR):
            needed |= {"case_id", "patient_id", "admission_date"}
        inputs = {  # each stage's columns, what its views read
            stage: canonical_columns(
                cases, _known_columns(stage), needed & set(_known_columns(stage)), "cases"
            )
            for stage in {v.stage for v in views}
        }
        context = FeatureContext(
            prior=self._prior(next(iter(inputs.values())), cases, history)
            if names & set(_NEEDS_PRIOR)
            else None,
            tables=self._tables() if names & set(_NEEDS_TABLES) else None,
            casemix=self._casemix() if "casemix" in names else None,
            weights=self.weights,
        )
        parts = []
        for view in views:
            part = view.compute(inputs[view.stage], context)
            if list(part) != view.names:
                raise RuntimeError(f"view '{view.name}' returned columns {list(part)}, not its declaration")
            short = next((name for name in view.names if len(part[name]) != n), None)
            if short is not None:
                raise RuntimeError(
                    f"view '{view.name}' returned {len(part[short])} rows of '{short}', not {n}"
                )
            parts.append(part)
        return parts

    def _prior(self, visible: Columns, cases: Table, history: pd.DataFrame | StayIndex | None) -> Columns:
        """History features of ``visible``; ``history`` is cut to its patients, so a one-case request
        against the whole store costs that patient's stays, not the store's.

        A prepared :class:`StayIndex` is looked up as it is: it must hold every stay that counts,
        the cases' own earlier stays included (the service's index over its case store, for requests
        of one case per patient).
        """
        n = table_length(cases)
        repeated = pd.Index(visible["case_id"]).duplicated() if n > 1 else np.zeros(n, bool)
        if repeated.any():
            raise FeatureInputError(
                f"cases: case_id of row {_row(table_index(cases), repeated)} repeats an earlier row"
            )
        if isinstance(history, StayIndex):
            return history.feature_columns(visible)
        events = [event_frame(cases, "cases")]
        if history is not None:
            if "patient_id" in history.columns:
                mine = history["patient_id"].isin(visible["patient_id"]).to_numpy()
                if not mine.all():  # (a history already cut to these patients is used as it is)
                    history = history[mine]
            events.append(event_frame(history, "history"))
        # ``visible`` serves as the queries as it is: the index reads only its case_id, patient_id
        # and admission_date columns.
        return StayIndex(pd.concat(events, ignore_index=True)).feature_columns(visible)

    def _tables(self) -> Any:
        return self._casemix().tables

    def _casemix(self) -> Any:
        """The casemix engine of these tables and the settings' payment rules, built once per process
        (its grouper is shared, see ``casemix.engine``) and never pickled."""
        if getattr(self, "_casemix_engine", None) is None:
            from casemix.engine import CasemixEngine

            self._casemix_engine = CasemixEngine.from_settings(tables=self.tables)
        return self._casemix_engine

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_casemix_engine", None)
        return state

    def _learn(self, raw: pd.DataFrame) -> None:
        categorical = set(self.catalog.query("kind == 'categorical'")["feature"])
        self.levels_ = {
            c: learn_levels(raw[c], self.min_category_count) for c in raw.columns if c in categorical
        }
        self.feature_names_out_ = self._names(self._views())

    def _encode(self, raw: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self._encoded(raw), index=raw.index)

    def _encoded(self, raw: Any) -> dict[str, Any]:
        """The model's columns (name -> array) from raw feature columns (a frame or :data:`Columns`)."""
        out: dict[str, Any] = {}
        for name in self.feature_names_out_:
            levels = self.levels_.get(name)
            column = raw[name]
            out[name] = (
                encode_levels(column, levels) if levels is not None else np.asarray(column, np.float64)
            )
        return out


def feature_catalog(views: list[FeatureView]) -> pd.DataFrame:
    """The declared features of ``views``, one row each, for documentation and explanations."""
    rows = [
        {
            "feature": f.name,
            "view": v.name,
            "entity": v.entity,
            "stage": v.stage,
            "kind": f.kind,
            "sources": ", ".join(f.sources),
            "prior_sources": ", ".join(f.prior_sources),
            "zh": f.zh,
            "en": f.en,
        }
        for v in views
        for f in v.features
    ]
    return pd.DataFrame(rows)
