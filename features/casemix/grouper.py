"""The CHS-DRG grouper: cases in, MDC / ADRG / DRG out, for a batch or for one case with a trace.

The walk follows the tables' README exactly (validate → MDC in ``mdc_order`` → first ADRG whose rule
holds → first DRG whose split holds, else on to the next MDC), but over whole batches: each rule is a
numpy mask over the cases still ungrouped, so a million cases take seconds on one core. One case goes
through the same walk as a one-row batch, with a :class:`~features.casemix.trace.Trace` listening.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from features.casemix.cases import CodeLists, EncodedCases, encode_cases
from features.casemix.lookups import Lookups
from features.casemix.rules import complication_counts, rule_holds, split_holds
from features.casemix.tables import CasemixTables, Entry, load_tables
from features.casemix.trace import Trace
from pipelines.contract import CODE_SEPARATOR

Status = Literal["grouped", "ungroupable", "invalid"]
REFERENCE_STATUS: dict[str, str] = {
    "grouped": "分组成功",
    "ungroupable": "无法入组",
    "invalid": "信息校验不通过",
}
NO_MDC, NO_ADRG, NO_DRG = "0000", "00", "0000"
OUTPUT_COLUMNS = ("status", "reason", "mdc", "adrg", "drg", "mcc_count", "cc_count")
_STATUSES = np.array(["grouped", "ungroupable", "invalid"], dtype=object)


class GroupResult(BaseModel):
    """One case's grouping, with the ordered trace of the rules that held or failed."""

    status: Status
    reason: str
    mdc: str
    adrg: str
    drg: str
    drg_name: str | None
    mcc_count: int
    cc_count: int
    trace: list[str]


@dataclass(frozen=True)
class _Walk:
    """Per case: the index of its DRG in ``Grouper._drg_codes`` (the last one meaning none)."""

    drg_index: np.ndarray
    grouped: np.ndarray
    entered: list[tuple[str, np.ndarray]]


class Grouper:
    """Groups cases with one table set; stateless after construction, like a fitted estimator."""

    def __init__(self, tables: CasemixTables | None = None) -> None:
        self.tables = tables if tables is not None else load_tables()
        self.lookups = Lookups(self.tables)
        drgs = list(self.tables.drgs.values())
        position = {d.code: i for i, d in enumerate(drgs)}
        self._drg_positions = {
            code: np.array([position[d] for d in entry.children], dtype=np.int32)
            for code, entry in self.tables.adrgs.items()
        }
        self._drg_codes = np.array([*(d.code for d in drgs), NO_DRG], dtype=object)
        self._adrg_codes = np.array([*(d.adrg for d in drgs), NO_ADRG], dtype=object)
        self._mdc_codes = np.array([*(self.tables.mdc_of(d.adrg) for d in drgs), NO_MDC], dtype=object)

    def group_frame(
        self, cases: pd.DataFrame | pa.Table, *, translate_codes: bool = False
    ) -> pd.DataFrame | pa.Table:
        """Group a batch; returns ``OUTPUT_COLUMNS`` aligned to the input index (a Table for a Table).

        ``translate_codes`` first maps hospital code versions through diagnosis_map/procedure_map.
        """
        if isinstance(cases, pa.Table):
            return pa.Table.from_pandas(self.group_frame(cases.to_pandas(), translate_codes=translate_codes))
        encoded = encode_cases(cases, self.lookups, translate_codes=translate_codes)
        return pd.DataFrame(self._group(encoded), index=cases.index)

    def group_case(
        self,
        *,
        sex: object,
        age_years: object,
        diagnoses: Sequence[str] | str,
        procedures: Sequence[str] | str = (),
        age_days: object = None,
        birth_weight_g: object = None,
        translate_codes: bool = False,
    ) -> GroupResult:
        """Group one case and explain it; code lists are sequences or '|'-separated, principal first."""
        frame = pd.DataFrame(
            {
                "sex": [sex],
                "age_years": [age_years],
                "age_days": [age_days],
                "birth_weight_g": [birth_weight_g],
                "diagnoses": [_joined(diagnoses)],
                "procedures": [_joined(procedures)],
            },
            dtype=object,
        )
        encoded = encode_cases(frame, self.lookups, translate_codes=translate_codes)
        numbers = {
            n: float(getattr(encoded, n)[0]) for n in ("sex", "age_years", "age_days", "birth_weight_g")
        }
        trace = Trace(self.tables, encoded.diagnoses.codes_of(0), encoded.procedures.codes_of(0), numbers)
        result = {column: values[0] for column, values in self._group(encoded, trace).items()}
        if result["status"] == "grouped":
            drg = result["drg"]
            trace.finish(
                f"grouped: {result['mdc']} → ADRG {result['adrg']} → DRG {drg} {self.tables.drg_name(drg)}"
            )
        else:
            trace.finish(f"{result['status']}: {result['reason']}")
        return GroupResult(**result, drg_name=self.tables.drg_name(result["drg"]), trace=trace.lines)

    def _group(self, cases: EncodedCases, trace: Trace | None = None) -> dict[str, np.ndarray]:
        """The ``OUTPUT_COLUMNS`` of an encoded batch."""
        mcc_count, cc_count = complication_counts(cases.diagnoses, self.lookups)
        walk = self._walk(cases, mcc_count, cc_count, trace)
        status, reason = self._status(cases, walk)
        return {
            "status": status,
            "reason": reason,
            "mdc": self._mdc_codes[walk.drg_index],
            "adrg": self._adrg_codes[walk.drg_index],
            "drg": self._drg_codes[walk.drg_index],
            "mcc_count": mcc_count,
            "cc_count": cc_count,
        }

    def _walk(
        self, cases: EncodedCases, mcc_count: np.ndarray, cc_count: np.ndarray, trace: Trace | None = None
    ) -> _Walk:
        n = len(cases)
        drg_index = np.full(n, len(self._drg_codes) - 1, dtype=np.int32)
        grouped = np.zeros(n, dtype=bool)
        entered: list[tuple[str, np.ndarray]] = []
        remaining = np.flatnonzero(cases.valid)
        for mdc_code in self.tables.mdc_order:
            if not len(remaining):
                break
            mdc_entry = self.tables.mdcs[mdc_code]
            rows = remaining[rule_holds(mdc_entry, cases, self.lookups, remaining, trace)]
            if not len(rows):
                continue
            if trace is not None:
                trace.entered(mdc_entry)
            entered.append((mdc_code, rows))
            for adrg_code in mdc_entry.children:
                if not len(rows):
                    break
                adrg_entry = self.tables.adrgs[adrg_code]
                hit = rule_holds(adrg_entry, cases, self.lookups, rows, trace)
                if not len(hit):
                    continue
                if trace is not None:
                    trace.entered(adrg_entry)
                hit_rows = rows[hit]
                rows = np.delete(rows, hit)
                choice = self._choose_drg(adrg_entry, mcc_count[hit_rows], cc_count[hit_rows], trace)
                taken = choice >= 0
                drg_index[hit_rows[taken]] = self._drg_positions[adrg_code][choice[taken]]
                grouped[hit_rows[taken]] = True
            if trace is not None and not grouped[0]:
                trace.left(mdc_entry, "none of its ADRGs gave a DRG")
            remaining = remaining[~grouped[remaining]]
        return _Walk(drg_index=drg_index, grouped=grouped, entered=entered)

    def _choose_drg(self, adrg: Entry, mcc: np.ndarray, cc: np.ndarray, trace: Trace | None) -> np.ndarray:
        """Index into ``adrg.children`` of the first DRG whose split holds; -1 when none does."""
        choice = np.full(len(mcc), -1)
        for j, drg_code in enumerate(adrg.children):
            drg = self.tables.drgs[drg_code]
            take = (choice < 0) & split_holds(drg.split, mcc, cc)
            if trace is not None:
                trace.split(drg, bool(take[0]))
            choice[take] = j
            if (choice >= 0).all():
                break
        return choice

    def _status(self, cases: EncodedCases, walk: _Walk) -> tuple[np.ndarray, np.ndarray]:
        valid = cases.valid
        status = _STATUSES[np.where(walk.grouped, 0, np.where(valid, 1, 2))]
        reason = cases.reasons.copy()
        ungroupable = np.flatnonzero(valid & ~walk.grouped)
        reason[ungroupable] = self._ungroupable_reasons(cases, walk, ungroupable)
        return status, reason

    def _ungroupable_reasons(self, cases: EncodedCases, walk: _Walk, rows: np.ndarray) -> list[str]:
        """Why each case reached no DRG: unknown codes first, then the MDCs it entered, if any."""
        wanted = np.zeros(len(cases), dtype=bool)
        wanted[rows] = True
        entered: dict[int, list[str]] = {}
        for mdc_code, mdc_rows in walk.entered:
            for row in mdc_rows[wanted[mdc_rows]].tolist():
                entered.setdefault(row, []).append(mdc_code)
        unknown_dx = _unknown_codes(cases.diagnoses, rows)
        unknown_px = _unknown_codes(cases.procedures, rows)
        reasons = []
        for row in rows.tolist():
            parts = []
            if row in unknown_dx:
                parts.append(f"unknown diagnosis codes {', '.join(unknown_dx[row])}")
            if row in unknown_px:
                parts.append(f"unknown procedure codes {', '.join(unknown_px[row])}")
            if row in entered:
                parts.append(
                    f"no ADRG rule held in {', '.join(entered[row])} and no other MDC's entry rule holds"
                )
            else:
                parts.append("no MDC's entry rule holds")
            reasons.append("; ".join(parts))
        return reasons


def _unknown_codes(codes: CodeLists, rows: np.ndarray) -> dict[int, list[str]]:
    """Codes the tables do not know, for the cases in ``rows`` that have any."""
    owner, positions = codes.segments(rows)
    unknown = codes.ids[positions] == codes.unknown
    found: dict[int, list[str]] = {}
    for case, position in zip(owner[unknown].tolist(), positions[unknown].tolist(), strict=True):
        found.setdefault(int(rows[case]), []).append(str(codes.uniques[codes.strings[position]]))
    return found


def _joined(codes: Sequence[str] | str | None) -> str:
    if codes is None or isinstance(codes, str):
        return codes or ""
    return CODE_SEPARATOR.join(codes)
