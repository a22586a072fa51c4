"""The one point-in-time look-up against a plain loop: rules, ties, windows, unknown keys, NaT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.point_in_time import Timeline, as_of, day_numbers

MISSING = np.iinfo(np.int64).min


def _loop(
    event_keys: np.ndarray, event_times: np.ndarray, key: int, t: int, rule: str, lookback: int | None
) -> set[int]:
    """The rows an as-of look-up must return, one event at a time."""
    if t == MISSING:
        return set()
    found = set()
    for row, (k, s) in enumerate(zip(event_keys.tolist(), event_times.tolist(), strict=True)):
        known = s < t if rule == "before" else s <= t
        recent = lookback is None or s >= t - lookback
        if k == key and known and recent:
            found.add(row)
    return found


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rule", ["before", "at_or_before"])
@pytest.mark.parametrize("lookback", [None, 0, 3, 30])
def test_as_of_returns_exactly_the_events_a_loop_finds(seed: int, rule: str, lookback: int | None) -> None:
    rng = np.random.default_rng(seed)
    n_events, n_queries = int(rng.integers(0, 60)), 80
    # Few keys and a short span of days: many events share a key and a day (ties).
    event_keys = rng.integers(0, 5, n_events)
    event_times = rng.integers(19_000, 19_012, n_events)
    keys = rng.integers(-1, 7, n_queries)  # -1 unknown, 5 and 6 have no events
    times = rng.integers(18_990, 19_060, n_queries)  # before, inside and after the events' span
    times[rng.random(n_queries) < 0.1] = MISSING  # NaT
    timeline = Timeline.of(event_keys, event_times)
    lo, hi = as_of(timeline, keys, times, rule=rule, lookback=lookback)
    errors = rng.random(n_events)
    cumulative = timeline.cumulative(errors)
    for i in range(n_queries):
        expected = _loop(event_keys, event_times, int(keys[i]), int(times[i]), rule, lookback)
        assert set(timeline.order[lo[i] : hi[i]].tolist()) == expected, (i, keys[i], times[i])
        assert cumulative[hi[i]] - cumulative[lo[i]] == pytest.approx(sum(errors[j] for j in expected))
        assert np.array_equal(
            np.sort(timeline.time_at(np.arange(lo[i], hi[i]))), np.sort(event_times[list(expected)])
        )


def test_same_day_ties_count_together_whatever_the_input_order() -> None:
    keys = np.array([0, 0, 0, 1])
    times = day_numbers(pd.to_datetime(["2024-01-05", "2024-01-05", "2024-01-04", "2024-01-05"]))
    t = day_numbers(pd.to_datetime(["2024-01-05"]))
    for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
        timeline = Timeline.of(keys[order], times[order])
        lo, hi = as_of(timeline, np.array([0]), t, rule="at_or_before")
        assert (hi - lo).tolist() == [3]  # both events dated t and the one the day before
        lo, hi = as_of(timeline, np.array([0]), t, rule="before")
        assert (hi - lo).tolist() == [1]
        lo, hi = as_of(timeline, np.array([0]), t, rule="at_or_before", lookback=0)
        assert (hi - lo).tolist() == [2]


def test_no_events_and_bad_events_are_handled() -> None:
    empty = Timeline.of(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    lo, hi = as_of(empty, np.array([0, 3]), np.array([10, 20]), rule="before", lookback=5)
    assert (hi - lo).tolist() == [0, 0]
    with pytest.raises(ValueError, match="key >= 0"):
        Timeline.of(np.array([-1]), np.array([5]))
    with pytest.raises(ValueError, match="time"):
        Timeline.of(np.array([0]), day_numbers(pd.Series([pd.NaT])))
    with pytest.raises(ValueError, match="rule"):
        as_of(empty, np.array([0]), np.array([1]), rule="after")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lookback"):
        as_of(empty, np.array([0]), np.array([1]), rule="before", lookback=-1)
