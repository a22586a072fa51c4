"""The CHS-DRG grouping tables as one validated, immutable object.

A table set is a folder (see ``tables/chs-drg-1.1/README.md``): ``grouping.json`` with the MDC, ADRG
and DRG rules, and tab-separated code lists. A city's local version is another folder with the same
files, so loading validates everything a grouper relies on and names the file and key at fault:
a broken table set must fail at start-up, not group cases wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from casemix.cache import cached, fingerprint
from contract.errors import ConfigError
from contract.settings import get_settings

# Conditions a rule may hold, by the kind of value they take.
LIST_CONDITIONS = ("principal_diagnosis_in", "any_diagnosis_in", "principal_procedure_in", "any_procedure_in")
FLAG_CONDITIONS = ("principal_procedure_is_or_procedure", "no_or_procedure")
NUMBER_CONDITIONS = ("age_days_at_most", "age_years", "sex", "distinct_trauma_regions_at_least")
CONDITION_KINDS = (
    *LIST_CONDITIONS,
    *FLAG_CONDITIONS,
    *NUMBER_CONDITIONS,
    "birth_weight_grams",
    "procedure_groups_any_of",
)
SPLITS = ("mcc", "mcc_or_cc", "none")
TSV_COLUMNS = {
    "diagnoses.tsv": ("code", "name"),
    "procedures.tsv": ("code", "name"),
    "mcc.tsv": ("code", "exclusion_table"),
    "cc.tsv": ("code", "exclusion_table"),
    "cc_exclusions.tsv": ("principal_code", "exclusion_table"),
    "or_procedures.tsv": ("code", "name"),
}
OPTIONAL_TSV_COLUMNS = {
    "diagnosis_map.tsv": ("source_code", "grouper_code"),
    "procedure_map.tsv": ("source_code", "grouper_code"),
}


class TablesError(ConfigError):
    """A table set that cannot be used; the message names the file and key."""


class CodeTable(Mapping[str, str]):
    """A two-column code table (code → name, exclusion table or grouper code) as Arrow read it.

    The grouper's lookups are built from the Arrow columns; the dict is made on the first look-up by
    code (a trace, a name), which a batch run never does: the tables' 250,000 cells as Python strings
    cost 0.04 s of every command's start-up."""

    def __init__(self, code_column: pa.Array, value_column: pa.Array) -> None:
        self.code_column = code_column
        self.value_column = value_column

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> CodeTable:
        return cls(pa.array(list(mapping), pa.string()), pa.array(list(mapping.values()), pa.string()))

    @cached_property
    def _dict(self) -> dict[str, str]:
        return dict(zip(self.code_column.to_pylist(), self.value_column.to_pylist(), strict=True))

    def __getitem__(self, code: str) -> str:
        return self._dict[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __repr__(self) -> str:
        return f"CodeTable({len(self.code_column)} codes)"


@dataclass(frozen=True)
class Condition:
    """One condition of a rule, with its code lists resolved.

    ``codes`` is the list a ``*_in`` condition names; ``groups`` holds the labelled code sets of
    ``procedure_groups_any_of`` (procedure groups) and ``distinct_trauma_regions_at_least`` (regions).
    """

    kind: str
    value: Any
    codes: frozenset[str] = frozenset()
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """An MDC or an ADRG: its rule (all conditions must hold) and what is walked next."""

    code: str
    rule: tuple[Condition, ...]
    children: tuple[str, ...]
    lists: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Drg:
    code: str
    adrg: str
    split: str
    name: str


@dataclass(frozen=True)
class AdrgCodes:
    """Codes that lead into an ADRG: what a realistic case of that ADRG would carry."""

    diagnoses: tuple[str, ...]
    procedures: tuple[str, ...]


@dataclass(frozen=True)
class CasemixTables:
    """Everything the grouper reads, keyed by code; build with :func:`load_tables`."""

    path: Path
    scheme: str
    mdc_order: tuple[str, ...]
    mdcs: Mapping[str, Entry]
    adrgs: Mapping[str, Entry]
    drgs: Mapping[str, Drg]
    diagnoses: CodeTable
    procedures: CodeTable
    mcc: CodeTable
    cc: CodeTable
    principal_exclusions: CodeTable
    or_procedures: frozenset[str]
    diagnosis_map: CodeTable
    procedure_map: CodeTable
    adrg_mdc: Mapping[str, str]
    # The hash of the files the set was read from (``casemix.cache``); None for a set made or changed
    # in code (``dataclasses.replace`` does not copy it), whose lookups are then built, not cached.
    fingerprint: str | None = field(default=None, init=False, compare=False, repr=False)

    def diagnosis_name(self, code: str) -> str | None:
        return self.diagnoses.get(code)

    def procedure_name(self, code: str) -> str | None:
        return self.procedures.get(code)

    def drg_name(self, drg: str) -> str | None:
        """The DRG's name; an MDC's 歧义组 (e.g. FQY, see ``Grouper(ambiguous_groups=True)``) is named too."""
        found = self.drgs.get(drg)
        if found is None and len(drg) == 3 and drg.endswith("QY") and f"MDC{drg[0]}" in self.mdcs:
            return f"MDC{drg[0]} 歧义组"
        return found.name if found else None

    def mdc_of(self, adrg: str) -> str:
        return self.adrg_mdc[adrg]

    def is_mcc(self, code: str, principal: str | None) -> bool:
        """Whether a secondary diagnosis counts as an MCC next to this principal diagnosis."""
        return _counts(self.mcc.get(code), self.principal_exclusions.get(principal or ""))

    def is_cc(self, code: str, principal: str | None) -> bool:
        """Whether a secondary diagnosis counts as a CC (not an MCC) next to this principal diagnosis."""
        return _counts(self.cc.get(code), self.principal_exclusions.get(principal or ""))

    def adrg_codes(self, adrg: str) -> AdrgCodes:
        """The ADRG's own diagnosis and procedure lists; diagnoses fall back to its MDC's list."""
        entry = self.adrgs[adrg]
        diagnoses = _union(
            c.codes for c in entry.rule if c.kind in ("principal_diagnosis_in", "any_diagnosis_in")
        )
        procedures = _union(
            [c.codes for c in entry.rule if c.kind in ("principal_procedure_in", "any_procedure_in")]
            + [g for c in entry.rule if c.kind == "procedure_groups_any_of" for g in c.groups.values()]
        )
        if not diagnoses:
            diagnoses = tuple(self.mdcs[self.mdc_of(adrg)].lists.get("diagnoses", ()))
        return AdrgCodes(diagnoses=diagnoses, procedures=procedures)


def load_tables(path: Path | None = None) -> CasemixTables:
    """Load and validate a table set; ``None`` loads the configured default once per process."""
    if path is None:
        return _default_tables(get_settings().casemix_tables.resolve())
    return _load(Path(path))


@lru_cache(maxsize=1)
def _default_tables(path: Path) -> CasemixTables:
    return _load(path)


def _counts(table: str | None, principal_table: str | None) -> bool:
    return table is not None and table != principal_table


def _union(lists: Any) -> tuple[str, ...]:
    return tuple(sorted(set().union(*lists))) if lists else ()


def _load(path: Path) -> CasemixTables:
    if not path.is_dir():
        raise TablesError(f"casemix tables folder not found: {path}")
    key = fingerprint(path)
    tables = cached("tables", key, lambda: _read(path))
    object.__setattr__(tables, "fingerprint", key)  # frozen: set once, here, where it is known
    return tables


def _read(path: Path) -> CasemixTables:
    grouping = _read_json(path / "grouping.json")
    frames = {name: _read_tsv(path / name, cols) for name, cols in TSV_COLUMNS.items()}
    empty = CodeTable.of({})
    maps = {
        name: _read_tsv(path / name, cols) if (path / name).exists() else empty
        for name, cols in OPTIONAL_TSV_COLUMNS.items()
    }
    mdcs, adrgs, drgs = _parse_grouping(grouping)
    return CasemixTables(
        path=path,
        scheme=str(grouping.get("scheme", path.name)),
        mdc_order=tuple(grouping["mdc_order"]),
        mdcs=mdcs,
        adrgs=adrgs,
        drgs=drgs,
        diagnoses=frames["diagnoses.tsv"],
        procedures=frames["procedures.tsv"],
        mcc=frames["mcc.tsv"],
        cc=frames["cc.tsv"],
        principal_exclusions=frames["cc_exclusions.tsv"],
        or_procedures=frozenset(frames["or_procedures.tsv"].code_column.to_pylist()),
        diagnosis_map=maps["diagnosis_map.tsv"],
        procedure_map=maps["procedure_map.tsv"],
        adrg_mdc={adrg: mdc for mdc, entry in mdcs.items() for adrg in entry.children},
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise TablesError(f"{path.name} is missing from {path.parent}") from err
    except json.JSONDecodeError as err:
        raise TablesError(f"{path.name}: not valid JSON ({err})") from err
    for key in ("mdc_order", "mdcs", "adrgs", "drgs"):
        if key not in data:
            raise TablesError(f"{path.name}: key '{key}' is missing")
    return data


def _read_tsv(path: Path, columns: tuple[str, str]) -> CodeTable:
    """The two ``columns`` of a tab-separated table as text, trimmed (other columns are ignored).

    Read by Arrow (150,000 lines of code lists: 0.26 s through pandas and its per-cell strip, which
    every command that groups paid at start-up); every cell is text, an empty cell is "".
    """
    if not path.exists():
        raise TablesError(f"{path.name} is missing from {path.parent}")
    with path.open(encoding="utf-8") as file:
        header = file.readline().rstrip("\r\n").split("\t")
    missing = [c for c in columns if c not in header]
    if missing:
        raise TablesError(f"{path.name}: columns {missing} are missing (has {header})")
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter="\t"),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=list(columns),
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise TablesError(f"{path.name}: {error}") from None
    first, second = (pc.utf8_trim_whitespace(table.column(c).combine_chunks()) for c in columns)
    empty = pc.index(first, "").as_py()
    if empty >= 0:
        raise TablesError(f"{path.name}: row {empty + 2} has an empty {columns[0]}")
    return CodeTable(first, second)


def _parse_grouping(
    grouping: dict[str, Any],
) -> tuple[dict[str, Entry], dict[str, Entry], dict[str, Drg]]:
    drgs: dict[str, Drg] = {}
    for code, spec in grouping["drgs"].items():
        where = f"grouping.json: drgs.{code}"
        if spec.get("split") not in SPLITS:
            raise TablesError(f"{where}: split {spec.get('split')!r} is not one of {SPLITS}")
        if spec.get("adrg") not in grouping["adrgs"]:
            raise TablesError(f"{where}: ADRG {spec.get('adrg')!r} is not in adrgs")
        drgs[code] = Drg(code=code, adrg=spec["adrg"], split=spec["split"], name=str(spec.get("name", code)))
    adrgs = {
        code: _entry(f"adrgs.{code}", code, spec, "drgs", drgs) for code, spec in grouping["adrgs"].items()
    }
    for code, entry in adrgs.items():
        wrong = [d for d in entry.children if drgs[d].adrg != code]
        if wrong:
            raise TablesError(f"grouping.json: adrgs.{code}: DRGs {wrong} belong to another ADRG")
    mdcs = {
        code: _entry(f"mdcs.{code}", code, spec, "adrgs", adrgs) for code, spec in grouping["mdcs"].items()
    }
    for code, spec in grouping["mdcs"].items():
        if spec.get("ambiguous_group_on_unmatched_or_procedure", False):
            raise TablesError(
                f"grouping.json: mdcs.{code}: a per-MDC ambiguous-group (QY) flag is not read; "
                "use the payment rules' [grouping] ambiguous_groups (Grouper(ambiguous_groups=True))"
            )
    unknown = [m for m in grouping["mdc_order"] if m not in mdcs]
    if unknown:
        raise TablesError(f"grouping.json: mdc_order names MDCs {unknown} that are not in mdcs")
    return mdcs, adrgs, drgs


def _entry(where: str, code: str, spec: dict[str, Any], child_key: str, known: Mapping[str, Any]) -> Entry:
    where = f"grouping.json: {where}"
    children = tuple(spec.get(child_key, ()))
    missing = [c for c in children if c not in known]
    if missing:
        raise TablesError(f"{where}: {child_key} {missing} are not defined")
    if not children:
        raise TablesError(f"{where}: no {child_key} listed")
    lists = {
        k: tuple(v)
        for k, v in spec.items()
        if k in ("diagnoses", "procedures") or k.startswith("procedures_")
    }
    rule = tuple(
        _condition(f"{where}.rule[{i}]", item, spec, lists) for i, item in enumerate(spec.get("rule", []))
    )
    return Entry(code=code, rule=rule, children=children, lists=lists)


def _condition(where: str, item: Any, spec: dict[str, Any], lists: dict[str, tuple[str, ...]]) -> Condition:
    if not isinstance(item, dict) or len(item) != 1:
        raise TablesError(f"{where}: a condition is an object with one key, got {item!r}")
    ((kind, value),) = item.items()
    if kind not in CONDITION_KINDS:
        raise TablesError(f"{where}: unknown condition {kind!r} (known: {', '.join(CONDITION_KINDS)})")
    if kind in LIST_CONDITIONS:
        if value not in lists:
            raise TablesError(f"{where}: {kind} names list {value!r}, which this entry does not have")
        return Condition(kind, value, codes=frozenset(lists[value]))
    if kind in FLAG_CONDITIONS:
        if value is not True:
            raise TablesError(f"{where}: {kind} must be true")
        return Condition(kind, True)
    if kind == "birth_weight_grams":
        if not isinstance(value, dict) or not set(value) <= {"min", "below"} or not value:
            raise TablesError(f"{where}: birth_weight_grams takes {{min, below}}, got {value!r}")
        return Condition(kind, {k: float(v) for k, v in value.items()})
    if kind == "procedure_groups_any_of":
        groups = {str(k): frozenset(v) for k, v in spec.get("procedure_groups", {}).items()}
        labels = {str(label) for alternative in value for label in alternative}
        if not value or labels - set(groups):
            raise TablesError(
                f"{where}: procedure groups {sorted(labels - set(groups))} are not in procedure_groups"
            )
        return Condition(kind, tuple(tuple(str(g) for g in alt) for alt in value), groups=groups)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TablesError(f"{where}: {kind} takes a whole number, got {value!r}")
    if kind == "distinct_trauma_regions_at_least":
        regions = {str(k): frozenset(v) for k, v in spec.get("trauma_regions", {}).items()}
        if not regions:
            raise TablesError(
                f"{where}: distinct_trauma_regions_at_least needs trauma_regions in the same entry"
            )
        return Condition(kind, value, groups=regions)
    return Condition(kind, value)
