"""A coder-readable account of how one case was grouped.

The grouper reports each condition it evaluated (and each DRG split it tried) for a one-case batch;
this module turns those outcomes into sentences with code and DRG names from the dictionaries, e.g.
"MDCF entered: principal diagnosis I21.000 急性前壁心肌梗死 is in MDCF's diagnoses list".
"""

from __future__ import annotations

from casemix.tables import CasemixTables, Condition, Drg, Entry
from contract.fields import SEXES


class Trace:
    """Collects trace lines for one case; pass it to the grouper's walk as the observer."""

    def __init__(
        self, tables: CasemixTables, diagnoses: list[str], procedures: list[str], case: dict[str, float]
    ):
        self.tables = tables
        self.diagnoses = diagnoses
        self.procedures = procedures
        self.case = case
        self.lines: list[str] = []
        self._pending: list[str] = []

    def condition(self, entry: Entry, condition: Condition, held: bool) -> None:
        text = self._describe(entry, condition, held)
        if held:
            self._pending.append(text)
        else:
            self.lines.append(f"{self._label(entry)} not {self._verb(entry)}: {text}")
            self._pending = []

    def entered(self, entry: Entry) -> None:
        reasons = "; ".join(self._pending) or "its rule is empty"
        self.lines.append(f"{self._label(entry)} {self._verb(entry)}: {reasons}")
        self._pending = []

    def left(self, mdc: Entry, why: str) -> None:
        self.lines.append(f"{mdc.code} left: {why}")

    def split(self, drg: Drg, held: bool) -> None:
        principal = self.diagnoses[0] if self.diagnoses else None
        secondary = self.diagnoses[1:]
        label = f"DRG {drg.code} {drg.name}"
        if drg.split == "none":
            self.lines.append(f"{label} chosen: split none always holds")
            return
        mcc = [c for c in secondary if self.tables.is_mcc(c, principal)]
        cc = [c for c in secondary if self.tables.is_cc(c, principal)]
        if held:
            found = (
                f"secondary {self._diagnosis(mcc[0])} is an MCC"
                if mcc
                else f"secondary {self._diagnosis(cc[0])} is a CC"
            )
            self.lines.append(f"{label} chosen: split {drg.split}: {found}")
            return
        wanted = "an MCC" if drg.split == "mcc" else "an MCC or CC"
        lists = (self.tables.mcc,) if drg.split == "mcc" else (self.tables.mcc, self.tables.cc)
        excluded = [c for c in secondary if any(c in table for table in lists)]
        note = (
            f" ({', '.join(excluded)} excluded by the principal diagnosis's exclusion table)"
            if excluded
            else ""
        )
        self.lines.append(f"{label} not chosen: split {drg.split}: no secondary diagnosis is {wanted}{note}")

    def finish(self, text: str) -> None:
        self.lines.append(text)

    def _label(self, entry: Entry) -> str:
        return entry.code if entry.code in self.tables.mdcs else f"ADRG {entry.code}"

    def _verb(self, entry: Entry) -> str:
        return "entered" if entry.code in self.tables.mdcs else "matched"

    def _diagnosis(self, code: str) -> str:
        return _named(code, self.tables.diagnosis_name(code))

    def _procedure(self, code: str) -> str:
        return _named(code, self.tables.procedure_name(code))

    def _describe(self, entry: Entry, condition: Condition, held: bool) -> str:
        kind, value = condition.kind, condition.value
        is_ = "is" if held else "is not"
        where = f"{entry.code}'s {value} list"
        if kind == "principal_diagnosis_in":
            return f"principal diagnosis {self._diagnosis(self.diagnoses[0])} {is_} in {where}"
        if kind == "any_diagnosis_in":
            found = [c for c in self.diagnoses if c in condition.codes]
            return (
                f"diagnosis {self._diagnosis(found[0])} is in {where}"
                if found
                else f"no diagnosis is in {where}"
            )
        if kind in ("principal_procedure_in", "principal_procedure_is_or_procedure") and not self.procedures:
            return "the case has no procedure"
        if kind == "principal_procedure_in":
            return f"principal procedure {self._procedure(self.procedures[0])} {is_} in {where}"
        if kind == "any_procedure_in":
            found = [c for c in self.procedures if c in condition.codes]
            return (
                f"procedure {self._procedure(found[0])} is in {where}"
                if found
                else f"no procedure is in {where}"
            )
        if kind == "principal_procedure_is_or_procedure":
            return (
                f"principal procedure {self._procedure(self.procedures[0])} {is_} an operating-room procedure"
            )
        if kind == "no_or_procedure":
            found = [c for c in self.procedures if c in self.tables.or_procedures]
            return (
                f"procedure {self._procedure(found[0])} is an operating-room procedure"
                if found
                else ("no procedure is an operating-room procedure")
            )
        if kind == "age_days_at_most":
            return f"age {_num(self.case['age_days'])} days {'≤' if held else 'is not ≤'} {value}"
        if kind == "age_years":
            return f"age {_num(self.case['age_years'])} years {'=' if held else '≠'} {value}"
        if kind == "sex":
            return f"sex {_sex(self.case['sex'])} {'=' if held else '≠'} {_sex(value)}"
        if kind == "birth_weight_grams":
            band = f"[{_num(value.get('min', 0))}, {_num(value['below']) if 'below' in value else '∞'}) g"
            return f"birth weight {_num(self.case['birth_weight_g'])} g {is_} in {band}"
        if kind == "procedure_groups_any_of":
            hit = sorted(g for g, codes in condition.groups.items() if codes.intersection(self.procedures))
            alternatives = " or ".join("+".join(alt) for alt in value)
            covers = "covers" if held else "covers none of"
            return f"procedure groups hit {hit or 'none'}; {covers} {alternatives}"
        if kind == "distinct_trauma_regions_at_least":
            hit = [r for r, codes in condition.groups.items() if codes.intersection(self.diagnoses)]
            names = "、".join(hit) or "none"
            return f"diagnoses fall in {len(hit)} trauma regions ({names}), {'≥' if held else '<'} {value}"
        return f"{kind} {value!r} {'holds' if held else 'does not hold'}"


def _named(code: str, name: str | None) -> str:
    return f"{code} {name}" if name else f"{code} (not in the dictionary)"


def _num(value: float) -> str:
    return "unknown" if value != value else f"{value:g}"


def _sex(value: float) -> str:
    label = SEXES.get(int(value)) if value == value and float(value).is_integer() else None
    return f"{value:g} ({label[1]})" if label else _num(value)
