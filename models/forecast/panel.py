"""Cases to quarterly sums per leaf (department × DRG), the unit every forecast level adds up from.

A case counts in the quarter of its discharge date: that is when it is settled and paid.
"""

from __future__ import annotations

import pandas as pd

from contract.errors import InputError

LEAF: tuple[str, ...] = ("department", "adrg", "drg")
CELL: tuple[str, ...] = ("department", "adrg")
CASE_COLUMNS: tuple[str, ...] = (*LEAF, "discharge_date", "payment", "cost")


def check_cases(cases: pd.DataFrame) -> None:
    """Fail early, naming the column and first bad row, on what the forecast cannot use."""
    missing = [c for c in CASE_COLUMNS if c not in cases.columns]
    if missing:
        raise InputError(f"forecast input lacks column(s): {', '.join(missing)}")
    for column in CASE_COLUMNS:
        bad = cases[column].isna()
        if bad.any():
            raise InputError(f"row {cases.index[bad.argmax()]}: {column} is missing")
    negative = cases["cost"] < 0
    if negative.any():
        raise InputError(f"row {cases.index[negative.argmax()]}: cost is negative")


def quarter_of(dates: pd.Series) -> pd.Series:
    return dates.dt.to_period("Q")


def complete_quarters(discharge_dates: pd.Series, slack_days: int = 7) -> pd.PeriodIndex:
    """Quarters the extract covers whole, judged on discharge dates (abstracts are extracted by discharge).

    An extract cut in mid-quarter would make its last quarter look like a small real one, so a quarter
    counts only when discharges reach within ``slack_days`` of its end (and, for the first quarter,
    of its start).
    """
    slack = pd.Timedelta(days=slack_days)
    start = (discharge_dates.min() - slack).to_period("Q") + 1
    end = (discharge_dates.max() + slack).to_period("Q") - 1
    if end < start:
        raise InputError("the case history does not cover one complete quarter")
    return pd.period_range(start, end, freq="Q")


def leaf_panel(cases: pd.DataFrame, quarters: pd.PeriodIndex, values: list[str]) -> pd.DataFrame:
    """Case count ``n`` and sums of ``values`` per leaf and quarter, over ``quarters`` only."""
    quarter = quarter_of(cases["discharge_date"])
    inside = quarter.isin(quarters)
    frame = cases.loc[inside, [*LEAF, *values]].assign(quarter=quarter[inside], n=1)
    sums = frame.groupby([*LEAF, "quarter"], observed=True, sort=True)[["n", *values]].sum()
    return sums.astype({"n": "int64"})
