"""Stays still in hospital as first-class records, and the tables the store holds beside the abstracts.

An in-stay record (在院病人) is what the hospital knows about a stay before its discharge abstract
exists: the admission fields of the abstract, the diagnoses coded so far (admission diagnosis, then
working diagnoses, the working principal first) and the procedures done so far. The ``inpatients``
table keeps one row per stay per day its coding changed (``recorded_date``), so the record *as of*
any day is its latest row on or before that day (a point-in-time read); its charges to date are the
``charges`` table's days up to that day. A stay's abstract, once ingested, is its final record; the
snapshots stay, so a model can be trained on historical stays cut at any day.

Columns of other tables are named ``<table>.<column>`` where a feature declares what it reads
(``charges.cost_consumables`` is known at the end of its day; the abstract's ``cost_consumables`` only
at discharge), and :func:`table_field_stage` says when each becomes known.
"""

from __future__ import annotations

from contract.charges import CHARGE_FIELDS, CHARGE_KEY, CHARGES_TABLE
from contract.fields import FIELDS, Field, Stage

INPATIENTS_TABLE = "inpatients"
CASES_TABLE = "cases"

INSTAY_FIELDS: tuple[Field, ...] = (
    *(f for f in FIELDS if f.stage == "admission"),
    Field(
        "recorded_date",
        "date",
        "in_stay",
        True,
        "记录日期",
        "day this state of the stay's coding was recorded",
    ),
    Field(
        "working_diagnoses",
        "codes",
        "in_stay",
        False,
        "在院诊断编码",
        "diagnoses coded so far (working principal first), '|'-separated",
    ),
    Field(
        "procedures_so_far",
        "codes",
        "in_stay",
        False,
        "已行手术操作编码",
        "procedures done so far (principal first), '|'-separated",
    ),
)
INSTAY_KEY: tuple[str, ...] = ("case_id", "recorded_date")
INSTAY_COLUMNS: tuple[str, ...] = tuple(f.name for f in INSTAY_FIELDS)

# Columns an in-stay frame (a record cut at the end of a day) derives; known at that day's end.
INSTAY_DERIVED: tuple[Field, ...] = (
    Field("as_of_date", "date", "in_stay", True, "截至日期", "the day whose end the record is cut at"),
    Field(
        "day_of_stay", "int", "in_stay", True, "住院第几天", "as_of_date - admission_date + 1", None, 1, None
    ),
)

TABLE_FIELDS: dict[str, tuple[Field, ...]] = {
    CASES_TABLE: FIELDS,
    CHARGES_TABLE: CHARGE_FIELDS,
    INPATIENTS_TABLE: INSTAY_FIELDS,
}
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    CASES_TABLE: ("case_id",),
    CHARGES_TABLE: CHARGE_KEY,
    INPATIENTS_TABLE: INSTAY_KEY,
}
# The date a table is partitioned by (its hive folder is <column's>_year=YYYY).
TABLE_DATES: dict[str, str] = {
    CASES_TABLE: "admission_date",
    CHARGES_TABLE: "charge_date",
    INPATIENTS_TABLE: "recorded_date",
}

_QUALIFIED: dict[str, Stage] = {
    f"{table}.{f.name}": f.stage for table in (CHARGES_TABLE, INPATIENTS_TABLE) for f in TABLE_FIELDS[table]
} | {f.name: f.stage for f in INSTAY_DERIVED}


def table_field_stage(name: str) -> Stage | None:
    """The stage a ``<table>.<column>`` of another table (or an in-stay derived column) becomes known."""
    return _QUALIFIED.get(name)


def any_field(name: str) -> Field | None:
    """The field called ``name`` in any table (a shared name has the same kind in every table)."""
    for fields in TABLE_FIELDS.values():
        for f in fields:
            if f.name == name:
                return f
    return None
