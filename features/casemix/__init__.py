"""The CHS-DRG casemix engine: grouping tables, the grouper, payment and casemix indicators."""

from features.casemix.grouper import REFERENCE_STATUS, Grouper, GroupResult
from features.casemix.tables import CasemixTables, TablesError, load_tables

__all__ = [
    "REFERENCE_STATUS",
    "CasemixTables",
    "GroupResult",
    "Grouper",
    "TablesError",
    "load_tables",
]
