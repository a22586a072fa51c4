"""The demo hospital's case mix, resolved against the real CHS-DRG 1.1 code tables.

``case_mix.csv`` describes each case type a department treats (its ADRG, code prefixes, share, median
charges, length of stay, age, sex, mortality, readmission and comorbidity rates, charge profile,
winter peak, how often it starts a chemotherapy course, whether it is surgical and what a readmission
after it is for); ``comorbidities.csv`` the chronic
conditions patients carry and the CC/MCC complications an episode can add. Prefixes are resolved
here into real codes taken from the ADRG's (or its MDC's) own lists, leaving out codes that an
earlier ADRG of the same MDC would catch, so that generated cases land in the intended group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from contract.errors import ConfigError

HERE = Path(__file__).parent
SECONDARY_SLOTS = ("chronic", "cc", "mcc")
DEFAULT_BIRTH_WEIGHT = (2500, 4300)


@dataclass(frozen=True)
class Pools:
    """Code lists per case type as indices into a vocabulary, flattened: ``codes[offsets[t]:offsets[t] +
    sizes[t]]`` belong to type t."""

    codes: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_lists(cls, lists: list[list[str]] | list[np.ndarray], index: dict[str, int] | None) -> Pools:
        """Pools of codes looked up in ``index``, or of lists that already hold indices (``index`` None)."""
        sizes = np.array([len(x) for x in lists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        codes = np.array([c if index is None else index[c] for x in lists for c in x] or [-1], dtype=np.int32)
        return cls(codes, offsets, sizes)

    def membership(self, n_codes: int) -> np.ndarray:
        """(types, codes) booleans: whether each code is in each type's list."""
        member = np.zeros((len(self.sizes), n_codes), dtype=bool)
        owner = np.repeat(np.arange(len(self.sizes)), self.sizes)
        member[owner, self.codes[: len(owner)]] = True
        return member

    def draw(self, types: np.ndarray, rng: np.random.Generator, skew: float = 1.6) -> np.ndarray:
        """One code index per row (-1 when the type's list is empty); earlier codes in a list are
        commoner, like real coding habits."""
        sizes = self.sizes[types]
        pick = (rng.random(len(types)) ** skew * sizes).astype(np.int64)
        out = self.codes[np.minimum(self.offsets[types] + pick, len(self.codes) - 1)]
        return np.where(sizes > 0, out, -1).astype(np.int32)


@dataclass(frozen=True)
class Vocabulary:
    """The codes the demo hospital uses, as integers: code arrays stay numeric until written out.

    ``level`` is 0, 1 (CC) or 2 (MCC) as a secondary diagnosis; a secondary diagnosis counts unless its
    ``secondary_table`` equals the principal's ``principal_table`` (CHS-DRG exclusion tables)."""

    codes: np.ndarray
    level: np.ndarray
    secondary_table: np.ndarray
    principal_table: np.ndarray

    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}


def code_text(codes: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Code text of an index array, None where the index is -1."""
    return np.where(codes >= 0, vocabulary[np.maximum(codes, 0)], None)


@dataclass(frozen=True)
class Catalog:
    """Case types with their parameters and resolved code pools."""

    types: pd.DataFrame
    diagnoses: Vocabulary
    procedure_codes: np.ndarray
    principal: Pools
    related: Pools
    similar: Pools
    procedures: Pools
    other_procedures: Pools
    symptoms: Pools
    less_specific: np.ndarray
    chronic: pd.DataFrame
    chronic_codes: np.ndarray
    complications: dict[str, np.ndarray]
    chronic_allowed: np.ndarray
    complication_allowed: dict[str, np.ndarray]

    def type_index(self, key: str) -> int:
        return int(np.flatnonzero(self.types["key"].to_numpy() == key)[0])


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _matching(codes: list[str] | set[str], prefixes: list[str]) -> list[str]:
    starts = tuple(prefixes)
    return sorted(c for c in codes if c.startswith(starts)) if starts else []


def _prefixes(cell: object) -> list[str]:
    return [p for p in str(cell).split(";") if p and p != "nan"]


def _preceding_adrgs(grouping: dict, adrg: str) -> list[dict]:
    for mdc in grouping["mdcs"].values():
        if adrg in mdc["adrgs"]:
            order = mdc["adrgs"]
            return [grouping["adrgs"][a] for a in order[: order.index(adrg)]]
    raise ConfigError(f"case_mix.csv: ADRG {adrg} is not in grouping.json")


def _mdc_of(grouping: dict, adrg: str) -> dict:
    return next(m for m in grouping["mdcs"].values() if adrg in m["adrgs"])


def _rule_keys(entry: dict) -> set[str]:
    return {k for cond in entry["rule"] for k in cond}


def _principal_pool(row: pd.Series, grouping: dict, dictionary: set[str], procedures: list[str]) -> list[str]:
    adrg = grouping["adrgs"][row.adrg]
    mdc = _mdc_of(grouping, row.adrg)
    keys = _rule_keys(adrg)
    if keys & {"principal_diagnosis_in", "any_diagnosis_in"}:
        source = set(adrg["diagnoses"])
    elif "diagnoses" in mdc:
        source = set(mdc["diagnoses"])
    else:
        source = dictionary
    taken = {
        c
        for a in _preceding_adrgs(grouping, row.adrg)
        if _rule_keys(a) == {"principal_diagnosis_in"}
        or (
            _rule_keys(a) == {"principal_diagnosis_in", "principal_procedure_in"}
            and set(a["procedures"]) & set(procedures)
        )
        for c in a["diagnoses"]
    }
    if "diagnoses" in mdc:
        source &= set(mdc["diagnoses"])
    return _matching((source & dictionary) - taken, _prefixes(row.diagnoses))


def _procedure_pool(row: pd.Series, grouping: dict, dictionary: set[str], or_codes: set[str]) -> list[str]:
    adrg = grouping["adrgs"][row.adrg]
    preceding = _preceding_adrgs(grouping, row.adrg)
    taken = {c for a in preceding if _rule_keys(a) == {"principal_procedure_in"} for c in a["procedures"]}
    if "principal_procedure_in" in _rule_keys(adrg):
        return _matching((set(adrg["procedures"]) & dictionary) - taken, _prefixes(row.procedures))
    mdc = _mdc_of(grouping, row.adrg)
    in_mdc = {c for a in mdc["adrgs"] for c in grouping["adrgs"][a].get("procedures", [])}
    return _matching(dictionary - or_codes - in_mdc, _prefixes(row.procedures))


def _other_procedure_pool(row: pd.Series, grouping: dict, dictionary: set[str]) -> list[str]:
    """Procedures listed after the principal: any code, except those a rule of the type's MDC (or the
    pre-MDC) looks for among all procedures, which would move the case to another group."""
    mdcs = [_mdc_of(grouping, row.adrg), grouping["mdcs"]["MDCA"]]
    looked_for = {
        c
        for mdc in mdcs
        for a in mdc["adrgs"]
        if _rule_keys(grouping["adrgs"][a]) & {"any_procedure_in", "procedure_groups_any_of"}
        for key, codes in grouping["adrgs"][a].items()
        if key.startswith("procedure")
        for c in (codes if isinstance(codes, list) else [x for group in codes.values() for x in group])
    }
    return _matching(dictionary - looked_for, _prefixes(row.other_procedures))


def _less_specific(codes: set[str], dictionary: list[str]) -> dict[str, str]:
    """For each code, the category's unspecified code (e.g. I21.900 for I21.001), as written at admission."""
    by_category: dict[str, list[str]] = {}
    for c in dictionary:
        by_category.setdefault(c[:3], []).append(c)
    out = {}
    for code in codes:
        siblings = by_category.get(code[:3], [code])
        unspecified = [c for c in siblings if len(c) == 7 and c[4] in "9x" and c[5:] == "00" and c != code]
        out[code] = unspecified[-1] if unspecified else siblings[0]
    return out


def _similar_types(types: pd.DataFrame) -> list[np.ndarray]:
    """For each type, the types whose stays resemble its own (itself included): same department, both
    neonatal or both not, and no single-sex type beside a type of both sexes (no prostate code on a woman)."""
    department = types["department"].to_numpy()
    neonatal = types["age_max"].to_numpy() == 0
    female = types["female"].to_numpy(float)
    mixed = (female > 0) & (female < 1)
    return [
        np.flatnonzero(
            (department == department[i]) & (neonatal == neonatal[i]) & (mixed | (female == female[i]))
        )
        for i in range(len(types))
    ]


def _birth_weights(types: pd.DataFrame, grouping: dict) -> pd.DataFrame:
    low, high = [], []
    for adrg in types["adrg"]:
        cond = next(
            (c["birth_weight_grams"] for c in grouping["adrgs"][adrg]["rule"] if "birth_weight_grams" in c),
            {},
        )
        low.append(cond.get("min", DEFAULT_BIRTH_WEIGHT[0]))
        high.append(cond.get("below", DEFAULT_BIRTH_WEIGHT[1]))
    return types.assign(birth_weight_min=low, birth_weight_below=high)


@lru_cache(maxsize=4)
def load_catalog(tables: Path) -> Catalog:
    """Read the case mix and resolve every prefix into real codes; fail loudly on a prefix that finds none."""
    grouping = json.loads((tables / "grouping.json").read_text(encoding="utf-8"))
    diagnoses = _tsv(tables / "diagnoses.tsv")["code"].tolist()
    diagnosis_set = set(diagnoses)
    procedure_set = set(_tsv(tables / "procedures.tsv")["code"])
    or_codes = set(_tsv(tables / "or_procedures.tsv")["code"])
    mcc = _tsv(tables / "mcc.tsv")
    cc = _tsv(tables / "cc.tsv")
    exclusions = _tsv(tables / "cc_exclusions.tsv")
    exclusion = dict(zip(exclusions["principal_code"], exclusions["exclusion_table"], strict=True))
    cc_level = {**dict.fromkeys(cc["code"], 1), **dict.fromkeys(mcc["code"], 2)}
    secondary_table = {
        **dict(zip(cc["code"], cc["exclusion_table"], strict=True)),
        **dict(zip(mcc["code"], mcc["exclusion_table"], strict=True)),
    }

    types = pd.read_csv(
        HERE / "case_mix.csv",
        dtype={c: str for c in ("diagnoses", "procedures", "other_procedures", "symptoms", "readmitted_as")},
        keep_default_na=False,
    )
    types["surgical"] = types["surgical"].astype(bool)
    unknown = set(types["readmitted_as"]) - set(types["key"]) - {""}
    if unknown:
        raise ConfigError(f"case_mix.csv: readmitted_as names unknown types {sorted(unknown)}")
    types = _birth_weights(types, grouping)
    types["procedure_groups"] = [
        bool(
            _rule_keys(grouping["adrgs"][a])
            & {"principal_procedure_in", "principal_procedure_is_or_procedure"}
        )
        for a in types["adrg"]
    ]
    principal, procedures, others, symptoms = [], [], [], []
    for row in types.itertuples():
        procs = _procedure_pool(row, grouping, procedure_set, or_codes) if _prefixes(row.procedures) else []
        if _prefixes(row.procedures) and not procs:
            raise ConfigError(
                f"case_mix.csv: type {row.key}: no procedure of {row.procedures} fits ADRG {row.adrg}"
            )
        procedures.append(procs)
        extra = _other_procedure_pool(row, grouping, procedure_set)
        if _prefixes(row.other_procedures) and not extra:
            raise ConfigError(f"case_mix.csv: type {row.key}: no other procedure of {row.other_procedures}")
        others.append(extra)
        pool = _principal_pool(row, grouping, diagnosis_set, procs)
        if not pool:
            raise ConfigError(
                f"case_mix.csv: type {row.key}: no diagnosis of {row.diagnoses} fits ADRG {row.adrg}"
            )
        principal.append(pool)
        symptoms.append(_matching(diagnosis_set, _prefixes(row.symptoms))[:1])

    comorbid = pd.read_csv(HERE / "comorbidities.csv")
    comorbid["codes"] = comorbid["codes"].str.split(";")
    for row in comorbid.itertuples():
        for code in row.codes:
            if code not in diagnosis_set:
                raise ConfigError(f"comorbidities.csv: {row.key}: {code} is not in diagnoses.tsv")
            if row.kind != "chronic" and cc_level.get(code) != SECONDARY_SLOTS.index(row.kind):
                raise ConfigError(f"comorbidities.csv: {row.key}: {code} is not a {row.kind.upper()}")
    chronic = comorbid[comorbid["kind"] == "chronic"].reset_index(drop=True)
    complications = {
        kind: np.array(
            [c for codes in comorbid.loc[comorbid["kind"] == kind, "codes"] for c in codes], dtype=object
        )
        for kind in ("cc", "mcc")
    }

    def allowed(codes: list[str], pool: list[str]) -> list[bool]:
        """A secondary code may appear beside a type when no principal of the type shares its category or
        exclusion table (so it is a genuine comorbidity, not a restatement of the principal)."""
        tables_ = {exclusion.get(p) for p in pool} - {None}
        cats = {p[:3] for p in pool}
        return [c[:3] not in cats and secondary_table.get(c, "-") not in tables_ for c in codes]

    chronic_codes = [codes[0] for codes in chronic["codes"]]
    chronic_allowed = np.array([allowed(chronic_codes, pool) for pool in principal], dtype=bool)
    complication_allowed = {
        kind: np.array([allowed(list(codes), pool) for pool in principal], dtype=bool)
        for kind, codes in complications.items()
    }
    # Types of similar stays (as a pool of type indices) and their principals: what may stand beside a
    # principal as a second diagnosis, or be written as the working diagnosis at admission.
    similar = _similar_types(types)
    related = [sorted({c for k in group for c in principal[k]}) for group in similar]
    less = _less_specific({c for pool in principal for c in pool}, diagnoses)
    used = sorted(
        {c for pool in principal + symptoms for c in pool}
        | set(less.values())
        | set(chronic_codes)
        | {c for codes in complications.values() for c in codes}
    )
    table_ids = {t: i for i, t in enumerate(sorted(set(secondary_table.values()) | set(exclusion.values())))}
    vocabulary = Vocabulary(
        codes=np.array(used, dtype=object),
        level=np.array([cc_level.get(c, 0) for c in used], dtype=np.int8),
        secondary_table=np.array([table_ids.get(secondary_table.get(c), -1) for c in used], dtype=np.int32),
        principal_table=np.array([table_ids.get(exclusion.get(c), -2) for c in used], dtype=np.int32),
    )
    dx = vocabulary.index()
    procedure_codes = np.array(sorted({c for pool in procedures + others for c in pool}), dtype=object)
    px = {c: i for i, c in enumerate(procedure_codes)}
    less_specific = np.arange(len(used), dtype=np.int32)
    for code, general in less.items():
        less_specific[dx[code]] = dx[general]
    return Catalog(
        types=types,
        diagnoses=vocabulary,
        procedure_codes=procedure_codes,
        principal=Pools.from_lists(principal, dx),
        related=Pools.from_lists(related, dx),
        similar=Pools.from_lists(similar, None),
        procedures=Pools.from_lists(procedures, px),
        other_procedures=Pools.from_lists(others, px),
        symptoms=Pools.from_lists(symptoms, dx),
        less_specific=less_specific,
        chronic=chronic,
        chronic_codes=np.array([dx[c] for c in chronic_codes], dtype=np.int32),
        complications={
            kind: np.array([dx[c] for c in codes], dtype=np.int32) for kind, codes in complications.items()
        },
        chronic_allowed=chronic_allowed,
        complication_allowed=complication_allowed,
    )
