"""Point-in-time patient history: what the hospital knew about a patient's earlier stays at admission.

A case admitted on day t sees an earlier stay of the same patient only once that stay is discharged:
a prior stay counts when ``prior.discharge_date <= t`` (same-day rule: a stay discharged on the day of
the new admission counts, dates carry no time of day) and a case never counts for itself. Everything
a prior stay contributes (its cost, length of stay, codes, whether it was itself a readmission) was
recorded by its discharge, so it is known at t.

Emergency-department visits are not in the inpatient abstracts; "ED visits" here are earlier
admissions through the emergency route (``admission_source`` 1, 急诊).

The computation is vectorised: prior stays are looked up with :func:`features.point_in_time.as_of`
(rule ``at_or_before`` on the discharge day) and sums are differences of cumulative sums along its
timeline. No groupby, no per-patient loop, so a million cases take seconds, and the result depends
only on the rows given (a Dask partition holding whole patients gives the same answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.comorbidity import bits_mask, condition_masks, mask_bits
from features.point_in_time import Timeline, as_of, day_numbers
from features.view import FEW_ROWS

WINDOWS: tuple[int, ...] = (90, 365)
READMISSION_DAYS = 30
EMERGENCY_SOURCE = 1


def _own_inside(
    query_self: np.ndarray, event_days: np.ndarray, days: np.ndarray, lookback: int | None
) -> np.ndarray:
    """Whether a query's own stay is among the events it sees (so that it can be subtracted)."""
    has_self = query_self >= 0
    own = np.full(len(query_self), np.iinfo(np.int64).max, dtype=np.int64)
    own[has_self] = event_days[query_self[has_self]]
    inside = has_self & (own <= days)
    return inside if lookback is None else inside & (own >= days - lookback)


def _days_since_last(
    timeline: Timeline,
    patient: np.ndarray,
    days: np.ndarray,
    seen: tuple[np.ndarray, np.ndarray],
    self_seen: np.ndarray,
) -> np.ndarray:
    """Days from the latest counted discharge to the query day (NaN when there is none).

    ``seen`` is the queries' all-time ``as_of(..., rule="at_or_before")`` range, already looked up.
    """
    start, at_or_before = seen
    _, before = as_of(timeline, patient, days, rule="before")
    same_day = (at_or_before - before) - self_seen.astype(np.int64)
    gap = np.full(len(days), np.nan)
    earlier = before > start
    last = timeline.time_at(before[earlier] - 1)
    gap[earlier] = (days[earlier] - last).astype(np.float64)
    gap[same_day > 0] = 0.0
    return gap


def _own(values: np.ndarray, query_self: np.ndarray) -> np.ndarray:
    """Each query's own event row of ``values`` (zeros when its stay is not among the events)."""
    out = np.zeros((len(query_self), *values.shape[1:]), dtype=values.dtype)
    has_self = query_self >= 0
    out[has_self] = values[query_self[has_self]]
    return out


def history_features(queries: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """History features of each query stay from the discharged stays in ``events``.

    ``queries``: case_id, patient_id, admission_date (one row per case to describe).
    ``events``: canonical stays with case_id, patient_id, admission_date, discharge_date, total_cost,
    los_days, admission_source, principal_diagnosis, other_diagnoses; stays without a discharge date
    are ignored. A query's own stay may be among the events: it is never counted.
    Returns one row per query (same index): ``prior_admissions``, per window the ``prior_*_{W}d`` counts
    and sums, ``days_since_last_discharge`` (NaN when none), and ``prior_condition_mask`` (Charlson
    conditions seen in counted stays, as a bit mask).
    """
    return StayIndex(events).features(queries)


class StayIndex:
    """Discharged stays sorted and summed once, for any number of point-in-time history look-ups.

    Building it costs a pass over the stays; a look-up costs binary searches per query. The service
    builds one over its case store and looks up each request's patient in it (the Feast "online"
    counterpart of the training join), rather than re-deriving the patient's stays per request.
    """

    def __init__(self, events: pd.DataFrame) -> None:
        # Discharged stays, each case once (its first row): one positional take instead of a boolean
        # filter then drop_duplicates, and none at all when every row is kept.
        discharged = np.flatnonzero(events["discharge_date"].notna().to_numpy())
        first = ~pd.Index(events["case_id"].to_numpy()[discharged]).duplicated(keep="first")
        rows = discharged[first]
        if len(rows) != len(events):
            events = events.iloc[rows]
        # The stays themselves, for the features that read more than the sums below (the coding
        # audits of a coder's earlier cases): a reference, not a copy, when every row is kept.
        self.stays = events
        codes, patients = pd.factorize(events["patient_id"])
        self.patients = pd.Index(patients)
        self.cases = pd.Index(events["case_id"].to_numpy())
        event_patient = codes.astype(np.int64)
        self.event_days = day_numbers(events["discharge_date"])
        self.timeline = Timeline.of(event_patient, self.event_days)

        # Whether each event was itself a readmission: admitted within 30 days of an earlier discharge.
        admitted = day_numbers(events["admission_date"])
        own_seen = self.event_days == admitted  # a stay seen by its own admission: discharged that day
        event_seen = as_of(self.timeline, event_patient, admitted, rule="at_or_before")
        event_gap = _days_since_last(self.timeline, event_patient, admitted, event_seen, own_seen)
        readmission = (event_gap <= READMISSION_DAYS).astype(np.int64)
        emergency = (pd.to_numeric(events["admission_source"], errors="coerce") == EMERGENCY_SOURCE).to_numpy(
            np.int64
        )
        # Integers (money in fen, 分): the window sums below are differences of running sums over every
        # patient's stays, exact in integers, whereas in floats they would carry rounding from the
        # stays of patients sorted before this one (a case's history must depend on its patient only).
        cost = np.round(_filled(events["total_cost"], 0.0) * 100).astype(np.int64)
        los = np.round(_filled(events["los_days"], 0)).astype(np.int64)
        self.conditions = mask_bits(
            condition_masks(events["principal_diagnosis"], events["other_diagnoses"])
        ).astype(np.int32)
        self.per_event = np.column_stack(
            [np.ones(len(events), dtype=np.int64), cost, los, readmission, emergency]
        ).astype(np.int64)
        self.cum = self.timeline.cumulative(self.per_event)
        self.cum_conditions = self.timeline.cumulative(self.conditions)

    def features(self, queries: pd.DataFrame) -> pd.DataFrame:
        """The history features of each query (see :func:`history_features`), same index.

        A query whose patient has no stay here has no history; a query admitted before the earliest
        stay here sees none of them.
        """
        return pd.DataFrame(self.feature_columns(queries), index=queries.index)

    def feature_columns(self, queries: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """:meth:`features` by column name, of queries given by column (``case_id``, ``patient_id``,
        ``admission_date``) or as a frame: what the feature views read, with no frame around it."""
        patient = _positions(self.patients, queries["patient_id"]).astype(np.int64)
        days = day_numbers(queries["admission_date"])
        query_self = _positions(self.cases, queries["case_id"])
        query_self[patient < 0] = -1
        timeline = self.timeline

        start, hi = seen = as_of(timeline, patient, days, rule="at_or_before")
        out: dict[str, np.ndarray] = {}
        self_ever = _own_inside(query_self, self.event_days, days, None)
        out["prior_admissions"] = (hi - start) - self_ever
        for window in WINDOWS:
            lo, within = as_of(timeline, patient, days, rule="at_or_before", lookback=window)
            inside = _own_inside(query_self, self.event_days, days, window)
            sums = self.cum[within] - self.cum[lo] - _own(self.per_event, query_self) * inside[:, None]
            out[f"prior_admissions_{window}d"] = sums[:, 0]
            out[f"prior_cost_{window}d"] = sums[:, 1] / 100
            out[f"prior_los_days_{window}d"] = sums[:, 2]
            out[f"prior_readmissions_{window}d"] = sums[:, 3]
            out[f"prior_emergency_admissions_{window}d"] = sums[:, 4]
        out["days_since_last_discharge"] = _days_since_last(timeline, patient, days, seen, self_ever)
        own = _own(self.conditions, query_self) * self_ever[:, None]
        seen_conditions = self.cum_conditions[hi] - self.cum_conditions[start] - own
        columns: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
        columns["prior_condition_mask"] = bits_mask(seen_conditions)
        return columns


def _positions(index: pd.Index, values: Any) -> np.ndarray:
    """Each value's position in ``index`` (unique), -1 when absent: a request's few values looked up
    one by one (``get_indexer``'s fixed cost per call was most of a one-stay look-up)."""
    if len(values) > FEW_ROWS:
        return index.get_indexer(values)
    out = np.full(len(values), -1, dtype=np.intp)
    for i, value in enumerate(values):
        try:
            out[i] = index.get_loc(value)
        except (KeyError, TypeError):
            continue
    return out


def _filled(values: pd.Series, fill: float) -> np.ndarray:
    """Numbers as float64 with missing (or non-numeric) values ``fill``."""
    if values.dtype == np.float64:  # already numbers: skip the conversions, same result
        out = values.to_numpy(dtype=np.float64, copy=True)
        out[np.isnan(out)] = fill
        return out
    return pd.to_numeric(values, errors="coerce").fillna(fill).to_numpy(np.float64)
