"""The relative-weight table (RW table, DRG权重表): the insurer's published weights, read and checked.

Payment, the casemix indicators and every model label stand on one table per DRG: ``rw`` (权重), the
region's ``mean_cost`` (次均费用, cost inside the DRG, net of the items paid outside it) and
``mean_los`` (平均住院日) — the standards the cost and time consumption indices compare with — and
optionally ``name``, ``n_cases``, ``cv`` (the cost's coefficient of variation) and ``stable``
(false for a 非稳定组). The insurer's table is the primary input (``[calibration] rw_table`` in the
payment rules, or ``--rw-table``); ``config/rw_table.template.csv`` documents the format. Without one,
caselens estimates the table from the hospital's own history (``casemix.weights``), and says
so: :func:`weights_source` labels every table ``"insurer table"`` or ``"estimated from own history"``
from its ``source`` column (``insurer``, or where a calibrated weight came from: ``drg``, ``adrg``,
``shrunk``).

Insurers publish spreadsheets, so the reader is forgiving about form (UTF-8 with or without BOM, or
GB18030; the Chinese headers 权重, 次均费用, …; a leading ``#`` comment block) and strict about content:
every bad cell is reported by file line, DRG and field, not just the first.
"""

from __future__ import annotations

import csv
import math
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from contract.errors import ConfigError

if TYPE_CHECKING:
    import pandera.pandas as pa

WeightsSource = Literal["insurer table", "estimated from own history"]
INSURER: WeightsSource = "insurer table"
ESTIMATED: WeightsSource = "estimated from own history"
TEMPLATE = Path(__file__).parent / "config" / "rw_table.template.csv"

WEIGHT_COLUMNS: tuple[str, ...] = ("rw", "name", "n_cases", "mean_cost", "mean_los", "cv", "stable", "source")
SOURCES: tuple[str, ...] = ("insurer", "drg", "adrg", "shrunk")
REQUIRED: tuple[str, ...] = ("drg", "rw")
# Headers as Chinese insurers' tables spell them, read as the template's names.
ALIASES: dict[str, str] = {
    "drg编码": "drg",
    "drg代码": "drg",
    "drg名称": "name",
    "权重": "rw",
    "相对权重": "rw",
    "次均费用": "mean_cost",
    "平均费用": "mean_cost",
    "平均住院日": "mean_los",
    "例数": "n_cases",
    "病例数": "n_cases",
    "变异系数": "cv",
    "稳定组": "stable",
    "是否稳定组": "stable",
    "来源": "source",
}
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "是", "稳定", "稳定组"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "否", "非稳定", "非稳定组"})
SHOWN_PROBLEMS = 10


@cache
def weight_schema() -> pa.DataFrameSchema:
    """The weight table's schema, checked on every calibrated table. Built on first use: importing
    pandera and its first validation (which imports hypothesis where installed) cost 0.5 s of CPU,
    paid by every ``caselens group --payment`` run when the insurer's table was read."""
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            "rw": pa.Column(float, pa.Check.gt(0)),
            "name": pa.Column(object, nullable=True),
            "n_cases": pa.Column("Int64", pa.Check.ge(0), nullable=True),
            "mean_cost": pa.Column(float, pa.Check.gt(0), nullable=True),
            "mean_los": pa.Column(float, pa.Check.gt(0), nullable=True),
            "cv": pa.Column(float, pa.Check.ge(0), nullable=True),
            "stable": pa.Column("boolean", nullable=True),
            "source": pa.Column(object, pa.Check.isin(list(SOURCES))),
        },
        index=pa.Index(str, name="drg", unique=True, nullable=False),
        strict=True,
        ordered=True,
    )


def weights_source(table: pd.DataFrame) -> WeightsSource:
    """How a weight table came about, as reports, pages and API answers label it."""
    return INSURER if table["source"].eq("insurer").all() else ESTIMATED


def write_weights(table: pd.DataFrame, path: Path) -> Path:
    """Write a weight table as an editable UTF-8 CSV (floats at full precision) that reads back the same."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.reset_index().to_csv(path, index=False, encoding="utf-8")
    return path


def read_weights(path: Path) -> pd.DataFrame:
    """An RW table CSV as a weight table; ``drg`` and ``rw`` are required, the other columns optional.

    A table without a ``source`` column is the insurer's. Raises ``ConfigError`` listing every bad
    cell as ``<file>: line <n> (drg <code>): <field> …``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such RW table")
    header, rows = _rows(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ConfigError(f"{path}: the RW table needs columns {missing} (see {TEMPLATE.name})")
    unknown = [c for c in header if c != "drg" and c not in WEIGHT_COLUMNS]
    if unknown:
        raise ConfigError(f"{path}: unknown RW table columns {unknown}; known: {['drg', *WEIGHT_COLUMNS]}")
    if not rows:
        raise ConfigError(f"{path}: the RW table has no rows")
    problems: list[str] = []
    records = [_record(cells, line, problems) for line, cells in rows]
    first_line: dict[str, int] = {}
    for (line, _), record in zip(rows, records, strict=True):
        drg = record["drg"]
        if drg in first_line:
            problems.append(f"line {line} (drg {drg}): drg repeats line {first_line[drg]}")
        first_line.setdefault(drg, line)
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = f"\n  … {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise ConfigError(f"{path}: {len(problems)} problem(s) in the RW table:\n  {shown}{more}")
    table = pd.DataFrame.from_records(records).set_index("drg")
    if "source" not in header:
        table["source"] = "insurer"
    # Every cell was checked above, with its file line, and ``_typed`` gives the schema's dtypes: the
    # table meets ``weight_schema()`` (tested) without paying for pandera on each read.
    return _typed(table.reindex(columns=list(WEIGHT_COLUMNS)))


def _record(cells: dict[str, str], line: int, problems: list[str]) -> dict[str, object]:
    """One row's values, each checked; what is wrong goes to ``problems`` naming line, DRG and field."""
    drg = cells["drg"]
    where = f"line {line} (drg {drg or '?'})"

    def problem(field: str, text: str) -> None:
        problems.append(f"{where}: {field} {text}, got {cells[field]!r}")

    if not drg or not drg.isalnum():
        problem("drg", "must be a DRG code (letters and digits)")
    record: dict[str, object] = {"drg": drg}
    for field in ("rw", "mean_cost", "mean_los", "cv"):
        if cells.get(field):
            value = _number(cells[field])
            zero_ok = field == "cv"
            if value is None or (value < 0 if zero_ok else value <= 0):
                problem(field, "must be a number ≥ 0" if zero_ok else "must be a positive number")
            record[field] = value
        elif field == "rw":
            problem("rw", "is required")
    if cells.get("n_cases"):
        value = _number(cells["n_cases"])
        if value is None or value < 0 or value != int(value):
            problem("n_cases", "must be a whole number ≥ 0")
        else:
            record["n_cases"] = int(value)
    if cells.get("stable"):
        word = cells["stable"].lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            problem("stable", "must be true or false (是/否, 稳定/非稳定)")
        record["stable"] = word in TRUE_WORDS
    if cells.get("source") and cells["source"] not in SOURCES:
        problem("source", f"must be one of {list(SOURCES)}")
    for field in ("name", "source"):
        if cells.get(field):
            record[field] = cells[field]
    return record


def _number(text: str) -> float | None:
    """A finite number from a cell (thousands separators allowed), else None."""
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """The weight table's dtypes; missing cells are None in text columns and NA elsewhere."""
    table = table.astype(
        {
            "rw": float,
            "n_cases": "Int64",
            "mean_cost": float,
            "mean_los": float,
            "cv": float,
            "stable": "boolean",
        }
    )
    for column in ("name", "source"):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    table.index = table.index.astype(object).rename("drg")
    return table


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header names and (file line, cells by name) of each data row, after a leading ``#`` block."""
    lines = _text(path).splitlines()
    first = 0
    while first < len(lines) and (lines[first].startswith("#") or not lines[first].strip()):
        first += 1
    if first == len(lines):
        raise ConfigError(f"{path}: empty RW table (no header line)")
    names = [_column(name) for name in next(csv.reader([lines[first]]))]
    rows = []
    for number, text in enumerate(lines[first + 1 :], start=first + 2):
        cells = next(csv.reader([text]), [])
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names):
            raise ConfigError(f"{path}: line {number} has {len(cells)} cells for {len(names)} columns")
        padded = [*cells, *[""] * (len(names) - len(cells))]
        rows.append((number, dict(zip(names, (c.strip() for c in padded), strict=True))))
    return names, rows


def _column(name: str) -> str:
    """A header cell as the template's column name (Chinese headers and case are accepted)."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def _text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 or GB18030 text; save the RW table as UTF-8 CSV") from None
