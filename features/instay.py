"""Stays cut at the end of a day: the point-in-time in-stay frame and its feature transformer.

:func:`cut_stays` is the only reader of the daily tables (``charges``, ``inpatients``): for each cut
(a stay and a day) it takes the stay's latest in-stay record recorded on or before that day and sums
its charges up to that day, with :func:`features.point_in_time.as_of`'s ``at_or_before`` rule. Nothing
recorded after the day reaches the frame, so nothing built on it can leak; the feature views of
:mod:`features.instay_views` declare what they read of it, and their stage check refuses a discharge
field. :class:`InstayFeatures` puts the admission-stage features (and patient history) beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from casemix.pregroup import PREGROUP_COLUMNS, Pregrouper
from contract.errors import InputError
from contract.fields import COST_CATEGORIES
from contract.instay import CHARGES_TO_DATE, INSTAY_COLUMNS
from features.encoding import encode_levels, learn_levels
from features.history import StayIndex
from features.instay_views import INSTAY_VIEWS
from features.pipeline import CaseFeatures, feature_catalog
from features.point_in_time import Timeline, as_of, day_numbers
from features.view import FeatureContext, Table, table_column, table_index, table_length


def cut_stays(records: Table, charges: Table, cuts: Table) -> pd.DataFrame:
    """One row per cut (``case_id``, ``as_of_date``), same index: the stay as known at the day's end.

    Columns: the in-stay record's (``contract.instay.INSTAY_COLUMNS``), ``as_of_date``, ``day_of_stay``,
    the charges to date by group (``charges.<group>``), ``charges_to_date``, ``charges_last_day`` and
    ``charges_last_3_days``. A cut before its stay's first record is an error naming the row. Tables
    given as columns (:data:`Table`) give a frame indexed 0..n-1.
    """
    return pd.DataFrame(cut_columns(records, charges, cuts), index=table_index(cuts))


def cut_columns(records: Table, charges: Table, cuts: Table) -> dict[str, Any]:
    """:func:`cut_stays`'s columns by name (arrays, in order) before they make a frame: for a caller
    that puts more columns beside them in one frame (pre-grouping's: :meth:`InstayFeatures.pregroup`)."""
    ids = np.concatenate([table_column(t, "case_id").astype(object) for t in (records, charges, cuts)])
    keys = pd.factorize(ids)[0]
    n_records, n_charges = table_length(records), table_length(charges)
    record_keys = keys[:n_records]
    charge_keys = keys[n_records : n_records + n_charges]
    cut_keys, days = keys[n_records + n_charges :], day_numbers(table_column(cuts, "as_of_date"))

    recorded = Timeline.of(record_keys, day_numbers(table_column(records, "recorded_date")))
    lo, hi = as_of(recorded, cut_keys, days, rule="at_or_before")
    if (hi <= lo).any():
        row = int(np.flatnonzero(hi <= lo)[0])
        raise InputError(f"cut row {row}: no in-stay record of its stay on or before its as_of_date")
    taken = recorded.order[hi - 1]
    # Built as one frame from the columns' arrays: inserting the derived columns one by one cost a
    # one-stay request more than the arithmetic.
    columns: dict[str, Any] = {name: table_column(records, name).take(taken) for name in INSTAY_COLUMNS}
    columns["as_of_date"] = np.array(table_column(cuts, "as_of_date"), dtype="datetime64[ns]")  # (a copy)
    day = days - day_numbers(columns["admission_date"]) + 1
    if (day < 1).any():
        raise InputError(f"cut row {int(np.flatnonzero(day < 1)[0])}: as_of_date before admission_date")
    columns["day_of_stay"] = day

    charged = Timeline.of(charge_keys, day_numbers(table_column(charges, "charge_date")))
    amounts = np.empty((n_charges, len(COST_CATEGORIES)), dtype=np.float64)
    for k, name in enumerate(COST_CATEGORIES):
        amounts[:, k] = np.asarray(table_column(charges, name), dtype=np.float64)
    running = charged.cumulative(amounts)
    lo, hi = as_of(charged, cut_keys, days, rule="at_or_before")
    to_date = running[hi] - running[lo]
    for k, name in enumerate(CHARGES_TO_DATE):
        columns[name] = np.round(to_date[:, k], 2)
    columns["charges_to_date"] = np.round(to_date.sum(axis=1), 2)
    for name, lookback in (("charges_last_day", 0), ("charges_last_3_days", 2)):
        lo, hi = as_of(charged, cut_keys, days, rule="at_or_before", lookback=lookback)
        columns[name] = np.round((running[hi] - running[lo]).sum(axis=1), 2)
    return columns


def in_hospital(
    records: pd.DataFrame, as_of_date: pd.Timestamp, discharged: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The cuts (``case_id``, ``as_of_date``) of every stay in hospital at the end of ``as_of_date``:
    admitted by then, with a record by then, and not discharged by then (``discharged``: stored
    abstracts, ``case_id`` and ``discharge_date``)."""
    day = pd.Timestamp(as_of_date).normalize()
    known = records[(records["recorded_date"] <= day) & (records["admission_date"] <= day)]
    stays = pd.Index(known["case_id"].unique())
    if discharged is not None and len(discharged):
        out = discharged.loc[discharged["discharge_date"] <= day, "case_id"]
        stays = stays.difference(pd.Index(out), sort=False)
    return pd.DataFrame({"case_id": stays.to_numpy(dtype=object), "as_of_date": day})


def sample_cuts(cases: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One cut per discharged stay that spent a night in hospital: a day drawn uniformly from its days
    before discharge (a same-day stay is never in hospital at a day's end). Same index as ``cases``."""
    los = cases["los_days"].to_numpy(dtype=np.int64)
    keep = los >= 2
    day = 1 + np.floor(rng.random(int(keep.sum())) * (los[keep] - 1)).astype(np.int64)
    admitted = cases.loc[keep, "admission_date"].to_numpy(dtype="datetime64[ns]")
    return pd.DataFrame(
        {
            "case_id": cases.loc[keep, "case_id"].to_numpy(dtype=object),
            "as_of_date": admitted + ((day - 1) * np.timedelta64(1, "D")).astype("timedelta64[ns]"),
        },
        index=cases.index[keep],
    )


class InstayFeatures(TransformerMixin, BaseEstimator):
    """Features of stays cut at a day (:func:`cut_stays` frames): admission-stage views and history
    (:class:`features.pipeline.CaseFeatures`) and the in-stay views, pre-grouping included.

    ``rules`` are the payment rules pre-grouping prices with (None: the configured ones); their weights
    are taken at fit (the insurer's RW table, else calibrated on the ``history`` given to fit).
    """

    def __init__(self, rules: Any = None, min_category_count: int = 20) -> None:
        self.rules = rules
        self.min_category_count = min_category_count

    def fit(
        self, frame: pd.DataFrame, y: object = None, history: pd.DataFrame | None = None
    ) -> InstayFeatures:
        self.admission_ = CaseFeatures("admission", min_category_count=self.min_category_count).fit(frame)
        rules = self.rules if self.rules is not None else _configured_rules()
        self.weights_ = Pregrouper.for_rules(rules, history).weights
        raw = self._instay(frame)
        self.levels_ = {c: learn_levels(pd.Series(raw[c]), self.min_category_count) for c in _CATEGORICAL}
        self.feature_names_out_ = [*self.admission_.feature_names_out_, *raw]
        return self

    def transform(self, frame: Table, history: pd.DataFrame | StayIndex | None = None) -> pd.DataFrame:
        """One feature row per cut stay; stays given as columns (:data:`features.view.Table`, a
        request's) give a frame indexed 0..n-1."""
        check_is_fitted(self, "levels_")
        # One frame built from the columns' arrays, the admission features' included (no frame of
        # theirs, no concatenation: a one-stay request's cost is pandas' per-frame overhead).
        columns: dict[str, Any] = self.admission_.encoded_columns(frame, history=history)
        for name, column in self._instay(frame).items():
            levels = self.levels_.get(name)
            columns[name] = (
                encode_levels(column, levels) if levels is not None else np.asarray(column, dtype=np.float64)
            )
        return pd.DataFrame(columns, index=table_index(frame))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "levels_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def prepare(self) -> InstayFeatures:
        """Build the pre-grouper (its casemix engine and grouper) and the admission features' engine
        now rather than in the first stay scored: a service does it when the model loads."""
        check_is_fitted(self, "levels_")
        self.admission_.prepare()
        self._pregrouper()
        return self

    @property
    def catalog(self) -> pd.DataFrame:
        """One row per feature (feature, view, entity, stage, kind, sources, ...), admission first."""
        admission = CaseFeatures("admission").catalog
        return pd.concat([admission, feature_catalog(INSTAY_VIEWS)], ignore_index=True)

    def pregroup(self, frame: Table) -> Table:
        """``frame`` with the pre-grouping columns (computed when absent), as it was given: a frame,
        or cut stays as columns (:func:`cut_columns`, a request's: no frame built around them)."""
        if all(c in frame for c in PREGROUP_COLUMNS):
            return frame
        added = self._pregrouper().pregroup_columns(frame)
        if isinstance(frame, pd.DataFrame):  # its columns as they are, the new ones beside them
            return pd.concat([frame, pd.DataFrame(added, index=frame.index)], axis=1)
        return {**frame, **added}

    def _instay(self, frame: Table) -> dict[str, Any]:
        """The in-stay views' raw columns by name, in declaration order; each view reads the cut's
        columns it declares (:data:`features.view.Columns`, no frame of them)."""
        missing = [c for c in _SOURCES if c not in frame]
        if missing:
            raise InputError(f"in-stay rows lack column(s) {', '.join(missing)}: cut them first")
        cut = self.pregroup(frame)
        context = FeatureContext()
        read = {name: table_column(cut, name) for name in _READ}
        columns: dict[str, Any] = {}
        for view in INSTAY_VIEWS:
            columns |= view.compute({name: read[name] for name in view.sources}, context)
        return columns

    def _pregrouper(self) -> Pregrouper:
        """Built once per process from the rules and the fitted weights (the grouper is not pickled)."""
        if getattr(self, "_pregrouper_cache", None) is None:
            from casemix.engine import CasemixEngine

            rules = self.rules if self.rules is not None else _configured_rules()
            self._pregrouper_cache = Pregrouper(CasemixEngine(rules=rules), self.weights_)
        return self._pregrouper_cache

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_pregrouper_cache", None)
        return state


# What the in-stay views read of a cut frame (pre-grouping's columns are added when absent), and
# their categorical features: fixed by the declarations, so worked out once.
_READ = tuple(dict.fromkeys(s for v in INSTAY_VIEWS for s in v.sources))
_SOURCES = sorted(set(_READ) - set(PREGROUP_COLUMNS))
_CATEGORICAL = tuple(f.name for v in INSTAY_VIEWS for f in v.features if f.kind == "categorical")


def _configured_rules() -> Any:
    from casemix.payment import PaymentRules
    from contract.settings import get_settings

    return PaymentRules.load(get_settings().payment_config)
