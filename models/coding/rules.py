"""The checks a coding team runs by hand: the baseline the coding-error model has to beat.

Each rule is a boolean per case; ``rule_pattern`` names the rules a case trips ("none" when it trips
none). The framework's group-mean baseline over ``rule_pattern`` then gives each pattern its error
rate among earlier audits, which is how a team ranks its worklist from these rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.contract import CODE_SEPARATOR

SHORT_STAY_DAYS = 2  # an MCC on a stay shorter than this is rarely supported
SURGICAL_SHARE = 0.5  # treatment + consumables at least this share of charges is surgery-level
RULES = {
    "mcc_short_stay": "MCC coded on a stay under 2 days",
    "symptom_principal_with_specific": "symptom (R) code as principal beside a specific diagnosis",
    "surgical_charges_no_procedure": "surgery-level charges but no procedure coded",
    "planned_procedure_not_coded": "planned procedure not coded",
    "principal_unspecified": "unspecified (.9) principal diagnosis",
}


def _codes(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str).str.strip().str.upper()


def is_unspecified(codes: pd.Series) -> pd.Series:
    """ICD-10 codes whose subcategory is 9 (unspecified, e.g. J18.9 / J18.900): "A00.9..." forms."""
    return _codes(codes).str.match(r"^[A-Z]\d\d\.9")


def unspecified_share(other_diagnoses: pd.Series) -> np.ndarray:
    """Share of each case's secondary diagnoses that are unspecified (NaN without secondaries)."""
    lists = _codes(other_diagnoses).str.split(CODE_SEPARATOR)
    long = lists.explode()
    long = long[long != ""]
    flags = is_unspecified(long).groupby(level=0).mean()
    return flags.reindex(other_diagnoses.index).to_numpy(np.float64)


def rule_flags(cases: pd.DataFrame, mcc_count: pd.Series | np.ndarray) -> pd.DataFrame:
    """Every rule of ``RULES`` per case; ``mcc_count`` comes from the grouper (MCCs that count)."""
    principal = _codes(cases["principal_diagnosis"])
    others = _codes(cases["other_diagnoses"])
    no_procedure = cases["principal_procedure"].isna().to_numpy()
    total = cases["total_cost"].astype(float)
    surgical = (
        cases["cost_treatment"].astype(float) + cases["cost_consumables"].astype(float)
    ) / total.where(total > 0)
    codes = others.reset_index(drop=True).str.split(CODE_SEPARATOR).explode()
    specific = ((codes != "") & ~codes.str.startswith("R")).groupby(level=0).any()
    planned = cases["planned_procedure"].notna().to_numpy() if "planned_procedure" in cases.columns else False
    return pd.DataFrame(
        {
            "mcc_short_stay": (np.asarray(mcc_count) > 0) & (cases["los_days"].to_numpy() < SHORT_STAY_DAYS),
            "symptom_principal_with_specific": principal.str.startswith("R").to_numpy() & specific.to_numpy(),
            "surgical_charges_no_procedure": no_procedure & (surgical >= SURGICAL_SHARE).to_numpy(),
            "planned_procedure_not_coded": no_procedure & planned,
            "principal_unspecified": is_unspecified(cases["principal_diagnosis"]).to_numpy(),
        },
        index=cases.index,
    )


def rule_pattern(flags: pd.DataFrame) -> pd.Series:
    """The '+'-joined names of the rules each case trips, "none" when it trips none."""
    text = np.full(len(flags), "", dtype=object)
    for name in flags.columns:
        text = text + np.where(flags[name].to_numpy(bool), "+" + name, "")
    pattern = pd.Series(text, index=flags.index, dtype=object).str.removeprefix("+")
    return pattern.where(pattern != "", "none")
