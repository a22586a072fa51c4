"""What-if scenarios for the surplus forecast, written as a small TOML file.

    name = "rate +5% from July, orthopaedics -5% cost"
    [[base_rate]]                 # a base-rate (or point-value) change from a date
    effective_from = 2026-07-01
    change = 0.05                 # or: yuan = 11025
    [[volume]]                    # a shift in case mix: more or fewer cases in a department and/or ADRG
    department = "骨科"
    adrg = "IC2"
    change = 0.10
    [[cost]]                      # a change in cost per case for a department (and/or ADRG, DRG)
    department = "骨科"
    change = -0.05
    effective_from = 2026-01-01

A change dated inside a quarter counts for the share of the quarter's days from that date on.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.errors import ConfigError
from models.forecast.schedule import RateSchedule, day_fraction_from


class RateChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_from: date
    yuan: float | None = Field(None, gt=0)
    change: float | None = Field(None, gt=-1)

    @model_validator(mode="after")
    def _one_of(self) -> RateChange:
        if (self.yuan is None) == (self.change is None):
            raise ValueError("give either yuan or change")
        return self


class CaseChange(BaseModel):
    """A relative change for the cases matching every given selector (none given: all cases)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    change: float = Field(gt=-1)
    department: str | None = None
    adrg: str | None = None
    drg: str | None = None
    effective_from: date | None = None

    def factor(self, leaves: pd.DataFrame, quarters: pd.PeriodIndex) -> np.ndarray:
        """1 + change where it applies, leaves × quarters."""
        match = np.ones(len(leaves), dtype=bool)
        for column in ("department", "adrg", "drg"):
            wanted = getattr(self, column)
            if wanted is not None:
                match &= (leaves[column] == wanted).to_numpy()
        when = (
            np.ones(len(quarters))
            if self.effective_from is None
            else day_fraction_from(self.effective_from, quarters)
        )
        return 1.0 + self.change * np.outer(match, when)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "scenario"
    base_rate: list[RateChange] = []
    volume: list[CaseChange] = []
    cost: list[CaseChange] = []

    def schedule(self, schedule: RateSchedule) -> RateSchedule:
        for step in sorted(self.base_rate, key=lambda c: c.effective_from):
            schedule = schedule.changed_from(step.effective_from, yuan=step.yuan, change=step.change)
        return schedule

    def volume_factor(self, leaves: pd.DataFrame, quarters: pd.PeriodIndex) -> np.ndarray:
        return _product(self.volume, leaves, quarters)

    def cost_factor(self, leaves: pd.DataFrame, quarters: pd.PeriodIndex) -> np.ndarray:
        return _product(self.cost, leaves, quarters)

    def unmatched(self, leaves: pd.DataFrame) -> list[str]:
        """Selectors that match no leaf: almost always a typo worth telling the user about."""
        missing = []
        for change in (*self.volume, *self.cost):
            for column in ("department", "adrg", "drg"):
                wanted = getattr(change, column)
                if wanted is not None and not (leaves[column] == wanted).any():
                    missing.append(f"{column} {wanted!r}")
        return missing


def _product(changes: list[CaseChange], leaves: pd.DataFrame, quarters: pd.PeriodIndex) -> np.ndarray:
    factor = np.ones((len(leaves), len(quarters)))
    for change in changes:
        factor *= change.factor(leaves, quarters)
    return factor


def load_scenario(path: Path) -> Scenario:
    """Read a scenario TOML file; errors name the file and the offending entry."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read scenario: {error}") from error
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{path}: invalid scenario: {problems}") from error
