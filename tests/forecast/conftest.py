"""Small handmade hospitals for the forecast tests: known seasonality, growth and a rate change."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.forecast import RateSchedule

SCHEDULE = RateSchedule.from_pairs([(date(2023, 1, 1), 10_000.0), (date(2025, 1, 1), 10_500.0)])
LEAVES = pd.DataFrame(
    [
        ("cardiology", "FM1", "FM11", 2.0, 30),
        ("cardiology", "FM1", "FM15", 1.5, 50),
        ("cardiology", "FR1", "FR13", 1.0, 25),
        ("orthopaedics", "IC2", "IC21", 2.5, 20),
        ("orthopaedics", "IC2", "IC25", 1.8, 35),
        ("respiratory", "ES2", "ES23", 0.9, 60),
        ("respiratory", "ES2", "ES25", 0.7, 3),
    ],
    columns=["department", "adrg", "drg", "rw", "per_quarter"],
)


def make_cases(quarters: int = 12, seed: int = 0, start: str = "2023-01-01") -> pd.DataFrame:
    """Cases with a winter peak, 2% quarterly growth, cost per case near 0.97 × the rate × RW."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, quarter in enumerate(pd.period_range(start, periods=quarters, freq="Q")):
        season = 1.0 + 0.15 * (quarter.quarter == 1) - 0.1 * (quarter.quarter == 3)
        for leaf in LEAVES.itertuples():
            n = rng.poisson(leaf.per_quarter * season * 1.02**i)
            days = rng.integers(0, (quarter.end_time - quarter.start_time).days + 1, n)
            discharged = quarter.start_time + pd.to_timedelta(days, unit="D")
            frames.append(
                pd.DataFrame(
                    {
                        "department": leaf.department,
                        "adrg": leaf.adrg,
                        "drg": leaf.drg,
                        "rw": leaf.rw,
                        "discharge_date": discharged,
                        "cost": leaf.rw * 10_000 * 0.97 * 1.01**i * rng.lognormal(0.0, 0.2, n),
                    }
                )
            )
    cases = pd.concat(frames, ignore_index=True)
    cases["payment"] = reprice_by_date(cases)
    return cases


def reprice(cases: pd.DataFrame, rate: float) -> pd.Series:
    """Plain rate method: RW × rate."""
    return cases["rw"] * rate


def reprice_by_date(cases: pd.DataFrame) -> pd.Series:
    return cases["rw"] * SCHEDULE.rates_on(cases["discharge_date"])


@pytest.fixture(scope="session")
def cases() -> pd.DataFrame:
    return make_cases()


@pytest.fixture(scope="session")
def hm() -> SimpleNamespace:
    """The handmade hospital's parts: leaves, rate schedule, case maker and pricing."""
    return SimpleNamespace(LEAVES=LEAVES, SCHEDULE=SCHEDULE, make_cases=make_cases, reprice=reprice)
