"""The cells whose gap costs the most money, each with a sentence naming its top drivers.

"DRG IF39 in orthopaedics: ¥412,000 over the benchmark in 2025Q3 (12 cases); consumables +¥3,150 a
case (58%), …; case features: length of stay +1.8 days, +¥1,020 a case (24%), …" — what a finance
officer or department head reads first. Shares are of the total gap; only drivers that push the cost
up are named (a cell over its benchmark in total can be under it in some groups).
"""

from __future__ import annotations

import pandas as pd

from contract.fields import FIELD_BY_NAME
from models.drivers.decompose import UNALLOCATED, UNEXPLAINED

NAMED_DRIVERS = 3
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "los_days": ("住院天数", "length of stay"),
    "mcc_count": ("MCC数", "MCCs"),
    "cc_count": ("CC数", "CCs"),
    "procedures": ("手术操作数", "procedures"),
    "diagnoses": ("诊断数", "diagnoses"),
    "age_years": ("年龄", "age"),
    "sex": ("性别", "sex"),
    "admission_source": ("入院途径", "admission route"),
    "admission_type": ("入院类型", "admission type"),
    "discharge_disposition": ("离院方式", "discharge disposition"),
    "drg_code": ("DRG", "the DRG"),
    UNEXPLAINED: ("病例特征未解释部分（诊疗习惯）", "unexplained by case features (practice)"),
}
UNITS: dict[str, tuple[str, str]] = {
    "los_days": ("天", " days"),
    "age_years": ("岁", " years"),
    "mcc_count": ("个", ""),
    "cc_count": ("个", ""),
    "procedures": ("个", ""),
    "diagnoses": ("个", ""),
}


def driver_label(driver: str, lang: str = "en") -> str:
    """A charge group's or a feature's name in Chinese (``zh``) or English."""
    index = 0 if lang == "zh" else 1
    if driver == UNALLOCATED:
        return ("未分类费用", "charges outside the ten groups")[index]
    if driver in FEATURE_LABELS:
        return FEATURE_LABELS[driver][index]
    field = FIELD_BY_NAME[driver]
    return field.zh if lang == "zh" else field.en


def rank_cells(
    charge_groups: pd.DataFrame, keys: list[str], min_cases: int = 5, top: int | None = None
) -> pd.DataFrame:
    """The cells over their benchmark with at least ``min_cases`` cases, dearest gap first, ranked 1…."""
    found = charge_groups[(charge_groups["gap_total"] > 0) & (charge_groups["cases"] >= min_cases)]
    found = found.sort_values(["gap_total", *keys], ascending=[False, *[True] * len(keys)], kind="stable")
    found = found.head(top) if top is not None else found
    return found.reset_index(drop=True).assign(rank=lambda t: range(1, len(t) + 1))


def top_drivers(row: pd.Series, drivers: list[str], n: int = NAMED_DRIVERS) -> list[tuple[str, float, float]]:
    """The ``n`` drivers adding most to the row's gap: (driver, yuan per case, share of the gap)."""
    values = row[drivers].astype(float)
    up = values[values > 0].sort_values(ascending=False, kind="stable").head(n)
    return [(d, v / row["cases"], v / row["gap_total"]) for d, v in up.items()]


def sentence(
    cell: pd.Series,
    groups: list[tuple[str, float, float]],
    features: list[tuple[str, float, float]],
    differences: dict[str, float],
    drg_name: str | None,
    lang: str = "en",
) -> str:
    """The cell's sentence in Chinese or English (see the module docstring)."""
    zh = lang == "zh"
    where = cell.get("department") if isinstance(cell.get("department"), str) else None
    gap, period, cases = cell["gap_total"], cell["period"], int(cell["cases"])
    name = f" {drg_name}" if drg_name else ""

    def part(driver: str, per_case: float, share: float) -> str:
        change = differences.get(driver)
        moved = ""
        if change is not None and driver in UNITS and abs(change) >= 0.05:
            unit = UNITS[driver][0 if zh else 1]
            moved = f"{change:+.1f}{unit}，" if zh else f" {change:+.1f}{unit},"
        if zh:
            return f"{driver_label(driver, lang)}{moved}每例{_money(per_case, True)}（{share:.0%}）"
        return f"{driver_label(driver, lang)}{moved} {_money(per_case, True)} a case ({share:.0%})"

    if zh:
        place = f"（{where}）" if where else ""
        head = f"DRG {cell['drg']}{name}{place}：{period} 超出基准 {_money(gap)}（{cases}例）"
        by_group = "，".join(part(*g) for g in groups) or "无"
        by_feature = "，".join(part(*f) for f in features) or "无"
        return f"{head}；费用类别：{by_group}；病例特征：{by_feature}。"
    place = f" in {where}" if where else ""
    head = f"DRG {cell['drg']}{name}{place}: {_money(gap)} over the benchmark in {period} ({cases} cases)"
    by_group = ", ".join(part(*g) for g in groups) or "none"
    by_feature = ", ".join(part(*f) for f in features) or "none"
    return f"{head}; charge groups: {by_group}; case features: {by_feature}."


def _money(value: float, signed: bool = False) -> str:
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    return f"{sign}¥{abs(value):,.0f}"
