"""`caselens train --all` groups each stored case once: every task's labels, every feature view and the
coder's what-ifs ask the one casemix engine, which remembers what it grouped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pandas as pd
import pytest

from casemix.cases import CANONICAL_INPUT_COLUMNS, NUMBER_COLUMNS
from casemix.engine import forget_groupings
from casemix.grouper import Grouper
from models.tasks import all_tasks
from pipelines.store import read_cases, write_cases
from pipelines.training.data import case_data
from pipelines.training.run import train

pytestmark = pytest.mark.slow


def content(frame: pd.DataFrame, case_id: bool = True) -> pd.Series:
    """Each row's case_id and what the grouper reads, as text whatever the columns' dtypes."""
    parts = [frame["case_id"].astype(str)] if case_id else []
    for column in CANONICAL_INPUT_COLUMNS:
        values = frame[column] if column in frame.columns else pd.Series(None, index=frame.index)
        if column in NUMBER_COLUMNS:
            values = pd.to_numeric(values, errors="coerce").astype("float64")
        parts.append(values.astype(object).where(values.notna(), "").astype(str))
    return pd.concat(parts, axis=1).agg("\t".join, axis=1)


@pytest.fixture
def grouped_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """How often the grouper saw each (case_id, grouper input) of the frames it was given with a
    case_id; the what-if variants and corrected codes carry none, or other codes, and do not count."""
    seen: Counter = Counter()
    group_frame = Grouper.group_frame

    def counted(self: Grouper, cases: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        if "case_id" in cases.columns:
            seen.update(content(cases))
        return group_frame(self, cases, **kwargs)

    forget_groupings()  # the demo generator grouped these cases already: start from an empty memo
    monkeypatch.setattr(Grouper, "group_frame", counted)
    yield seen
    forget_groupings()


def test_train_all_groups_each_stored_case_once(tracking, config, grouped_rows) -> None:
    from pipelines.demo import generate_demo

    hospital = generate_demo(1500, 2, 11)
    write_cases(hospital.cases, tracking.store_dir)
    forget_groupings()
    grouped_rows.clear()
    # The in-stay task trains on the daily tables, not on the stored abstracts alone.
    tasks = sorted(name for name, task in all_tasks().items() if task.stage != "in_stay")
    assert {"coding", "cost", "margin", "readmission"} <= set(tasks)
    for name in tasks:  # as `caselens train --all` does: the store read again for every task
        task = all_tasks()[name]
        train(task, case_data(task, read_cases(tracking.store_dir), tracking), config, tracking)

    stored = read_cases(tracking.store_dir)
    # Stays coded alike (same demographics and codes) are one grouping: count per distinct input.
    times = content(stored).map(grouped_rows).fillna(0).groupby(content(stored, case_id=False)).sum()
    assert len(times) > 1000
    assert times.eq(1).all(), f"grouped {times.value_counts().to_dict()} times (times: distinct cases)"
