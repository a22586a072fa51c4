"""The one point-in-time look-up: which earlier events of the same key were known at a given time.

Patient history (earlier stays known at admission), LACE's emergency visits, the readmission label's
follow-up window and a coder's audited error history all ask the same question: *for each query
(key, t), which events of that key have a time in a window ending at t?* They ask it here, so the
rule is written, and tested, once.

The rule of :func:`as_of`, exactly:

- An event is **known at t** when its time (the moment it was recorded: a stay's discharge day, an
  audit's date) is ``< t`` (``rule="before"``) or ``<= t`` (``rule="at_or_before"``). Times are whole
  days (the abstracts' dates carry no time of day), so the rule decides same-day ties: with
  ``"before"`` no event dated t counts, with ``"at_or_before"`` every event dated t counts; events
  sharing a time always count or not together, whatever their order in the input.
- With a ``lookback`` of L days the event's time must also be ``>= t - L`` (both ends inclusive for
  ``"at_or_before"``: the window [t - L, t]; [t - L, t) for ``"before"``).
- Only events of the query's own key count; a query whose key is negative (unknown) or whose time is
  missing (NaT) sees none. A query never "is" an event here: a caller whose queries are also events
  (a case's own stay) removes its own row itself.

A :class:`Timeline` sorts the events once by (key, time); each look-up is two binary searches per
query, so a million queries take well under a second and a single request costs microseconds (the
service's ``StayIndex`` looks up one patient per request on it). The answer is a half-open range of
positions in the timeline's order, so counts are ``hi - lo`` and sums are differences of
:meth:`Timeline.cumulative` sums: no groupby, no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Rule = Literal["before", "at_or_before"]
_MISSING_DAY = np.iinfo(np.int64).min  # what NaT becomes as an int64 day number
_LARGEST_CODE = np.int64(1 << 62)


def day_numbers(dates: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Dates as int64 days since 1970-01-01 (time of day dropped); NaT becomes ``int64`` min."""
    return np.asarray(dates, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class Timeline:
    """Events sorted once by (key, time) for any number of :func:`as_of` look-ups.

    ``keys`` are integer blocks >= 0 (a factorized patient, coder, patient-ADRG pair); ``times`` are
    integer days (:func:`day_numbers`). Events must have a time: drop undated ones before.
    """

    order: np.ndarray  # event rows in (key, time) order; ties keep their input order
    codes: np.ndarray  # key * stride + (time - origin), sorted
    origin: int
    stride: int  # > the largest time offset + 1, so offsets -1 and span + 1 are never an event's

    @classmethod
    def of(cls, keys: np.ndarray, times: np.ndarray) -> Timeline:
        keys = np.asarray(keys, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        if keys.shape != times.shape or keys.ndim != 1:
            raise ValueError(f"keys and times must be 1-D of one length, not {keys.shape} and {times.shape}")
        if len(keys) and (keys.min() < 0 or (times == _MISSING_DAY).any()):
            raise ValueError("events need a key >= 0 and a time (drop undated events first)")
        origin = int(times.min()) if len(times) else 0
        span = int(times.max()) - origin if len(times) else 0
        stride = span + 2
        if len(keys) and (int(keys.max()) + 1) * stride >= _LARGEST_CODE:
            raise ValueError(f"{int(keys.max()) + 1} keys over {span} days do not fit one int64 code")
        codes = keys * stride + (times - origin)
        order = np.argsort(codes, kind="stable")
        return cls(order=order, codes=codes[order], origin=origin, stride=stride)

    def __len__(self) -> int:
        return len(self.order)

    def cumulative(self, values: np.ndarray) -> np.ndarray:
        """Running sums of ``values`` (one row per event, input order) along the timeline, from a
        leading zero row: the sum over positions [lo, hi) is ``cum[hi] - cum[lo]``."""
        values = np.asarray(values)
        out = np.zeros((len(self.order) + 1, *values.shape[1:]), dtype=values.dtype)
        np.cumsum(values[self.order], axis=0, out=out[1:])
        return out

    def time_at(self, positions: np.ndarray) -> np.ndarray:
        """The times of the events at ``positions`` of the timeline's order."""
        return self.codes[positions] % self.stride + self.origin

    def _search(self, keys: np.ndarray, times: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        # Clipping the offset to [-1, span + 1] keeps every query inside its own key's block: no event
        # has those offsets, and NaT (int64 min) clips to -1 without overflowing.
        offset = np.clip(times, self.origin - 1, self.origin + self.stride - 1) - self.origin
        return np.searchsorted(self.codes, keys * self.stride + offset, side=side)


def as_of(
    events: Timeline,
    keys: np.ndarray,
    times: np.ndarray,
    *,
    rule: Rule,
    lookback: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the positions [lo, hi) in ``events.order`` of the events known at its time.

    ``keys``/``times``: one per query, on the scale of the timeline's (see the module's rule).
    Returns ``(lo, hi)`` int arrays: ``events.order[lo[i]:hi[i]]`` are the event rows of query i.
    """
    if rule not in ("before", "at_or_before"):
        raise ValueError(f"rule must be 'before' or 'at_or_before', not {rule!r}")
    if lookback is not None and lookback < 0:
        raise ValueError(f"lookback must be >= 0 days, not {lookback}")
    keys = np.asarray(keys, dtype=np.int64)
    times = np.asarray(times, dtype=np.int64)
    missing = times == _MISSING_DAY
    if missing.any():
        keys = np.where(missing, -1, keys)
    hi = events._search(keys, times, "right" if rule == "at_or_before" else "left")
    if lookback is None:
        lo = np.searchsorted(events.codes, keys * events.stride, side="left")
    else:
        # Subtract after clipping to a range wider than the timeline by the lookback: exact inside it,
        # and a query beyond it finds no event either way.
        floor = np.clip(times, events.origin - lookback - 2, events.origin + events.stride + lookback)
        lo = events._search(keys, floor - lookback, "left")
    return lo, hi
