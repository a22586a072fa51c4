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
from contract.fields import COST_CATEGORIES, FIELDS, Field, Stage

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

# Columns an in-stay frame (a record cut at the end of a day, features.instay) derives; all known at
# that day's end. The charges to date by group are ``charges.<group>`` (the charges table's columns).
INSTAY_DERIVED: tuple[Field, ...] = (
    Field("as_of_date", "date", "in_stay", True, "截至日期", "the day whose end the record is cut at"),
    Field(
        "day_of_stay", "int", "in_stay", True, "住院第几天", "as_of_date - admission_date + 1", None, 1, None
    ),
    Field(
        "charges_to_date", "float", "in_stay", True, "累计费用", "charges up to the end of as_of_date (yuan)"
    ),
    Field("charges_last_day", "float", "in_stay", True, "当日费用", "charges on as_of_date (yuan)"),
    Field(
        "charges_last_3_days",
        "float",
        "in_stay",
        True,
        "近3日费用",
        "charges on as_of_date and the 2 days before",
    ),
    Field("pregroup_status", "str", "in_stay", True, "预分组状态", "grouped, or why the record cannot be"),
    Field("pregroup_drg", "str", "in_stay", True, "预分组DRG", "DRG of the codes so far (casemix.pregroup)"),
    Field("pregroup_adrg", "str", "in_stay", True, "预分组ADRG", "ADRG of the codes so far"),
    Field("pregroup_rw", "float", "in_stay", False, "预分组权重", "relative weight of the pre-grouped DRG"),
    Field(
        "payment_standard",
        "float",
        "in_stay",
        False,
        "支付标准",
        "the pre-grouped DRG's standard payment under the rules in force on as_of_date (yuan)",
    ),
)
CHARGES_TO_DATE: tuple[str, ...] = tuple(f"{CHARGES_TABLE}.{name}" for name in COST_CATEGORIES)

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
} | {f.name: f.stage for f in (*INSTAY_FIELDS, *INSTAY_DERIVED) if f.stage == "in_stay"}


def table_field_stage(name: str) -> Stage | None:
    """The stage a ``<table>.<column>`` of another table, or an in-stay column of its own name
    (``working_diagnoses``, ``day_of_stay``…), becomes known; None for anything else."""
    return _QUALIFIED.get(name)


def any_field(name: str) -> Field | None:
    """The field called ``name`` in any table (a shared name has the same kind in every table)."""
    for fields in TABLE_FIELDS.values():
        for f in fields:
            if f.name == name:
                return f
    return None
