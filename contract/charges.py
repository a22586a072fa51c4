"""The daily charges feed (费用明细): one row per stay per day, the abstract's ten charge groups.

A hospital information system records every charge item with its date and its national charge group
(the groups of the discharge abstract, ``contract.fields.COST_CATEGORIES``); summed per stay and day
they are this feed. The days of a discharged stay add up to the abstract's charge groups; the days
of a stay still in hospital are its charges to date, which is what the in-stay warning reads. A day
a group was not charged is 0 (a refund can make a day's group negative, so no minimum is enforced).
Every value is known at the end of its ``charge_date`` (stage ``in_stay``).
"""

from __future__ import annotations

from contract.fields import COST_CATEGORIES, FIELD_BY_NAME, Field

CHARGES_TABLE = "charges"

CHARGE_FIELDS: tuple[Field, ...] = (
    Field("case_id", "str", "in_stay", True, "住院号/病案号", "case (episode) id of the stay charged"),
    Field("charge_date", "date", "in_stay", True, "费用日期", "day the charges were incurred"),
    *(
        Field(name, "float", "in_stay", False, FIELD_BY_NAME[name].zh, FIELD_BY_NAME[name].en + " (yuan)")
        for name in COST_CATEGORIES
    ),
)
CHARGE_KEY: tuple[str, ...] = ("case_id", "charge_date")
CHARGE_COLUMNS: tuple[str, ...] = tuple(f.name for f in CHARGE_FIELDS)
