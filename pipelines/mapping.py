"""Column mappings as configuration: which export column feeds which canonical field, and how to read it.

A mapping is a TOML file (presets in ``pipelines/mappings/``; a hospital writes its own without code):

- ``[columns]`` canonical field = source column; a charge group may list several columns that add up;
  a field that is not listed is looked up under its canonical name, so the canonical preset is empty;
- ``[wide]`` code-list field = column prefix: numbered columns (其他诊断编码1..n) join, in number order,
  into one '|'-separated list;
- ``[values.<field>]`` source value = canonical value (性别 "男" = 1); other values pass through;
- ``date_formats`` tried in order; ``extends`` names a preset or file whose settings this file overrides.

``to_canonical`` turns the text an export holds into canonical columns and types, reporting every value
it cannot read as a problem of its row instead of failing the file.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from contract.fields import ADMISSION_TYPE_BY_SOURCE, FIELDS, Field
from contract.instay import any_field
from pipelines.readers import TEXT, InputError
from pipelines.validate import EMPTY_PROBLEMS, problems_where

PRESETS_DIR = Path(__file__).parent / "mappings"
DEFAULT_MAPPING = "canonical"
DEFAULT_DATE_FORMATS = ("ISO8601", "%Y/%m/%d", "%Y%m%d")
BOOLEAN_TEXT = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "t": True,
    "f": False,
}


class Mapping(BaseModel):
    """How one export's columns and values become canonical fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    columns: dict[str, str | list[str]] = {}
    wide: dict[str, str] = {}
    values: dict[str, dict[str, int | float | bool | str]] = {}
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS

    @field_validator("columns", "wide", "values")
    @classmethod
    def _known_fields(cls, table: dict[str, object]) -> dict[str, object]:
        unknown = sorted(name for name in table if any_field(name) is None)
        if unknown:
            raise ValueError(f"unknown canonical field(s) {', '.join(unknown)}; see docs/data-contract.md")
        return table

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        for name, source in self.columns.items():
            if isinstance(source, list) and any_field(name).kind != "float":
                raise ValueError(f"[columns] {name}: only an amount field may add up a list of columns")
        for name in self.wide:
            if any_field(name).kind != "codes":
                raise ValueError(f"[wide] {name}: only a code-list field can collect numbered columns")
            if name in self.columns:
                raise ValueError(f"{name} is in both [columns] and [wide]; keep one")
        return self

    def sources(self, field: Field) -> list[str]:
        """The source columns of a non-wide field."""
        source = self.columns.get(field.name, field.name)
        return [source] if isinstance(source, str) else list(source)


def presets() -> list[str]:
    """Names of the mappings shipped with caselens."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_mapping(spec: str | Path | None = None) -> Mapping:
    """A preset by name, or a TOML mapping file by path; None gives the canonical (identity) mapping."""
    return Mapping(**_load_settings(spec or DEFAULT_MAPPING, seen=()))


def _load_settings(spec: str | Path, seen: tuple[Path, ...]) -> dict[str, object]:
    path = _mapping_path(spec)
    if path in seen:
        raise InputError(f"mapping {path.name} extends itself through {' -> '.join(p.name for p in seen)}")
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read mapping {path}: {error}") from None
    settings.setdefault("name", path.stem)
    base = settings.pop("extends", None)
    if base is not None:
        settings = _merge(_load_settings(_relative(base, path), (*seen, path)), settings)
    try:
        Mapping(**settings)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise InputError(f"mapping {path} is not valid: {problems}") from None
    return settings


def _mapping_path(spec: str | Path) -> Path:
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"mapping file {path} not found")
        return path.resolve()
    preset = PRESETS_DIR / f"{spec}.toml"
    if not preset.is_file():
        raise InputError(f"unknown mapping {spec!r}: give a .toml file or one of {', '.join(presets())}")
    return preset


def _relative(base: str, child: Path) -> str | Path:
    """``extends`` is a preset name, or a path relative to the file that extends it."""
    return child.parent / base if base.endswith(".toml") else base


def _merge(base: dict, child: dict) -> dict:
    merged = {**base, **{k: v for k, v in child.items() if k not in ("columns", "wide", "values")}}
    for section in ("columns", "wide"):
        merged[section] = {**base.get(section, {}), **child.get(section, {})}
    for name in child.get("columns", {}):  # a field moved from wide columns to one column, or back
        merged["wide"].pop(name, None)
    for name in child.get("wide", {}):
        merged["columns"].pop(name, None)
    values = {k: dict(v) for k, v in base.get("values", {}).items()}
    for name, table in child.get("values", {}).items():
        values[name] = {**values.get(name, {}), **table}
    merged["values"] = values
    return merged


def check_columns(
    columns: pd.Index, mapping: Mapping, source_name: str, fields: tuple[Field, ...] = FIELDS
) -> None:
    """Stop with one message naming every required column the export lacks and how to map it."""
    present = set(columns)
    lines = []
    for field in fields:
        missing = [s for s in mapping.sources(field) if s not in present] if field.required else []
        if not missing:
            continue
        named = (
            f"{missing[0]!r}"
            if missing == [field.name]
            else f"{', '.join(map(repr, missing))} for {field.name}"
        )
        example = (
            '["<column>", ...]' if isinstance(mapping.columns.get(field.name), list) else '"<your column>"'
        )
        lines.append(
            f"missing required column {named} ({field.zh}): add `{field.name} = {example}` "
            "to your mapping file's [columns]"
        )
    if lines:
        found = ", ".join(map(str, list(columns)[:30])) + (" ..." if len(columns) > 30 else "")
        raise InputError(
            f"{source_name} cannot be read with mapping {mapping.name!r}:\n  "
            + "\n  ".join(lines)
            + f"\ncolumns in the file: {found}"
            + f"\n(field list: docs/data-contract.md; presets: {', '.join(presets())})"
        )


def to_canonical(
    raw: pd.DataFrame, mapping: Mapping, fields: tuple[Field, ...] = FIELDS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical columns in canonical types, and one problem row per value that could not be read.

    ``raw`` holds text as exported (``readers.read_table``); required columns must be present
    (``check_columns``). Positions, not labels, identify rows in the problems. ``fields`` are the
    table's (``contract.instay.TABLE_FIELDS``): the abstract's by default.
    """
    raw = raw.reset_index(drop=True)
    columns: dict[str, pd.Series] = {}
    problems = [EMPTY_PROBLEMS]
    for field in fields:
        if field.name in mapping.wide:
            columns[field.name] = _codes(_join_numbered(raw, mapping.wide[field.name]))
            continue
        parsed = []
        for source in mapping.sources(field):
            if source not in raw.columns:
                continue
            text = _apply_values(_clean(raw[source]), mapping.values.get(field.name))
            series, found = _parse(text, field, mapping.date_formats, source)
            parsed.append(series)
            problems.append(found)
        columns[field.name] = _combine(parsed, field, len(raw))
    cases = pd.DataFrame(columns)
    if "admission_source" in cases.columns:
        problems.append(derive_admission_type(cases))
    return cases, pd.concat(problems, ignore_index=True)


def derive_admission_type(cases: pd.DataFrame) -> pd.DataFrame:
    """Fill a missing ``admission_type`` from ``admission_source`` in place; one warning per filled row.

    The national 病案首页 has no 入院类型 column, so its exports carry the route only (急诊 → emergency,
    other routes → elective); the row is kept and the warning says the type was derived.
    """
    derived = cases["admission_source"].map(ADMISSION_TYPE_BY_SOURCE).astype("Int64")
    filled = cases["admission_type"].isna() & derived.notna()
    if not filled.any():
        return EMPTY_PROBLEMS
    cases["admission_type"] = cases["admission_type"].astype("Int64").fillna(derived)
    return problems_where(
        filled,
        "admission_type",
        cases["admission_source"],
        "入院类型 absent: derived from 入院途径 (急诊 → emergency, other routes → elective)",
        severity="warning",
        column="admission_source",
    )


def _clean(column: pd.Series) -> pd.Series:
    """Text with surrounding blanks removed; an empty cell is missing."""
    text = column.astype(TEXT).str.strip()
    return text.mask(text == "")


def _apply_values(text: pd.Series, table: dict[str, object] | None) -> pd.Series:
    if not table:
        return text
    lookup = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in table.items()}
    mapped = text.map(lookup)
    return text.where(mapped.isna(), mapped).astype(TEXT)


def _join_numbered(raw: pd.DataFrame, prefix: str) -> pd.Series:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    numbered = sorted((int(m.group(1)), c) for c in raw.columns if (m := pattern.match(str(c))))
    joined = pd.Series(pd.NA, index=raw.index, dtype=TEXT)
    for _, column in numbered:
        part = _clean(raw[column])
        joined = (joined + "|" + part).fillna(joined).fillna(part)
    return joined


def _parse(
    text: pd.Series, field: Field, date_formats: tuple[str, ...], source: str
) -> tuple[pd.Series, pd.DataFrame]:
    given = text.notna()
    if field.kind == "str":
        return _objects(text), EMPTY_PROBLEMS
    if field.kind == "codes":
        return _codes(text), EMPTY_PROBLEMS
    if field.kind == "bool":
        value = text.str.lower().map(BOOLEAN_TEXT).astype("boolean")
        reason = "not a yes/no value (true/false, 1/0)"
    elif field.kind == "date":
        value = _dates(text, date_formats)
        reason = "not a date (expected e.g. 2024-01-05, 2024/1/5, 20240105 or a mapping date_formats entry)"
    else:
        number = _numbers(text)
        if field.kind == "int":
            value = pd.Series(np.where(np.round(number) == number, number, np.nan), index=text.index).astype(
                "Int64"
            )
            reason = "not a whole number"
        else:
            value = pd.Series(number, index=text.index)
            reason = "not a number"
    bad = given & value.isna()
    return value, problems_where(bad, field.name, text, reason, column=source)


def _numbers(text: pd.Series) -> np.ndarray:
    """Text as float64, NaN where missing, unreadable or infinite.

    Arrow's cast reads a clean column ~5x faster than ``pd.to_numeric``; only a column holding an
    unreadable value takes the slower pandas path, which marks just that value.
    """
    try:
        number = pc.cast(pa.array(text), pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(number), number, np.nan)


def _dates(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Dates tried format by format on what is still unread: vectorised, no per-row guessing."""
    value = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for date_format in formats:
        todo = value.isna() & text.notna()
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=date_format, errors="coerce")
        value[todo] = parsed.astype("datetime64[ns]")
    return value.dt.normalize()


def _combine(parsed: list[pd.Series], field: Field, length: int) -> pd.Series:
    """One series per field: absent columns give missing values, listed charge items add up."""
    if not parsed:
        if field.nullable_dtype is object:
            return pd.Series([None] * length, dtype=object)
        return pd.Series(None, index=range(length), dtype=field.nullable_dtype)
    if len(parsed) == 1:
        return parsed[0]
    return pd.concat(parsed, axis=1).sum(axis=1, min_count=1)


def _objects(text: pd.Series) -> pd.Series:
    return text.astype(object).where(text.notna(), None)


def _codes(text: pd.Series) -> pd.Series:
    """A code list with blanks around separators and empty entries removed."""
    tidy = (
        text.str.replace(r"\s*\|\s*", "|", regex=True).str.replace(r"\|{2,}", "|", regex=True).str.strip("|")
    )
    return _objects(tidy.mask(tidy == ""))
