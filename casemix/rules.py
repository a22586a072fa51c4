"""Rule conditions and DRG splits evaluated as numpy masks over a subset of cases.

Each function takes ``rows`` (case positions still in play) and answers one boolean per row, so the
grouper only ever touches cases that can still reach a group; a one-row batch gives the answer for a
single case with exactly the same code. Look-ups by the 32-bit code ids go through ``np.take``:
indexing with them converts the ids to 64-bit first and took twice as long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from casemix.cases import CodeLists, EncodedCases
from casemix.lookups import Lookups
from casemix.tables import Condition, Entry


class RuleObserver(Protocol):
    """Receives each evaluated condition of a one-case batch (see :mod:`casemix.trace`)."""

    def condition(self, entry: Entry, condition: Condition, held: bool) -> None: ...


def holds(condition: Condition, cases: EncodedCases, lookups: Lookups, rows: np.ndarray) -> np.ndarray:
    """Whether ``condition`` holds for each case in ``rows``."""
    kind, value = condition.kind, condition.value
    dx, px = cases.diagnoses, cases.procedures
    if kind == "principal_diagnosis_in":
        return np.take(lookups.code_list(condition), dx.principal[rows])
    if kind == "any_diagnosis_in":
        return dx.any_in(lookups.code_list(condition), rows)
    if kind == "principal_procedure_in":
        return np.take(lookups.code_list(condition), px.principal[rows])
    if kind == "any_procedure_in":
        return px.any_in(lookups.code_list(condition), rows)
    if kind == "principal_procedure_is_or_procedure":
        return np.take(lookups.or_procedure, px.principal[rows])
    if kind == "no_or_procedure":
        return ~px.any_in(lookups.or_procedure, rows)
    if kind == "age_days_at_most":
        return cases.age_days[rows] <= value
    if kind == "age_years":
        return cases.age_years[rows] == value
    if kind == "sex":
        return cases.sex[rows] == value
    if kind == "birth_weight_grams":
        weight = cases.birth_weight_g[rows]
        ok = weight > 0
        if "min" in value:
            ok &= weight >= value["min"]
        if "below" in value:
            ok &= weight < value["below"]
        return ok
    if kind == "procedure_groups_any_of":
        hit = {label: px.any_in(lookup, rows) for label, lookup in lookups.group_lists(condition).items()}
        return np.logical_or.reduce([np.logical_and.reduce([hit[g] for g in alt]) for alt in value])
    if kind == "distinct_trauma_regions_at_least":
        regions = [dx.any_in(lookup, rows) for lookup in lookups.group_lists(condition).values()]
        return np.sum(regions, axis=0) >= value
    raise ValueError(f"unknown condition {kind!r}")  # load_tables rejects these; kept for direct callers


def rule_holds(
    entry: Entry,
    cases: EncodedCases,
    lookups: Lookups,
    rows: np.ndarray,
    observer: RuleObserver | None = None,
    *,
    opened: bool = False,
) -> np.ndarray:
    """Positions in ``rows`` where every condition of the entry's rule holds (evaluated lazily: each
    condition only on the rows the ones before it kept; the first on ``rows`` as given, no copy).
    ``opened``: the rule's first condition is known to hold on every row (``Candidates`` chose them
    by it), so it is reported, not evaluated again."""
    kept: np.ndarray | None = None  # None: every row so far
    for at, condition in enumerate(entry.rule):
        if kept is not None and not len(kept):
            break
        if opened and not at:
            if observer is not None:
                observer.condition(entry, condition, True)
            continue
        ok = holds(condition, cases, lookups, rows if kept is None else rows[kept])
        if observer is not None:
            observer.condition(entry, condition, bool(ok[0]))
        kept = np.flatnonzero(ok) if kept is None else kept[ok]
    return np.arange(len(rows)) if kept is None else kept


@dataclass(frozen=True)
class Openings:
    """The list each entry's rule opens with, where it opens on a principal code: the row of
    ``Lookups.diagnosis_lists`` / ``procedure_lists`` it reads; made once per sequence of entries."""

    entries: Sequence[Entry]
    dx_rows: np.ndarray
    px_rows: np.ndarray
    on_dx: np.ndarray  # the rule opens on the principal diagnosis
    on_px: np.ndarray  # ... on the principal procedure
    on_any: np.ndarray  # ... otherwise (or is empty): any case may meet it

    @classmethod
    def of(cls, entries: Sequence[Entry], lookups: Lookups) -> Openings:
        kinds = [entry.rule[0].kind if entry.rule else None for entry in entries]
        dx_rows, px_rows = np.zeros(len(entries), dtype=np.intp), np.zeros(len(entries), dtype=np.intp)
        for j, (entry, kind) in enumerate(zip(entries, kinds, strict=True)):
            if kind == "principal_diagnosis_in":
                dx_rows[j] = lookups.list_row(entry.rule[0])
            elif kind == "principal_procedure_in":
                px_rows[j] = lookups.list_row(entry.rule[0])
            # (principal_procedure_is_or_procedure reads row 0: the OR procedures)
        return cls(
            entries=entries,
            dx_rows=dx_rows,
            px_rows=px_rows,
            on_dx=np.array([k == "principal_diagnosis_in" for k in kinds], dtype=bool),
            on_px=np.array([k in _OPENS_ON_PROCEDURE for k in kinds], dtype=bool),
            on_any=np.array([k not in _OPENS_ON_PRINCIPAL for k in kinds], dtype=bool),
        )


_OPENS_ON_PROCEDURE = ("principal_procedure_in", "principal_procedure_is_or_procedure")
_OPENS_ON_PRINCIPAL = ("principal_diagnosis_in", *_OPENS_ON_PROCEDURE)


class Candidates:
    """Entries walked in order (the MDCs, or an MDC's ADRGs) and, for each, the cases still to try it
    on: only those whose principal codes its rule's opening condition takes.

    Nearly every rule opens with a condition on the principal diagnosis or procedure, so a case can
    reach few entries: trying every entry's rule on every case still in play made 28 million tries
    for a million demo cases, 40% of grouping; queued, they make 3.3 million. Each case waits at the
    first entry at or after where it stands whose rule can hold for it, told by a table over the
    batch's distinct principal codes. A skipped entry is reported to the observer as ``rule_holds``
    reports it: its first condition failed.
    """

    def __init__(self, openings: Openings, cases: EncodedCases, lookups: Lookups) -> None:
        self.entries = openings.entries
        dx_ids, self._dx = cases.diagnoses.distinct_principals
        px_ids, self._px = cases.procedures.distinct_principals
        self._by_dx = _first_reachable(
            lookups.diagnosis_lists[np.ix_(openings.dx_rows, dx_ids)], openings.on_dx, openings.on_any
        )
        self._by_px = _first_reachable(
            lookups.procedure_lists[np.ix_(openings.px_rows, px_ids)], openings.on_px, None
        )
        self._on_any = openings.on_any
        self._waiting: list[list[np.ndarray]] = [[] for _ in self.entries]

    def opened(self, position: int) -> bool:
        """Whether the cases waiting at an entry are known to meet its rule's first condition."""
        return not self._on_any[position]

    def put(self, rows: np.ndarray, start: int, observer: RuleObserver | None = None) -> None:
        """Queue the cases in ``rows`` at the first entry at or after ``start`` they can reach."""
        if not len(rows):
            return
        found = np.minimum(
            np.take(self._by_dx[start], self._dx[rows]), np.take(self._by_px[start], self._px[rows])
        )
        if observer is not None:
            for entry in self.entries[start : int(found[0])]:
                observer.condition(entry, entry.rule[0], False)
        if len(rows) == 1:  # (one case: a service request's)
            if found[0] < len(self.entries):
                self._waiting[found[0]].append(rows)
            return
        counts = np.bincount(found, minlength=len(self.entries) + 1)
        if counts[-1] == len(rows):  # (none can reach another entry)
            return
        order = np.argsort(found, kind="stable")  # (a radix sort: the positions are small integers)
        upper = np.cumsum(counts)
        for position in np.flatnonzero(counts[:-1]).tolist():
            self._waiting[position].append(rows[order[upper[position] - counts[position] : upper[position]]])

    def take(self, position: int) -> np.ndarray:
        """The cases waiting at entry ``position`` (removed from the queue)."""
        waiting, self._waiting[position] = self._waiting[position], []
        if len(waiting) == 1:
            return waiting[0]
        return np.concatenate(waiting) if waiting else np.empty(0, dtype=np.intp)


def _first_reachable(listed: np.ndarray, opens_on: np.ndarray, on_any: np.ndarray | None) -> np.ndarray:
    """Row j: per code (a column of ``listed``, entries × codes), the first entry at or after j whose
    opening list holds it (``opens_on``) or that any case may meet (``on_any``); the entry count
    when none does, and in a last row."""
    count = len(opens_on)
    reached = listed & opens_on[:, None]
    if on_any is not None:
        reached |= on_any[:, None]
    first = np.full((count + 1, listed.shape[1]), count, dtype=np.min_scalar_type(count))
    np.copyto(first[:count], np.arange(count, dtype=first.dtype)[:, None], where=reached)
    np.minimum.accumulate(first[::-1], axis=0, out=first[::-1])
    return first


def complication_counts(diagnoses: CodeLists, lookups: Lookups) -> tuple[np.ndarray, np.ndarray]:
    """Secondary diagnoses per case that count as MCC and as CC once exclusions are applied.

    Each entry is flagged in place (its case's exclusion table spread to the entries by one repeat)
    and the flags are counted per case from their running sum at the case boundaries: choosing the
    listed entries first, then their cases, cost twice as much on a million demo cases.
    """
    starts, ends = diagnoses.indptr[:-1], diagnoses.indptr[1:]
    excluded = np.repeat(np.take(lookups.principal_table, diagnoses.principal), ends - starts)
    principal = starts[ends > starts]  # (the first entry of a case is its principal: never counted)
    # one set of entry-long buffers for both tables (each is fresh memory to touch on a million cases)
    label = np.empty(len(diagnoses.ids), dtype=lookups.mcc_table.dtype)
    flag, other = np.empty(len(label), dtype=bool), np.empty(len(label), dtype=bool)
    running = np.zeros(len(label) + 1, dtype=np.int32 if len(label) < 2**31 else np.int64)
    counts = []
    for table in (lookups.mcc_table, lookups.cc_table):
        np.take(table, diagnoses.ids, out=label, mode="clip")  # (ids are in range: no buffering)
        np.greater_equal(label, 0, out=flag)
        flag &= np.not_equal(label, excluded, out=other)
        flag[principal] = False
        np.cumsum(flag, out=running[1:])
        counts.append((running[ends] - running[starts]).astype(np.int64))
    return counts[0], counts[1]


def split_holds(split: str, mcc_count: np.ndarray, cc_count: np.ndarray) -> np.ndarray:
    """Whether a DRG's split holds: ``mcc``, ``mcc_or_cc`` or ``none`` (always)."""
    if split == "mcc":
        return mcc_count > 0
    if split == "mcc_or_cc":
        return (mcc_count + cc_count) > 0
    return np.ones(len(mcc_count), dtype=bool)
