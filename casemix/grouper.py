"""The CHS-DRG grouper: cases in, MDC / ADRG / DRG out, for a batch or for one case with a trace.

The walk follows the tables' README exactly (validate → MDC in ``mdc_order`` → first ADRG whose rule
holds → first DRG whose split holds, else on to the next MDC), but over whole batches: each rule is a
numpy mask over the cases still ungrouped, so a million cases take seconds on one core. One case goes
through the same walk as a one-row batch, with a :class:`~casemix.trace.Trace` listening.

歧义组 (QY), ``ambiguous_groups=True``: in an MDC entered by its principal diagnosis, a case with an
operating-room procedure (or_procedures.tsv) that none of the MDC's procedure ADRGs took goes to the
MDC's ambiguous group ``{letter}QY`` (e.g. ``FQY``) instead of the medical ADRG that would take it;
one no ADRG of the MDC takes goes on to the next MDCs as before, and to the QY of the first such MDC
it entered instead of 0000. The CHS-DRG 1.1 tables and their reference grouper leave it off (the reference
comparison needs it off); the payment rules turn it on where a city pays QY cases
(``[grouping] ambiguous_groups`` in the payment TOML; see docs/payment.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from casemix.cases import CodeLists, EncodedCases, encode_cases
from casemix.lookups import Lookups
from casemix.rules import Candidates, Openings, complication_counts, rule_holds, split_holds
from casemix.tables import CasemixTables, Entry, load_tables
from casemix.trace import Trace
from contract.fields import coded_text, join_codes, text_labels

if TYPE_CHECKING:
    from casemix.payment import PaymentRules

Status = Literal["grouped", "ungroupable", "invalid"]
REFERENCE_STATUS: dict[str, str] = {
    "grouped": "分组成功",
    "ungroupable": "无法入组",
    "invalid": "信息校验不通过",
}
NO_MDC, NO_ADRG, NO_DRG = "0000", "00", "0000"
AMBIGUOUS = "QY"
PROCEDURE_CONDITIONS = frozenset(
    {
        "principal_procedure_in",
        "any_procedure_in",
        "principal_procedure_is_or_procedure",
        "procedure_groups_any_of",
    }
)
OUTPUT_COLUMNS = ("status", "reason", "mdc", "adrg", "drg", "mcc_count", "cc_count")
_STATUSES = text_labels(["grouped", "ungroupable", "invalid"])


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


@dataclass
class _Batch:
    """One walk's cases and what it has found so far (each case's DRG, whether it is grouped)."""

    cases: EncodedCases
    lookups: Lookups
    mcc_count: np.ndarray
    cc_count: np.ndarray
    drg_index: np.ndarray
    grouped: np.ndarray
    trace: Trace | None

    @cached_property
    def with_or_procedure(self) -> np.ndarray:
        """Whether each case has an OR procedure: asked of each MDC's cases by the 歧义组, found once
        for the batch (a fifth of the cost of asking each MDC's)."""
        return self.cases.procedures.any_of_each(self.lookups.or_procedure)


class Grouper:
    """Groups cases with one table set; stateless after construction, like a fitted estimator.

    ``ambiguous_groups`` sends an MDC's cases with an OR procedure none of its procedure ADRGs takes to
    the MDC's 歧义组 ``{letter}QY`` (off: the CHS-DRG 1.1 reference behaviour)."""

    def __init__(self, tables: CasemixTables | None = None, *, ambiguous_groups: bool = False) -> None:
        self.tables = tables if tables is not None else load_tables()
        self.lookups = Lookups(self.tables)
        self.ambiguous_groups = ambiguous_groups
        drgs = list(self.tables.drgs.values())
        self._mdc_openings = Openings.of([self.tables.mdcs[c] for c in self.tables.mdc_order], self.lookups)
        self._adrg_openings = {
            code: Openings.of([self.tables.adrgs[c] for c in entry.children], self.lookups)
            for code, entry in self.tables.mdcs.items()
        }
        position = {d.code: i for i, d in enumerate(drgs)}
        self._drg_positions = {
            code: np.array([position[d] for d in entry.children], dtype=np.int32)
            for code, entry in self.tables.adrgs.items()
        }
        # Where each MDC's medical ADRGs start: a case they take with an OR procedure is QY.
        self._ambiguous_at = {
            code: _first_medical(entry, self.tables)
            for code, entry in self.tables.mdcs.items()
            if ambiguous_groups and any(c.kind == "principal_diagnosis_in" for c in entry.rule)
        }
        ambiguous = [_ambiguous_code(m) for m in self._ambiguous_at]
        self._ambiguous_index = {m: len(drgs) + i for i, m in enumerate(self._ambiguous_at)}
        self._drg_codes = text_labels([*(d.code for d in drgs), *ambiguous, NO_DRG])
        self._adrg_codes = text_labels([*(d.adrg for d in drgs), *ambiguous, NO_ADRG])
        self._mdc_codes = text_labels(
            [*(self.tables.mdc_of(d.adrg) for d in drgs), *self._ambiguous_at, NO_MDC]
        )

    @classmethod
    def for_rules(cls, rules: PaymentRules, tables: CasemixTables | None = None) -> Grouper:
        """The grouper the payment rules price with (``[grouping]``: 歧义组 on or off)."""
        return cls(tables, ambiguous_groups=rules.grouping.ambiguous_groups)

    def group_frame(
        self, cases: pd.DataFrame | pa.Table, *, translate_codes: bool = False
    ) -> pd.DataFrame | pa.Table:
        """Group a batch; returns ``OUTPUT_COLUMNS`` aligned to the input index (a Table for a Table).

        ``translate_codes`` first maps hospital code versions through diagnosis_map/procedure_map.
        """
        if isinstance(cases, pa.Table):
            return pa.Table.from_pandas(self.group_frame(cases.to_pandas(), translate_codes=translate_codes))
        columns = self.group_columns(cases, translate_codes=translate_codes)
        return pd.DataFrame(columns, index=cases.index, copy=False)  # fresh arrays: no stacking

    def group_columns(self, cases: pd.DataFrame, *, translate_codes: bool = False) -> dict[str, Any]:
        """:meth:`group_frame`'s columns by name, without the frame (a stay pre-grouped in a request
        reads three of them)."""
        return self._group(encode_cases(cases, self.lookups, translate_codes=translate_codes))

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

    def _group(self, cases: EncodedCases, trace: Trace | None = None) -> dict[str, Any]:
        """The ``OUTPUT_COLUMNS`` of an encoded batch, the text ones as ``TEXT``."""
        mcc_count, cc_count = complication_counts(cases.diagnoses, self.lookups)
        walk = self._walk(cases, mcc_count, cc_count, trace)
        status, reason = self._status(cases, walk)
        return {
            "status": status,
            "reason": reason,
            "mdc": coded_text(self._mdc_codes, walk.drg_index),
            "adrg": coded_text(self._adrg_codes, walk.drg_index),
            "drg": coded_text(self._drg_codes, walk.drg_index),
            "mcc_count": mcc_count,
            "cc_count": cc_count,
        }

    def _walk(
        self, cases: EncodedCases, mcc_count: np.ndarray, cc_count: np.ndarray, trace: Trace | None = None
    ) -> _Walk:
        batch = _Batch(
            cases=cases,
            lookups=self.lookups,
            mcc_count=mcc_count,
            cc_count=cc_count,
            drg_index=np.full(len(cases), len(self._drg_codes) - 1, dtype=np.int32),
            grouped=np.zeros(len(cases), dtype=bool),
            trace=trace,
        )
        grouped = batch.grouped
        entered: list[tuple[str, np.ndarray]] = []
        mdcs = Candidates(self._mdc_openings, cases, self.lookups)
        mdcs.put(np.flatnonzero(cases.valid), 0, trace)
        for k, mdc_entry in enumerate(mdcs.entries):
            candidates = mdcs.take(k)
            if not len(candidates):
                continue
            held = rule_holds(mdc_entry, cases, self.lookups, candidates, trace, opened=mdcs.opened(k))
            mdc_rows = candidates[held]
            if len(mdc_rows):
                if trace is not None:
                    trace.entered(mdc_entry)
                entered.append((mdc_entry.code, mdc_rows))
                self._walk_adrgs(mdc_entry, mdc_rows, batch)
                if trace is not None and not grouped[0]:
                    trace.left(mdc_entry, "none of its ADRGs gave a DRG")
            mdcs.put(candidates[~grouped[candidates]], k + 1, trace)  # on to the next MDC they can enter
        for mdc_code, rows in entered:  # instead of 0000: the first MDC entered that has a 歧义组
            if mdc_code in self._ambiguous_at:
                grouped[self._ambiguous(mdc_code, rows[~grouped[rows]], batch)] = True
        return _Walk(drg_index=batch.drg_index, grouped=grouped, entered=entered)

    def _walk_adrgs(self, mdc_entry: Entry, rows: np.ndarray, batch: _Batch) -> None:
        """Give the cases that entered an MDC (``rows``) the DRG of the first ADRG whose rule holds,
        where one of its splits holds; a case leaves the MDC's ADRGs at the first rule that holds."""
        cases, trace = batch.cases, batch.trace
        adrgs = Candidates(self._adrg_openings[mdc_entry.code], cases, self.lookups)
        adrgs.put(rows, 0, trace)
        medical_from = self._ambiguous_at.get(mdc_entry.code)
        medical: list[np.ndarray] = []
        for position, adrg_entry in enumerate(adrgs.entries):
            candidates = adrgs.take(position)
            if not len(candidates):
                continue
            hit = rule_holds(
                adrg_entry, cases, self.lookups, candidates, trace, opened=adrgs.opened(position)
            )
            hit_rows = candidates
            if len(hit) < len(candidates):  # (most rules hold on every case waiting at them)
                missed = np.ones(len(candidates), dtype=bool)
                missed[hit] = False
                adrgs.put(candidates[missed], position + 1, trace)
                hit_rows = candidates[hit]
            if not len(hit_rows):
                continue
            if trace is not None:
                trace.entered(adrg_entry)
            choice = self._choose_drg(adrg_entry, batch.mcc_count[hit_rows], batch.cc_count[hit_rows], trace)
            taken = choice >= 0
            if not taken.all():
                hit_rows, choice = hit_rows[taken], choice[taken]
            batch.drg_index[hit_rows] = self._drg_positions[adrg_entry.code][choice]
            batch.grouped[hit_rows] = True
            if medical_from is not None and position >= medical_from:
                medical.append(hit_rows)
        if medical:  # a medical ADRG took them, but their OR procedure fits none of the MDC's
            self._ambiguous(mdc_entry.code, np.concatenate(medical), batch)

    def _ambiguous(self, mdc_code: str, rows: np.ndarray, batch: _Batch) -> np.ndarray:
        """Put the ``rows`` with an OR procedure into the MDC's 歧义组; returns them."""
        if not len(rows):
            return rows
        taken = rows[batch.with_or_procedure[rows]]
        batch.drg_index[taken] = self._ambiguous_index[mdc_code]
        if batch.trace is not None and len(taken):
            batch.trace.finish(
                f"{_ambiguous_code(mdc_code)}: an operating-room procedure that none of {mdc_code}'s "
                "procedure ADRGs takes (歧义组)"
            )
        return taken

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

    def _status(self, cases: EncodedCases, walk: _Walk) -> tuple[Any, Any]:
        """Status and reason as ``TEXT``; a reason is text only where a case is invalid or ungroupable."""
        explained = np.flatnonzero(~walk.grouped)  # (few: only their reasons are read)
        ungroupable = cases.valid[explained]
        status_codes = np.zeros(len(cases), dtype=np.int8)
        status_codes[explained] = np.where(ungroupable, 1, 2)
        reason = np.empty(len(explained), dtype=object)
        reason[~ungroupable] = cases.invalid_reasons  # (an invalid case is never grouped: all are here)
        reason[ungroupable] = self._ungroupable_reasons(cases, walk, explained[ungroupable])
        codes, labels = pd.factorize(reason)
        reason_codes = np.zeros(len(cases), dtype=np.int64)
        reason_codes[explained] = codes + 1
        return coded_text(_STATUSES, status_codes), coded_text(["", *labels], reason_codes)

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


def _ambiguous_code(mdc: str) -> str:
    """MDCF → FQY: the MDC's letter and QY."""
    return f"{mdc.removeprefix('MDC')}{AMBIGUOUS}"


def _first_medical(mdc: Entry, tables: CasemixTables) -> int:
    """Position of the MDC's first ADRG whose rule reads no procedure (all of them: len(children))."""
    for position, code in enumerate(mdc.children):
        if not any(c.kind in PROCEDURE_CONDITIONS for c in tables.adrgs[code].rule):
            return position
    return len(mdc.children)


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
    return join_codes(codes) or ""
