"""The tables compiled to integer code ids and numpy lookup arrays.

Every code the tables know gets an integer id; every code list becomes a boolean array indexed by id,
so "is this code in the list" is one numpy gather over a whole batch. The last id stands for a code
the tables do not know (or no code at all) and is in no list.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casemix.cache import cached
from casemix.tables import CasemixTables, CodeTable, Condition

NOT_COMPLICATION = -1
NO_EXCLUSION = -2


DICT_LOOKUP_BELOW = 256


class Vocabulary:
    """Code → integer id over a fixed set of codes, numbered in sorted order.

    Built and looked up in Arrow: the tables' 250,000 code cells and the rules' 88,000 listed codes
    are made unique, sorted and found without a Python loop over them (0.06 s of start-up as one)."""

    def __init__(self, codes: pa.ChunkedArray) -> None:
        unique = pc.unique(codes)
        self.codes = unique.take(pc.sort_indices(unique))
        self.unknown = len(self.codes)

    def lookups(self, codes: pa.Array, lengths: Sequence[int]) -> np.ndarray:
        """One boolean row over ids (the unknown id included) per list, True for its codes; the lists
        are ``codes`` cut into ``lengths``, in order, and every code is in the vocabulary."""
        table = np.zeros((len(lengths), self.unknown + 1), dtype=bool)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        table[rows, pc.index_in(codes, value_set=self.codes).to_numpy()] = True
        return table

    def labels(self, labelled: CodeTable, labels: pa.Array, missing: int) -> np.ndarray:
        """An int32 array over ids giving each labelled code its label's position in ``labels``,
        ``missing`` where unlabelled."""
        table = np.full(self.unknown + 1, missing, dtype=np.int32)
        ids = pc.index_in(labelled.code_column, value_set=self.codes).to_numpy()
        table[ids] = pc.index_in(labelled.value_column, value_set=labels).to_numpy()
        return table

    def ids(self, codes: Sequence[str] | np.ndarray) -> np.ndarray:
        """Each code's id, the unknown id for a code the tables do not know.

        A few codes (one case's: a service request) are looked up in a dict, many (a batch's distinct
        codes) in Arrow: ``index_in`` hashes the whole vocabulary on each call, 0.9 ms for one case."""
        if len(codes) < DICT_LOOKUP_BELOW:
            by_code, unknown = self._by_code, self.unknown
            return np.fromiter((by_code.get(c, unknown) for c in codes), dtype=np.int32, count=len(codes))
        found = pc.index_in(pa.array(codes, pa.string()), value_set=self.codes)
        return found.fill_null(self.unknown).to_numpy().astype(np.int32, copy=False)

    @cached_property
    def _by_code(self) -> dict[str, int]:
        """Code → id, built on the first small look-up (a long-lived service's), never by a batch run."""
        return {code: i for i, code in enumerate(self.codes.to_pylist())}


# A code list of the rules: its condition, its group's label (procedure groups, trauma regions) or
# None for the condition's own list, and its codes.
_RuleList = tuple[Condition | None, str | None, Collection[str]]


@dataclass(frozen=True)
class _Built:
    """What :class:`Lookups` computes from a table set, in the order of its rule lists (which follows
    the tables, so a cached one fits the same tables read again)."""

    diagnoses: Vocabulary
    procedures: Vocabulary
    mcc: np.ndarray
    cc: np.ndarray
    principal: np.ndarray
    # each rule list's lookup row, in order: the diagnosis lists' (over diagnosis ids), then the
    # procedure lists' (over procedure ids, the OR procedures first)
    diagnosis_lists: np.ndarray
    procedure_lists: np.ndarray

    @classmethod
    def of(
        cls, tables: CasemixTables, diagnosis_lists: list[_RuleList], procedure_lists: list[_RuleList]
    ) -> _Built:
        labelled = (tables.mcc, tables.cc, tables.principal_exclusions)
        diagnoses, diagnosis_rows = _vocabulary(
            [tables.diagnoses.code_column, *(t.code_column for t in labelled)], diagnosis_lists
        )
        procedures, procedure_rows = _vocabulary([tables.procedures.code_column], procedure_lists)
        exclusion_labels = pc.unique(pa.chunked_array([t.value_column for t in labelled], pa.string()))
        return cls(
            diagnoses=diagnoses,
            procedures=procedures,
            mcc=diagnoses.labels(tables.mcc, exclusion_labels, NOT_COMPLICATION),
            cc=diagnoses.labels(tables.cc, exclusion_labels, NOT_COMPLICATION),
            principal=diagnoses.labels(tables.principal_exclusions, exclusion_labels, NO_EXCLUSION),
            diagnosis_lists=diagnosis_rows,
            procedure_lists=procedure_rows,
        )


class Lookups:
    """Vocabularies and lookup arrays for one table set; built once per :class:`Grouper` (or read
    from the cache, ``casemix.cache``, for a table set read from files)."""

    def __init__(self, tables: CasemixTables) -> None:
        self.tables = tables
        conditions = [c for e in (*tables.mdcs.values(), *tables.adrgs.values()) for c in e.rule]
        diagnosis_lists = _rule_lists(conditions, _DIAGNOSIS_KINDS, "distinct_trauma_regions_at_least")
        procedure_lists = [
            (None, None, tables.or_procedures),
            *_rule_lists(conditions, _PROCEDURE_KINDS, "procedure_groups_any_of"),
        ]
        build = partial(_Built.of, tables, diagnosis_lists, procedure_lists)
        built = build() if tables.fingerprint is None else cached("lookups", tables.fingerprint, build)
        self.diagnoses, self.procedures = built.diagnoses, built.procedures
        self.mcc_table, self.cc_table, self.principal_table = built.mcc, built.cc, built.principal
        self.diagnosis_lists, self.procedure_lists = built.diagnosis_lists, built.procedure_lists
        self.or_procedure = self.procedure_lists[0]
        self._code_lists: dict[int, np.ndarray] = {}
        self._list_rows: dict[int, int] = {}
        self._group_lists: dict[int, dict[str, np.ndarray]] = {}
        both = ((self.diagnosis_lists, diagnosis_lists), (self.procedure_lists, procedure_lists))
        for table, lists in both:
            for at, (condition, label, _) in enumerate(lists):
                if condition is None:
                    continue
                if label is None:
                    self._code_lists[id(condition)] = table[at]
                    self._list_rows[id(condition)] = at
                else:
                    self._group_lists.setdefault(id(condition), {})[label] = table[at]

    def __reduce__(self) -> tuple[type[Lookups], tuple[CasemixTables]]:
        """Rebuilt from the tables when unpickled (Dask workers): arrays are keyed by condition identity."""
        return (Lookups, (self.tables,))

    def code_list(self, condition: Condition) -> np.ndarray:
        """The boolean lookup array of a ``*_in`` condition's list."""
        return self._code_lists[id(condition)]

    def list_row(self, condition: Condition) -> int:
        """The row of a ``*_in`` condition's list in ``diagnosis_lists`` or ``procedure_lists``."""
        return self._list_rows[id(condition)]

    def group_lists(self, condition: Condition) -> dict[str, np.ndarray]:
        """Lookup arrays of a condition's labelled groups (procedure groups or trauma regions)."""
        return self._group_lists[id(condition)]


def _rule_lists(conditions: list[Condition], kinds: tuple[str, ...], grouped_kind: str) -> list[_RuleList]:
    """The code lists of the ``kinds`` conditions and the labelled groups of the ``grouped_kind`` ones."""
    return [
        *((c, None, c.codes) for c in conditions if c.kind in kinds),
        *(
            (c, label, codes)
            for c in conditions
            if c.kind == grouped_kind
            for label, codes in c.groups.items()
        ),
    ]


def _vocabulary(columns: list[pa.Array], lists: list[_RuleList]) -> tuple[Vocabulary, np.ndarray]:
    """The vocabulary of the tables' ``columns`` and the rules' ``lists``, and each list's lookup row."""
    listed = pa.array([code for _, _, codes in lists for code in codes], pa.string())
    vocabulary = Vocabulary(pa.chunked_array([*columns, listed], pa.string()))
    return vocabulary, vocabulary.lookups(listed, [len(codes) for _, _, codes in lists])


_DIAGNOSIS_KINDS = ("principal_diagnosis_in", "any_diagnosis_in")
_PROCEDURE_KINDS = ("principal_procedure_in", "any_procedure_in")
