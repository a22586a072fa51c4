"""Pre-grouping (预分组): the DRG a stay in hospital would group to with what is coded so far, and its
payment standard under the rules in force on the day.

The grouper runs on the partial record as it is (working diagnoses, working principal first, and the
procedures done so far; an uncoded stay is grouped on its admission diagnosis), and the payment standard
is the rules' own: ``price_cases`` on the pre-grouped DRG with the day as the date the base rate (or
point value) and coefficients are looked up by, so a city's rules file is the only place prices live.
The standard is what a DRG case is paid before outlier rules; charges to date over it is the ratio
hospitals warn on (90%: watch, 110%: overrun).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from casemix.engine import CasemixEngine
from casemix.payment import PaymentRules
from casemix.tables import CasemixTables
from contract.errors import InputError

PREGROUP_COLUMNS = ("pregroup_status", "pregroup_drg", "pregroup_adrg", "pregroup_rw", "payment_standard")
RECORD_COLUMNS = (
    "sex",
    "age_years",
    "age_days",
    "birth_weight_g",
    "admission_diagnosis",
    "working_diagnoses",
    "procedures_so_far",
    "as_of_date",
    "department",
)
Records = pd.DataFrame | Mapping[str, Any]
"""In-stay records as a frame, or as its columns by name (arrays of one length)."""


@dataclass
class Pregrouper:
    """Groups partial records and prices their DRG with the casemix engine; ``weights`` is the RW
    table priced with."""

    engine: CasemixEngine
    weights: pd.DataFrame

    @property
    def rules(self) -> PaymentRules:
        return self.engine.rules

    @classmethod
    def for_rules(
        cls, rules: PaymentRules, history: pd.DataFrame | None = None, tables: CasemixTables | None = None
    ) -> Pregrouper:
        """The rules' grouper and weights: the insurer's RW table they name, else weights calibrated on
        ``history`` (discharged canonical cases, which must then be given)."""
        engine = CasemixEngine(tables, rules)
        if engine.rw_table is not None:
            return cls(engine, engine.weights())
        if history is None or history.empty:
            raise InputError("the payment rules name no RW table: pre-grouping needs discharged cases")
        return cls(engine, engine.weights(engine.grouped(history)))

    def pregroup(self, records: pd.DataFrame) -> pd.DataFrame:
        """``PREGROUP_COLUMNS`` for in-stay records (``RECORD_COLUMNS``), aligned to their index.

        A stay the grouper cannot place (0000) or whose DRG has no weight has no standard (NaN).
        """
        return pd.DataFrame(self.pregroup_columns(records), index=records.index)

    def pregroup_columns(self, records: Records) -> dict[str, np.ndarray]:
        """:meth:`pregroup`'s columns by name, of records given as a frame or as columns by name (a
        request's few stays: no frame is built around them)."""
        missing = [c for c in RECORD_COLUMNS if c not in records]
        if missing:
            raise InputError(f"cannot pre-group: missing column(s) {', '.join(missing)}")
        index = records.index if isinstance(records, pd.DataFrame) else pd.RangeIndex(len(records["sex"]))
        working = np.asarray(_array(records, "working_diagnoses"), dtype=object)
        coded = pd.notna(working) & (working != "")
        procedures = np.asarray(_array(records, "procedures_so_far"), dtype=object)
        partial = pd.DataFrame(
            {
                **{
                    name: _array(records, name) for name in ("sex", "age_years", "age_days", "birth_weight_g")
                },
                "diagnoses": np.where(
                    coded, working, np.asarray(_array(records, "admission_diagnosis"), dtype=object)
                ),
                "procedures": np.where(pd.notna(procedures), procedures, ""),
            },
            index=index,
            copy=False,  # read, never changed, then dropped: copying each column is a stay's cost
        )
        grouped = self.engine.grouper.group_columns(partial)  # partial records: not remembered
        priced = self.engine.price_columns(self._pricing_frame(records, grouped, index), self.weights)
        status = grouped["status"].to_numpy(dtype=object)
        standard = np.asarray(priced["standard_payment"], dtype=np.float64)
        return {
            "pregroup_status": status,
            "pregroup_drg": grouped["drg"].to_numpy(dtype=object),
            "pregroup_adrg": grouped["adrg"].to_numpy(dtype=object),
            "pregroup_rw": np.asarray(priced["rw"], dtype=np.float64),
            "payment_standard": np.where(status == "grouped", standard, np.nan),
        }

    @cached_property
    def _priced_span(self) -> tuple[np.datetime64, np.datetime64]:
        """The first and last day the rules price (a stay admitted before the first base rate is
        settled under it): read from the rules once, not per stay."""
        if self.rules.method == "rate":
            first = min(r.effective_from for r in self.rules.base_rates)
            return np.datetime64(first, "ns"), np.datetime64("NaT", "ns")
        years = sorted(p.year for p in self.rules.point_values)
        return np.datetime64(f"{years[0]}-01-01", "ns"), np.datetime64(f"{years[-1]}-12-31", "ns")

    def _priced_day(self, days: np.ndarray) -> np.ndarray:
        """The day whose prices apply: the day itself, or the rules' nearest priced day when it falls
        outside them."""
        low, high = self._priced_span
        days = np.maximum(days, low)
        return days if np.isnat(high) else np.minimum(days, high)

    def _pricing_frame(self, records: Records, grouped: dict[str, Any], index: pd.Index) -> pd.DataFrame:
        """What ``price_cases`` reads, for a stay not yet discharged: the day cut at stands for the
        discharge date (the rules in force), the days so far for the stay, no charges outside the DRG.
        Only the standard is used, which depends on neither cost nor stay."""
        n = len(index)
        as_of = np.asarray(_array(records, "as_of_date"), dtype="datetime64[ns]")
        admitted = _array(records, "admission_date") if "admission_date" in records else None
        stay = _array(records, "day_of_stay") if "day_of_stay" in records else None
        columns: dict[str, object] = {
            "status": grouped["status"].to_numpy(),
            "drg": grouped["drg"].to_numpy(),
            "adrg": grouped["adrg"].to_numpy(),
            "department": np.asarray(_array(records, "department")),
            "discharge_date": self._priced_day(as_of),
            "admission_date": as_of if admitted is None else np.asarray(admitted, dtype="datetime64[ns]"),
            "los_days": np.ones(n, dtype=np.int64) if stay is None else np.asarray(stay),
            "total_cost": np.zeros(n),
        }
        for name in ("hospital_id", "patient_id", "insurance_type"):
            if name in records:
                columns[name] = _array(records, name)
        return pd.DataFrame(columns, index=index, copy=False)  # (read once by the pricing, then dropped)


def _array(records: Records, name: str) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """A column's own array (a frame's without its Series: pandas' per-call cost, not the work)."""
    return records[name].array if isinstance(records, pd.DataFrame) else records[name]
