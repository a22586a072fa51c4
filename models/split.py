"""Time-ordered train / validation / test split.

Models are judged the way they will be used: trained on earlier periods and tested on the latest one,
so a split never lets a test case be earlier than any training case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import TrainingInputError

PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class TimeSplit:
    """How to cut periods: ``freq`` turns dates into periods (pandas period alias, ``Q`` = quarters)."""

    freq: str = "Q"
    validation_periods: int = 1
    test_periods: int = 1
    min_rows: int = 50

    def periods(self, values: pd.Series) -> pd.Series:
        """Period of each row: dates become ``freq`` periods, other values (a table's group) stay as given."""
        if pd.api.types.is_datetime64_any_dtype(values):
            return values.dt.to_period(self.freq)
        return values

    def assign(self, values: pd.Series) -> pd.Series:
        """Part ("train", "validation" or "test") of each row, by the order of its period."""
        periods = self.periods(values)
        if periods.isna().any():
            row = periods.index[periods.isna()][0]
            raise TrainingInputError(f"row {row}: the period column {values.name!r} is missing")
        ordered = np.sort(periods.unique())
        self._check_gaps(ordered, values.name)
        needed = self.validation_periods + self.test_periods + 1
        if len(ordered) < needed:
            raise TrainingInputError(
                f"{len(ordered)} period(s) in {values.name!r} ({', '.join(map(str, ordered))}); the split "
                f"needs at least {needed}: training, {self.validation_periods} validation and "
                f"{self.test_periods} test"
            )
        test_from = ordered[len(ordered) - self.test_periods]
        validation_from = ordered[len(ordered) - self.test_periods - self.validation_periods]
        parts = np.where(
            periods >= test_from, "test", np.where(periods >= validation_from, "validation", "train")
        )
        assigned = pd.Series(pd.Categorical(parts, categories=PARTS), index=values.index, name="part")
        self._check_sizes(assigned, periods)
        return assigned

    @staticmethod
    def _check_gaps(ordered: np.ndarray, name: object) -> None:
        """Calendar periods must follow each other: a quarter with no case means missing data."""
        if len(ordered) and isinstance(ordered[0], pd.Period):
            expected = pd.period_range(ordered[0], ordered[-1])
            empty = expected.difference(pd.PeriodIndex(ordered))
            if len(empty):
                raise TrainingInputError(
                    f"no rows in period(s) {', '.join(map(str, empty))} of {name!r} "
                    f"({expected[0]}..{expected[-1]}): is data missing?"
                )

    def _check_sizes(self, parts: pd.Series, periods: pd.Series) -> None:
        counts = parts.value_counts()
        for part in PARTS:
            if counts.get(part, 0) < self.min_rows:
                spans = periods[parts == part]
                span = f"{spans.min()}..{spans.max()}" if len(spans) else "no period"
                raise TrainingInputError(
                    f"the {part} part ({span}) has {counts.get(part, 0)} rows; "
                    f"at least {self.min_rows} are needed"
                )

    def describe(self, values: pd.Series, parts: pd.Series) -> dict[str, str]:
        """First and last period of each part, for the run's parameters."""
        periods = self.periods(values)
        return {
            f"{part}_periods": f"{periods[parts == part].min()}..{periods[parts == part].max()}"
            for part in PARTS
        }
