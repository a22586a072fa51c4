"""Rule conditions and DRG splits evaluated as numpy masks over a subset of cases.

Each function takes ``rows`` (case positions still in play) and answers one boolean per row, so the
grouper only ever touches cases that can still reach a group; a one-row batch gives the answer for a
single case with exactly the same code.
"""

from __future__ import annotations

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
        return lookups.code_list(condition)[dx.principal[rows]]
    if kind == "any_diagnosis_in":
        return dx.any_in(lookups.code_list(condition), rows)
    if kind == "principal_procedure_in":
        return lookups.code_list(condition)[px.principal[rows]]
    if kind == "any_procedure_in":
        return px.any_in(lookups.code_list(condition), rows)
    if kind == "principal_procedure_is_or_procedure":
        return lookups.or_procedure[px.principal[rows]]
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
) -> np.ndarray:
    """Positions in ``rows`` where every condition of the entry's rule holds (evaluated lazily: each
    condition only on the rows the ones before it kept; the first on ``rows`` as given, no copy)."""
    kept: np.ndarray | None = None  # None: every row so far
    for condition in entry.rule:
        if kept is not None and not len(kept):
            break
        ok = holds(condition, cases, lookups, rows if kept is None else rows[kept])
        if observer is not None:
            observer.condition(entry, condition, bool(ok[0]))
        kept = np.flatnonzero(ok) if kept is None else kept[ok]
    return np.arange(len(rows)) if kept is None else kept


def complication_counts(diagnoses: CodeLists, lookups: Lookups) -> tuple[np.ndarray, np.ndarray]:
    """Secondary diagnoses per case that count as MCC and as CC once exclusions are applied.

    Only entries listed as MCC or CC are looked at; each entry's case comes from one repeat of the
    case numbers (a binary search per listed entry cost three times as much: 60% of a million demo
    cases' entries are listed).
    """
    n = len(diagnoses.indptr) - 1
    mcc, cc = lookups.mcc_table[diagnoses.ids], lookups.cc_table[diagnoses.ids]
    listed = np.flatnonzero((mcc >= 0) | (cc >= 0))
    lengths = np.diff(diagnoses.indptr)
    rows = np.repeat(np.arange(n, dtype=np.int32 if n < 2**31 else np.int64), lengths)[listed]
    secondary = diagnoses.indptr[rows] != listed
    listed, rows = listed[secondary], rows[secondary]
    principal_table = lookups.principal_table[diagnoses.principal[rows]]
    mcc, cc = mcc[listed], cc[listed]
    mcc_count = np.bincount(rows[(mcc >= 0) & (mcc != principal_table)], minlength=n)
    cc_count = np.bincount(rows[(cc >= 0) & (cc != principal_table)], minlength=n)
    return mcc_count.astype(np.int64, copy=False), cc_count.astype(np.int64, copy=False)


def split_holds(split: str, mcc_count: np.ndarray, cc_count: np.ndarray) -> np.ndarray:
    """Whether a DRG's split holds: ``mcc``, ``mcc_or_cc`` or ``none`` (always)."""
    if split == "mcc":
        return mcc_count > 0
    if split == "mcc_or_cc":
        return (mcc_count + cc_count) > 0
    return np.ones(len(mcc_count), dtype=bool)
