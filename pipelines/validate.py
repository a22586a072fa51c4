"""Checks over canonical cases; every failure becomes one problem row naming the row, field and reason.

Per-column rules (type, required, range, allowed codes) are a pandera schema generated from the contract,
so a new field gets its checks by being declared there. Rules that span fields or rows (dates in order,
charges adding up, sex-specific diagnoses, duplicate ids, code dictionaries) are hand-written vectorised
pandas: pandera's custom checks would run the same code but report only a boolean per row, losing the
value and reason a coder needs; the code-list checks also explode lists, which pandera cannot express.
Problems with severity ``error`` reject the row; ``warning`` rows are kept and listed in a warnings file.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from casemix.dictionaries import CODE_DICTIONARIES, code_dictionary
from contract.charges import CHARGE_FIELDS, CHARGE_KEY
from contract.errors import ConfigError
from contract.fields import (
    CODE_MEANINGS,
    COST_CATEGORIES,
    DIAGNOSIS_FIELDS,
    FIELDS,
    PROCEDURE_FIELDS,
    SEXES,
    Field,
    exploded_code_lists,
)
from contract.instay import INSTAY_FIELDS, INSTAY_KEY
from contract.settings import CASEMIX_TABLES

SEX_SPECIFIC_DIAGNOSES = Path(__file__).parent / "mappings" / "sex_specific_diagnoses.tsv"
PROBLEM_COLUMNS = ("row", "field", "column", "value", "reason", "severity")
EMPTY_PROBLEMS = pd.DataFrame(
    {c: pd.Series(dtype="int64" if c == "row" else object) for c in PROBLEM_COLUMNS}
)
MISSING = "required value missing"


@dataclass(frozen=True)
class Rules:
    """The configurable parts of validation; defaults follow common CHS-DRG practice."""

    cost_tolerance_yuan: float = 1.0
    cost_tolerance_share: float = 0.005
    sex_specific_diagnoses: Path = SEX_SPECIFIC_DIAGNOSES
    code_tables: Path = field(default=CASEMIX_TABLES)

    def cost_tolerance(self, total: pd.Series) -> pd.Series:
        """Allowed gap between the charge groups' sum and the total: max(yuan, share of total)."""
        return np.maximum(self.cost_tolerance_yuan, self.cost_tolerance_share * total.abs())


def problems_where(
    mask: pd.Series,
    field: str,
    values: pd.Series,
    reason: str,
    severity: str = "error",
    column: str | None = None,
) -> pd.DataFrame:
    """One problem row per True position of ``mask`` (positions are 0-based rows of the frame)."""
    rows = np.flatnonzero(np.asarray(mask.fillna(False), dtype=bool))
    if len(rows) == 0:
        return EMPTY_PROBLEMS
    shown = values.iloc[rows]
    return pd.DataFrame(
        {
            "row": rows.astype("int64"),
            "field": field,
            "column": column if column is not None else field,
            "value": shown.astype(object).where(shown.notna(), None).map(_text).to_numpy(),
            "reason": reason,
            "severity": severity,
        }
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def case_schema(fields: tuple[Field, ...] = FIELDS) -> pa.DataFrameSchema:
    """The per-column contract of a table (the abstract's by default) as a pandera schema."""
    return pa.DataFrameSchema({f.name: _column(f) for f in fields}, strict=False)


def _column(f: Field) -> pa.Column:
    checks = []
    if f.allowed is not None:
        meanings = CODE_MEANINGS.get(f.name) or dict.fromkeys(f.allowed, ("", ""))
        listed = ", ".join(f"{code} {zh} {en}".strip() for code, (zh, en) in meanings.items())
        checks.append(pa.Check.isin(list(f.allowed), error=f"not an allowed code ({listed})"))
    if f.minimum is not None and f.maximum is not None:
        checks.append(pa.Check.in_range(f.minimum, f.maximum, error=f"outside {f.minimum:g}–{f.maximum:g}"))
    elif f.minimum is not None:
        checks.append(pa.Check.ge(f.minimum, error=f"below {f.minimum:g}"))
    return pa.Column(f.nullable_dtype, checks=checks, nullable=not f.required, required=True)


def validate_cases(cases: pd.DataFrame, rules: Rules = Rules()) -> pd.DataFrame:
    """Every problem of every row: errors reject a row, warnings keep it. ``cases`` has a RangeIndex."""
    codes = exploded_codes(cases)
    found = [
        check_schema(cases),
        check_duplicate_ids(cases),
        check_dates(cases),
        check_age_days(cases),
        check_costs(cases, rules),
        check_audit(cases),
        check_sex_specific(cases, rules.sex_specific_diagnoses, codes),
        check_code_dictionaries(cases, rules.code_tables, codes),
    ]
    return pd.concat(found, ignore_index=True)


def check_schema(cases: pd.DataFrame, fields: tuple[Field, ...] = FIELDS) -> pd.DataFrame:
    """Per-value failures of the contract schema; a whole-column failure (a wrong dtype) is a bug, raised."""
    try:
        with warnings.catch_warnings():  # pandera's own concat of failure cases warns under pandas 2.3
            warnings.simplefilter("ignore", FutureWarning)
            case_schema(fields).validate(cases, lazy=True)
    except SchemaErrors as errors:
        failures = errors.failure_cases
    else:
        return EMPTY_PROBLEMS
    whole_column = failures[failures["index"].isna()]
    if len(whole_column):
        raise TypeError(
            f"cases do not match the contract: {whole_column[['column', 'check']].to_dict('records')}"
        )
    failures = failures[failures["index"].notna()]
    reason = failures["check"].where(failures["check"] != "not_nullable", MISSING)
    return pd.DataFrame(
        {
            "row": failures["index"].astype("int64").to_numpy(),
            "field": failures["column"].to_numpy(),
            "column": failures["column"].to_numpy(),
            "value": failures["failure_case"].map(lambda v: None if pd.isna(v) else _text(v)).to_numpy(),
            "reason": reason.to_numpy(),
            "severity": "error",
        }
    )


def check_duplicate_ids(cases: pd.DataFrame, key: tuple[str, ...] = ("case_id",)) -> pd.DataFrame:
    """A key (case id; case id and day in the daily tables) twice in one file is ambiguous, so every copy
    is rejected (the store keeps one row per key)."""
    duplicated = cases.duplicated(list(key), keep=False) & cases[list(key)].notna().all(axis=1)
    field = key[-1]
    return problems_where(
        duplicated, field, cases[field], f"{' + '.join(key)} appears more than once in this file"
    )


def check_dates(cases: pd.DataFrame) -> pd.DataFrame:
    early = cases["discharge_date"] < cases["admission_date"]
    return problems_where(
        early, "discharge_date", cases["discharge_date"], "discharge_date before admission_date"
    )


def check_age_days(cases: pd.DataFrame) -> pd.DataFrame:
    """Grouping an infant needs its age in days (newborn DRGs split on it)."""
    needed = (cases["age_years"] == 0) & cases["age_days"].isna()
    return problems_where(needed, "age_days", cases["age_days"], "age_days required when age_years is 0")


def check_costs(cases: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    total = cases["total_cost"]
    groups = cases[list(COST_CATEGORIES)].sum(axis=1, min_count=len(COST_CATEGORIES))
    off = (groups - total).abs() > rules.cost_tolerance(total)
    shown = (
        total[off].round(2).astype(str)
        + " (charge groups add up to "
        + groups[off].round(2).astype(str)
        + ")"
    )
    reason = (
        f"charge groups do not add up to total_cost (tolerance max({rules.cost_tolerance_yuan:g} yuan, "
        f"{rules.cost_tolerance_share:.2%}))"
    )
    negotiated = cases["cost_negotiated_drugs"] > cases["cost_western_drugs"] + rules.cost_tolerance_yuan
    patient_items = cases["cost_self_funded"].fillna(0.0) + cases["cost_first_self_paid"].fillna(0.0)
    return pd.concat(
        [
            _at_rows(shown, "total_cost", reason),
            problems_where(
                negotiated,
                "cost_negotiated_drugs",
                cases["cost_negotiated_drugs"],
                "more than cost_western_drugs, of which it is a part",
            ),
            problems_where(
                patient_items > total + rules.cost_tolerance_yuan,
                "cost_self_funded",
                cases["cost_self_funded"],
                "cost_self_funded + cost_first_self_paid more than total_cost, of which they are a part",
            ),
            problems_where(
                cases["cost_new_technology"] > total + rules.cost_tolerance_yuan,
                "cost_new_technology",
                cases["cost_new_technology"],
                "more than total_cost, of which it is a part",
            ),
        ],
        ignore_index=True,
    )


def check_audit(cases: pd.DataFrame) -> pd.DataFrame:
    audited = cases["audited"].fillna(False).astype(bool)
    has_error = cases["audit_error"].fillna(False).astype(bool)
    return pd.concat(
        [
            problems_where(
                cases["audit_error"].notna() & ~audited,
                "audit_error",
                cases["audit_error"],
                "audit_error given but audited is not true",
            ),
            problems_where(
                cases["audit_error_type"].notna() & ~has_error,
                "audit_error_type",
                cases["audit_error_type"],
                "audit_error_type given but audit_error is not true",
            ),
        ],
        ignore_index=True,
    )


def check_sex_specific(
    cases: pd.DataFrame, table: Path = SEX_SPECIFIC_DIAGNOSES, codes: dict[str, pd.Series] | None = None
) -> pd.DataFrame:
    """Diagnoses limited to one sex (ICD-10 ranges in a data file) on a case of the other sex."""
    codes = codes or exploded_codes(cases)
    sex = cases["sex"].to_numpy(dtype="float64", na_value=np.nan)
    found = [EMPTY_PROBLEMS]
    for name in DIAGNOSIS_FIELDS:
        diagnoses, rows = codes[name], codes[name].index.to_numpy()
        for length, (sex_of, basis_of) in sex_specific_prefixes(table).items():
            prefix = diagnoses.str.slice(0, length)
            at = np.flatnonzero(_isin(prefix, sex_specific_value_set(table, length)))
            matched = prefix.iloc[at].to_numpy(dtype=object)
            limit = np.array([sex_of[p] for p in matched], dtype="float64")
            wrong = (limit != sex[rows[at]]) & ~np.isnan(sex[rows[at]])
            if not wrong.any():
                continue
            shown = [
                f"{code} ({SEXES[sex_of[p]][1]} only: {basis_of[p]})"
                for code, p in zip(
                    diagnoses.iloc[at[wrong]].to_numpy(dtype=object), matched[wrong], strict=True
                )
            ]
            found.append(
                _at_rows(pd.Series(shown, index=rows[at[wrong]]), name, "diagnosis limited to the other sex")
            )
    return pd.concat(found, ignore_index=True)


@cache
def sex_specific_prefixes(table: Path) -> dict[int, tuple[dict[str, int], dict[str, str]]]:
    """By prefix length: code prefix -> sex, and code prefix -> basis, from ranges like N70..N98."""
    ranges = pd.read_csv(table, sep="\t", dtype={"first": str, "last": str, "sex": int, "basis": str})
    by_length: dict[int, tuple[dict[str, int], dict[str, str]]] = {}
    for first, last, sex, basis in ranges.itertuples(index=False):
        for prefix in _expand(first, last):
            sex_of, basis_of = by_length.setdefault(len(prefix), ({}, {}))
            sex_of[prefix], basis_of[prefix] = sex, basis
    return by_length


def _expand(first: str, last: str) -> list[str]:
    head, start = re.fullmatch(r"(.*?)(\d+)", first).groups()
    tail_head, stop = re.fullmatch(r"(.*?)(\d+)", last).groups()
    if head != tail_head or len(start) != len(stop):
        raise ConfigError(
            f"sex-specific range {first}..{last}: ends must differ only in their trailing digits"
        )
    return [f"{head}{n:0{len(start)}d}" for n in range(int(start), int(stop) + 1)]


def check_code_dictionaries(
    cases: pd.DataFrame, tables: Path = CASEMIX_TABLES, codes: dict[str, pd.Series] | None = None
) -> pd.DataFrame:
    """Codes missing from the grouper's dictionaries are reported as warnings; the row is kept."""
    codes = codes or exploded_codes(cases)
    found = [EMPTY_PROBLEMS]
    for names, dictionary in CODE_DICTIONARIES:
        known = code_dictionary(tables / dictionary)
        for name in names:
            unknown = codes[name][~_isin(codes[name], known)]
            if not unknown.empty:
                found.append(_at_rows(unknown, name, f"code not in {tables.name}/{dictionary}", "warning"))
    return pd.concat(found, ignore_index=True)


@cache
def sex_specific_value_set(table: Path, length: int) -> pyarrow.Array:
    return pyarrow.array(list(sex_specific_prefixes(table)[length][0]), type=pyarrow.large_string())


def _isin(codes: pd.Series, value_set: pyarrow.Array) -> np.ndarray:
    """Membership in Arrow: pandas' ``isin`` on Arrow text re-checks every value of the set in Python."""
    return np.asarray(pc.is_in(pyarrow.array(codes), value_set=value_set), dtype=bool)


def exploded_codes(cases: pd.DataFrame) -> dict[str, pd.Series]:
    """Each code field as one code per entry, indexed by row position (a row repeats per code)."""
    return {name: exploded_code_lists(cases[name]) for name in (*DIAGNOSIS_FIELDS, *PROCEDURE_FIELDS)}


def _at_rows(values: pd.Series, field: str, reason: str, severity: str = "error") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": values.index.to_numpy(dtype="int64"),
            "field": field,
            "column": field,
            "value": values.to_numpy(dtype=object),
            "reason": reason,
            "severity": severity,
        }
    )


def merge_problems(unreadable: pd.DataFrame, checked: pd.DataFrame) -> pd.DataFrame:
    """All problems in row order; a value that could not be read is not also reported as missing."""
    unread = pd.MultiIndex.from_frame(unreadable[["row", "field"]])
    echo = (checked["reason"] == MISSING) & pd.MultiIndex.from_frame(checked[["row", "field"]]).isin(unread)
    merged = pd.concat([unreadable, checked[~echo]], ignore_index=True)
    order = {name: i for i, name in enumerate(f.name for f in FIELDS)}
    merged["_order"] = merged["field"].map(order)
    return merged.sort_values(["row", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def validate_charges(charges: pd.DataFrame) -> pd.DataFrame:
    """Every problem of every row of a daily charges feed (``contract.charges``)."""
    amounts = charges[list(COST_CATEGORIES)]
    return pd.concat(
        [
            check_schema(charges, CHARGE_FIELDS),
            check_duplicate_ids(charges, CHARGE_KEY),
            problems_where(
                amounts.isna().all(axis=1),
                COST_CATEGORIES[0],
                charges[COST_CATEGORIES[0]],
                "no charge group given on this day (a day with no charges has no row)",
            ),
        ],
        ignore_index=True,
    )


def validate_inpatients(records: pd.DataFrame, rules: Rules = Rules()) -> pd.DataFrame:
    """Every problem of every row of in-stay records (``contract.instay``)."""
    codes = {
        name: exploded_code_lists(records[name])
        for name in ("admission_diagnosis", "planned_procedure", "working_diagnoses", "procedures_so_far")
    }
    unknown = [EMPTY_PROBLEMS]
    for names, dictionary in (
        (("admission_diagnosis", "working_diagnoses"), "diagnoses.tsv"),
        (("planned_procedure", "procedures_so_far"), "procedures.tsv"),
    ):
        known = code_dictionary(rules.code_tables / dictionary)
        for name in names:
            missing = codes[name][~_isin(codes[name], known)]
            if not missing.empty:
                reason = f"code not in {rules.code_tables.name}/{dictionary}"
                unknown.append(_at_rows(missing, name, reason, "warning"))
    return pd.concat(
        [
            check_schema(records, INSTAY_FIELDS),
            check_duplicate_ids(records, INSTAY_KEY),
            problems_where(
                records["recorded_date"] < records["admission_date"],
                "recorded_date",
                records["recorded_date"],
                "recorded_date before admission_date",
            ),
            check_age_days(records),
            *unknown,
        ],
        ignore_index=True,
    )
