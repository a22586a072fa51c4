"""The tables compiled to integer code ids and numpy lookup arrays.

Every code the tables know gets an integer id; every code list becomes a boolean array indexed by id,
so "is this code in the list" is one numpy gather over a whole batch. The last id stands for a code
the tables do not know (or no code at all) and is in no list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from casemix.tables import CasemixTables, Condition

NOT_COMPLICATION = -1
NO_EXCLUSION = -2


class Vocabulary:
    """Code → integer id over a fixed set of codes."""

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = np.array(sorted(set(codes)), dtype=object)
        self.index = {code: i for i, code in enumerate(self.codes)}
        self.unknown = len(self.codes)

    def lookup(self, codes: Iterable[str]) -> np.ndarray:
        """A boolean array over ids (the unknown id included) that is True for ``codes``."""
        table = np.zeros(self.unknown + 1, dtype=bool)
        table[[self.index[c] for c in codes]] = True
        return table

    def labels(self, labelled: Mapping[str, str], labels: Mapping[str, int], missing: int) -> np.ndarray:
        """An int32 array over ids giving each code's label number, ``missing`` where unlabelled."""
        table = np.full(self.unknown + 1, missing, dtype=np.int32)
        for code, label in labelled.items():
            table[self.index[code]] = labels[label]
        return table

    def ids(self, codes: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.index.get(c, self.unknown) for c in codes), dtype=np.int32)


class Lookups:
    """Vocabularies and lookup arrays for one table set; built once per :class:`Grouper`."""

    def __init__(self, tables: CasemixTables) -> None:
        self.tables = tables
        entries = [*tables.mdcs.values(), *tables.adrgs.values()]
        conditions = [c for e in entries for c in e.rule]
        self.diagnoses = Vocabulary(
            [
                *tables.diagnoses,
                *tables.mcc,
                *tables.cc,
                *tables.principal_exclusions,
                *(code for c in conditions if c.kind in _DIAGNOSIS_KINDS for code in c.codes),
                *(
                    code
                    for c in conditions
                    if c.kind == "distinct_trauma_regions_at_least"
                    for g in c.groups.values()
                    for code in g
                ),
            ]
        )
        self.procedures = Vocabulary(
            [
                *tables.procedures,
                *tables.or_procedures,
                *(code for c in conditions if c.kind in _PROCEDURE_KINDS for code in c.codes),
                *(
                    code
                    for c in conditions
                    if c.kind == "procedure_groups_any_of"
                    for g in c.groups.values()
                    for code in g
                ),
            ]
        )
        self.or_procedure = self.procedures.lookup(tables.or_procedures)
        exclusion_labels = {
            label: i
            for i, label in enumerate(
                sorted({*tables.mcc.values(), *tables.cc.values(), *tables.principal_exclusions.values()})
            )
        }
        self.mcc_table = self.diagnoses.labels(tables.mcc, exclusion_labels, NOT_COMPLICATION)
        self.cc_table = self.diagnoses.labels(tables.cc, exclusion_labels, NOT_COMPLICATION)
        self.principal_table = self.diagnoses.labels(
            tables.principal_exclusions, exclusion_labels, NO_EXCLUSION
        )
        self._code_lists = {id(c): self._code_list(c) for c in conditions if c.codes}
        self._group_lists = {
            id(c): {label: self._vocabulary(c).lookup(codes) for label, codes in c.groups.items()}
            for c in conditions
            if c.groups
        }

    def __reduce__(self) -> tuple[type[Lookups], tuple[CasemixTables]]:
        """Rebuilt from the tables when unpickled (Dask workers): arrays are keyed by condition identity."""
        return (Lookups, (self.tables,))

    def code_list(self, condition: Condition) -> np.ndarray:
        """The boolean lookup array of a ``*_in`` condition's list."""
        return self._code_lists[id(condition)]

    def group_lists(self, condition: Condition) -> dict[str, np.ndarray]:
        """Lookup arrays of a condition's labelled groups (procedure groups or trauma regions)."""
        return self._group_lists[id(condition)]

    def _code_list(self, condition: Condition) -> np.ndarray:
        return self._vocabulary(condition).lookup(condition.codes)

    def _vocabulary(self, condition: Condition) -> Vocabulary:
        return (
            self.diagnoses
            if condition.kind in (*_DIAGNOSIS_KINDS, "distinct_trauma_regions_at_least")
            else self.procedures
        )


_DIAGNOSIS_KINDS = ("principal_diagnosis_in", "any_diagnosis_in")
_PROCEDURE_KINDS = ("principal_procedure_in", "any_procedure_in")
