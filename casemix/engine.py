"""The casemix engine: grouping tables, one grouper, weights and payment rules behind one object.

Every caller that groups, weighs or prices cases (the training labels, the feature views, the coder's
what-if, the forecast, the commands, the service) builds a :class:`CasemixEngine` and asks it, so the
recipe "group as the rules say, take the insurer's weights or calibrate them on the grouped history,
price with ``price_cases``" is written once. The rules stay data and ``price_cases`` stays a pure
function: the engine only chooses its arguments.

Grouping each case once per run: engines over the same table set and grouping option share one
:class:`Grouper` per process and remember what it answered, per case, by a fingerprint of what the
grouper reads (``GROUPER_INPUT_COLUMNS``). A case grouped for one task's labels is not grouped again
for the next task, for a feature view or for a split of the same frame; only cases never seen (or
with changed codes or demographics) reach the grouper. The memory is bounded (``MEMO_ROWS``), and
batches under ``MEMO_MIN_ROWS`` cases are looked up in it but not added to it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from casemix.cases import CANONICAL_COLUMNS, NUMBER_COLUMNS, REFERENCE_COLUMNS
from casemix.grouper import OUTPUT_COLUMNS, Grouper
from casemix.payment import BaseRate, PaymentRules, drg_cost, price_cases, priced_columns
from casemix.rw_table import read_weights, weights_source
from casemix.tables import CasemixTables, load_tables
from casemix.weights import calibrate_weights
from contract.errors import ConfigError
from contract.fields import repeated_text
from contract.settings import Settings, get_settings

GROUPER_INPUT_COLUMNS = (*NUMBER_COLUMNS, *REFERENCE_COLUMNS, *CANONICAL_COLUMNS)
MEMO_ROWS = 4_000_000  # distinct cases remembered per grouping (about 250 MB); past it the memo restarts
# Smaller batches are looked up but not remembered (nor looked up while nothing is remembered): the
# service's one-case requests neither grow the memo nor pay for merging into it.
MEMO_MIN_ROWS = 256


@dataclass
class _Memo:
    """Grouper answers by case fingerprint, sorted by fingerprint for ``searchsorted`` look-ups."""

    keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    # Each output column in the grouper's own dtype (its text is Arrow-backed).
    columns: dict[str, pd.api.extensions.ExtensionArray] = field(default_factory=dict)


class _SharedGrouping:
    """One grouper and its memo, shared by every engine over the same tables and grouping option."""

    def __init__(self, grouper: Grouper) -> None:
        self.grouper = grouper
        self._memos: dict[tuple[tuple[str, ...], bool], _Memo] = {}
        self._lock = threading.Lock()

    def group(self, cases: pd.DataFrame, translate_codes: bool) -> pd.DataFrame:
        """``Grouper.group_frame`` of ``cases``, grouping only the cases it has not answered yet.

        A batch under ``MEMO_MIN_ROWS`` is looked up but not remembered (nor looked up while nothing
        is remembered): a one-case request neither grows the memo nor pays for its merge.
        """
        read = tuple(c for c in GROUPER_INPUT_COLUMNS if c in cases.columns)
        small = len(cases) < MEMO_MIN_ROWS
        if not read or (small and not self._memos):  # (without columns the grouper names what is missing)
            return self.grouper.group_frame(cases, translate_codes=translate_codes)
        key = (read, translate_codes)
        keys = pd.util.hash_pandas_object(cases[list(read)], index=False).to_numpy()
        with self._lock:  # memos are replaced, never changed: a snapshot stays valid
            memo = self._memos.get(key, _Memo())
        unknown = ~_found(memo.keys, keys)
        if not unknown.any():
            return _remembered(cases.index, keys, memo)
        new_keys, first = np.unique(keys[unknown], return_index=True)
        answered = self.grouper.group_frame(
            cases.iloc[np.flatnonzero(unknown)[first]], translate_codes=translate_codes
        )
        if small:
            return _answers(cases.index, keys, unknown, memo, new_keys, answered)
        with self._lock:
            memo = self._memos.get(key, _Memo())
            still = ~_found(memo.keys, new_keys)  # (another thread may have added some meanwhile)
            memo = self._remember(memo, new_keys[still], answered.iloc[np.flatnonzero(still)], keys)
            self._memos[key] = memo
        if not _found(memo.keys, keys).all():  # another thread's batch restarted the memo meanwhile
            return self.grouper.group_frame(cases, translate_codes=translate_codes)
        return _remembered(cases.index, keys, memo)

    @staticmethod
    def _remember(memo: _Memo, keys: np.ndarray, answered: pd.DataFrame, batch: np.ndarray) -> _Memo:
        """``memo`` with the new answers merged in; past ``MEMO_ROWS`` only the batch's are kept."""
        if memo.columns and len(memo.keys) + len(keys) > MEMO_ROWS:
            kept = np.isin(memo.keys, batch)
            memo = _Memo(memo.keys[kept], {c: v[kept] for c, v in memo.columns.items()})
        merged = np.concatenate([memo.keys, keys])
        order = np.argsort(merged, kind="stable")
        columns = {
            c: (
                pd.concat([pd.Series(memo.columns[c]), answered[c]], ignore_index=True).array
                if memo.columns
                else answered[c].array
            )[order]
            for c in OUTPUT_COLUMNS
        }
        return _Memo(keys=merged[order], columns=columns)

    def forget(self) -> None:
        with self._lock:
            self._memos.clear()


_SHARED: dict[tuple[Path, bool], _SharedGrouping] = {}
_SHARED_LOCK = threading.Lock()


def _shared(tables: CasemixTables, ambiguous_groups: bool) -> _SharedGrouping:
    """The process's grouping for a table set (by folder) and grouping option, built on first use."""
    key = (Path(tables.path).resolve(), ambiguous_groups)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = _SharedGrouping(Grouper(tables, ambiguous_groups=ambiguous_groups))
        return _SHARED[key]


def forget_groupings() -> None:
    """Drop every remembered grouping (the groupers stay): for long-lived processes and tests."""
    with _SHARED_LOCK:
        for shared in _SHARED.values():
            shared.forget()


def _remembered(index: pd.Index, keys: np.ndarray, memo: _Memo) -> pd.DataFrame:
    at = np.searchsorted(memo.keys, keys)
    return pd.DataFrame({c: memo.columns[c][at] for c in OUTPUT_COLUMNS}, index=index)


def _answers(
    index: pd.Index,
    keys: np.ndarray,
    unknown: np.ndarray,
    memo: _Memo,
    new_keys: np.ndarray,
    answered: pd.DataFrame,
) -> pd.DataFrame:
    """A small batch's answers: the memo's for the cases it knows, ``answered`` (by ``new_keys``,
    sorted) for the others."""
    fresh = answered.iloc[np.searchsorted(new_keys, keys[unknown])].set_axis(np.flatnonzero(unknown))
    if unknown.all():
        return fresh.set_axis(index)
    known = np.flatnonzero(~unknown)
    remembered = _remembered(pd.Index(known), keys[known], memo)
    return pd.concat([remembered, fresh]).sort_index().set_axis(index)


def _found(known: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(known):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    return known[at] == keys


class CasemixEngine:
    """Grouping tables, the payment rules, their grouper and the weights to price with.

    ``rules`` None makes a grouping-only engine with the CHS-DRG 1.1 reference grouper (no 歧义组);
    with rules, cases are grouped as ``[grouping]`` says and priced by them. ``weights`` is the
    insurer's RW table (a table or its CSV); None takes the rules' ``[calibration] rw_table``, else
    weights are calibrated on the grouped history given to :meth:`weights` or :meth:`price`.
    ``remember`` False groups without the shared memo: for a one-pass command over cases no other step
    of the process groups, where fingerprinting them is pure cost.
    """

    def __init__(
        self,
        tables: CasemixTables | None = None,
        rules: PaymentRules | None = None,
        weights: pd.DataFrame | Path | None = None,
        *,
        remember: bool = True,
    ) -> None:
        self.tables = tables if tables is not None else load_tables()
        self.rules = rules
        self._given = weights
        self._table: pd.DataFrame | None = None
        self._use_memo = remember
        ambiguous = rules is not None and rules.grouping.ambiguous_groups
        self._grouping = _shared(self.tables, ambiguous)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        rules: PaymentRules | Path | None = None,
        weights: pd.DataFrame | Path | None = None,
        tables: CasemixTables | Path | None = None,
    ) -> CasemixEngine:
        """The run's engine: the settings' tables and payment rules unless given (a path is loaded)."""
        settings = settings if settings is not None else get_settings()
        if not isinstance(tables, CasemixTables):
            tables = load_tables(tables if tables is not None else settings.casemix_tables)
        if not isinstance(rules, PaymentRules):
            rules = PaymentRules.load(rules if rules is not None else settings.payment_config)
        return cls(tables, rules, weights)

    @property
    def grouper(self) -> Grouper:
        """The one grouper of these tables and grouping option (for one case's trace, or the tables)."""
        return self._grouping.grouper

    @property
    def rw_table(self) -> Path | None:
        """The RW table file the weights are read from; None when they are given as a table or calibrated."""
        if isinstance(self._given, Path):
            return self._given
        if self._given is None and self.rules is not None:
            return self.rules.calibration.rw_table
        return None

    def group(self, cases: pd.DataFrame, *, translate_codes: bool = False) -> pd.DataFrame:
        """The grouper's ``OUTPUT_COLUMNS`` for ``cases`` (same index); a case already grouped in this
        process is answered from memory."""
        if not self._use_memo:
            return self.grouper.group_frame(cases, translate_codes=translate_codes)
        return self._grouping.group(cases, translate_codes)

    def grouped(self, cases: pd.DataFrame, *, translate_codes: bool = False) -> pd.DataFrame:
        """``cases`` with the grouper's columns (replacing any they had): what :meth:`price` takes."""
        found = self.group(cases, translate_codes=translate_codes)
        return pd.concat([cases.drop(columns=list(found.columns), errors="ignore"), found], axis=1)

    def weights(self, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """The weights to price with: the insurer's table (given, or the rules'), else weights
        calibrated on ``history`` (grouped cases) on the cost inside the DRG, DRGs named.

        Under ``[calibration] unstable = "by_item"`` a table's DRGs flagged unstable get no weight.
        """
        rules = self._priced_by()
        if self._table is None and (self._given is not None or rules.calibration.rw_table is not None):
            given = self._given if self._given is not None else rules.calibration.rw_table
            table = given if isinstance(given, pd.DataFrame) else read_weights(Path(given))
            if rules.calibration.unstable == "by_item" and "stable" in table.columns:
                table = table[table["stable"].ne(False)]
            self._table = table
        if self._table is not None:
            return self._table
        if history is None:
            raise ConfigError(
                f"payment rules '{rules.name}' name no RW table ([calibration] rw_table): weights are "
                "calibrated on grouped history, and none was given"
            )
        return self.calibrate(history)

    def calibrate(self, history: pd.DataFrame) -> pd.DataFrame:
        """Weights estimated from grouped ``history`` as the rules' ``[calibration]`` says, on the cost
        inside the DRG (the cost the payment compares with the standard), DRGs named; any RW table is
        left aside (the fallback, and ``caselens casemix weights``)."""
        rules = self._priced_by()
        table = calibrate_weights(history, rules.calibration, cost=drg_cost(history, rules))
        return table.assign(name=[self.tables.drg_name(drg) for drg in table.index])

    def price(self, grouped: pd.DataFrame, weights: pd.DataFrame | None = None) -> pd.DataFrame:
        """``price_cases`` of grouped cases (see :meth:`grouped`) under the engine's rules, with
        ``weights`` (default :meth:`weights` on ``grouped``)."""
        weights = weights if weights is not None else self.weights(grouped)
        return price_cases(grouped, self._priced_by(), weights)

    def price_columns(self, grouped: pd.DataFrame, weights: pd.DataFrame) -> dict[str, object]:
        """:meth:`price`'s payment columns by name, without the frame (``payment.priced_columns``)."""
        return priced_columns(grouped, self._priced_by(), weights)

    def price_labelled(self, grouped: pd.DataFrame, weights: pd.DataFrame | None = None) -> pd.DataFrame:
        """:meth:`price` with ``weights_source`` on every row: whether the weights are the insurer's
        table or estimated from the cases' own history, as a priced file and the margin labels say."""
        weights = weights if weights is not None else self.weights(grouped)
        source = repeated_text(weights_source(weights), len(grouped))
        return self.price(grouped, weights).assign(weights_source=source)

    def at_rate(
        self, grouped: pd.DataFrame, rate: float, weights: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """:meth:`price` with every case paid at one base rate (yuan per RW), whatever its date or the
        rules' method: how the forecast re-prices history at the rate in force in a future quarter
        (under the point method that rate is the point value × ``points_per_rw``)."""
        weights = weights if weights is not None else self.weights(grouped)
        return price_cases(grouped, rules_at_rate(self._priced_by(), rate), weights)

    def _priced_by(self) -> PaymentRules:
        if self.rules is None:
            raise ConfigError("this casemix engine groups only: give it payment rules to weigh and price")
        return self.rules


def rules_at_rate(rules: PaymentRules, rate: float) -> PaymentRules:
    """The same rules paying every case at one base rate (yuan per RW), whatever its date or method."""
    return rules.model_copy(
        update={"method": "rate", "base_rates": [BaseRate(effective_from=date.min, yuan=rate)]}
    )
