"""Quarterly DRG surplus forecasting: volume models, per-case values, simulation, scenarios, backtest.

The forecast is built from parts a finance team can check: case volume per department × ADRG from
seasonal time-series models, the DRG mix inside each, per-case payment from the casemix rules at the
base rate in force in each forecast quarter, and per-case cost and payment from recent values moved
along a department index (prices rise; part of the payment follows them). Intervals come from
simulation that replays whole historical quarters of errors and gives every draw its own fitted
indices (level, slope, season), and every level (hospital, department, DRG) is a sum over the same
department × DRG leaves, draw by draw.
"""

from models.forecast.backtest import backtest, backtest_summary, coverage, widen
from models.forecast.levels import LEVELS, level_table
from models.forecast.scenario import Scenario, load_scenario
from models.forecast.schedule import RateSchedule
from models.forecast.simulate import SurplusForecast, forecast_surplus

__all__ = [
    "LEVELS",
    "RateSchedule",
    "Scenario",
    "SurplusForecast",
    "backtest",
    "backtest_summary",
    "coverage",
    "forecast_surplus",
    "level_table",
    "load_scenario",
    "widen",
]
