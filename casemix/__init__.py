"""The CHS-DRG casemix engine: grouping tables, the grouper, payment, settlement and casemix indicators;
``CasemixEngine`` puts tables, grouper, weights and payment rules behind one object."""

from casemix.engine import CasemixEngine
from casemix.grouper import REFERENCE_STATUS, Grouper, GroupResult
from casemix.indicators import INDICATOR_COLUMNS, casemix_indicators
from casemix.payment import (
    PRICED_COLUMNS,
    PaymentRules,
    drg_cost,
    point_value_from_budget,
    price_cases,
)
from casemix.rw_table import read_weights, weights_source, write_weights
from casemix.settlement import SETTLEMENT_COLUMNS, monthly_prepayment, settle_year
from casemix.tables import CasemixTables, TablesError, load_tables
from casemix.weights import Calibration, calibrate_weights

__all__ = [
    "INDICATOR_COLUMNS",
    "PRICED_COLUMNS",
    "REFERENCE_STATUS",
    "SETTLEMENT_COLUMNS",
    "Calibration",
    "CasemixEngine",
    "CasemixTables",
    "GroupResult",
    "Grouper",
    "PaymentRules",
    "TablesError",
    "calibrate_weights",
    "casemix_indicators",
    "drg_cost",
    "load_tables",
    "monthly_prepayment",
    "point_value_from_budget",
    "price_cases",
    "read_weights",
    "settle_year",
    "weights_source",
    "write_weights",
]
