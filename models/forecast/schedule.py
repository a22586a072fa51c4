"""The dated base rate (yuan per unit of relative weight) and what it means for a quarter.

Payment rules change on a date, and a case is paid at the rate in force on its discharge date, so the
rate "of a quarter" is a mix: each rate weighted by the share of the quarter's days it is in force.
For a change on a quarter boundary that is simply the new rate. Under the point method the same
schedule holds yuan per RW (points per RW × point value).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from contract.errors import ConfigError


@dataclass(frozen=True)
class RateSchedule:
    """Rates by the date they take effect, earliest first."""

    effective_from: tuple[date, ...]
    yuan: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.effective_from or len(self.effective_from) != len(self.yuan):
            raise ConfigError("a rate schedule needs one rate per effective date, at least one")
        if list(self.effective_from) != sorted(self.effective_from):
            raise ConfigError("rate schedule dates must be in increasing order")
        if min(self.yuan) <= 0:
            raise ConfigError("base rates must be positive")

    @classmethod
    def from_pairs(cls, pairs: list[tuple[date, float]]) -> RateSchedule:
        ordered = sorted(pairs)
        return cls(tuple(d for d, _ in ordered), tuple(float(y) for _, y in ordered))

    def rate_on(self, day: date | pd.Timestamp) -> float:
        """The rate in force on a day (the first rate also covers earlier days)."""
        starts = pd.to_datetime(list(self.effective_from))
        i = max(int(np.searchsorted(starts, pd.Timestamp(day), side="right")) - 1, 0)
        return self.yuan[i]

    def rates_on(self, days: pd.Series) -> pd.Series:
        """Vectorised :meth:`rate_on` for a column of dates."""
        starts = pd.to_datetime(list(self.effective_from)).values
        i = np.clip(np.searchsorted(starts, days.values.astype("datetime64[ns]"), side="right") - 1, 0, None)
        return pd.Series(np.asarray(self.yuan)[i], index=days.index)

    def changed_from(
        self, day: date, *, yuan: float | None = None, change: float | None = None
    ) -> RateSchedule:
        """This schedule with a new rate from ``day`` on: an amount, or a relative change of the rate then."""
        if (yuan is None) == (change is None):
            raise ConfigError("give either yuan or change for a base-rate change")
        new = yuan if yuan is not None else self.rate_on(day) * (1.0 + change)
        kept = [(d, y) for d, y in zip(self.effective_from, self.yuan, strict=True) if d < day]
        return RateSchedule.from_pairs([*kept, (day, new)])

    def quarter_weights(self, quarters: pd.PeriodIndex) -> pd.DataFrame:
        """Share of each quarter's days at each rate: rows quarters, columns distinct rates, rows sum to 1."""
        days = pd.date_range(quarters[0].start_time, quarters[-1].end_time.normalize(), freq="D")
        frame = pd.DataFrame({"quarter": days.to_period("Q"), "rate": self.rates_on(pd.Series(days)).values})
        shares = pd.crosstab(frame["quarter"], frame["rate"], normalize="index")
        return shares.reindex(quarters).fillna(0.0)


def day_fraction_from(day: date, quarters: pd.PeriodIndex) -> np.ndarray:
    """Share of each quarter's days on or after ``day`` (how much of a dated change a quarter feels)."""
    start = quarters.start_time.values
    end = (quarters.end_time.normalize() + pd.Timedelta(days=1)).values
    cut = np.datetime64(pd.Timestamp(day))
    inside = (end - np.clip(cut, start, end)) / (end - start)
    return inside.astype(float)
