"""Discharge-stage casemix features agree with the reference grouper's answers, grouped as the payment
rules say (the default rules' 歧义组)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.pipeline import CaseFeatures

REFERENCE = "chs_drg_11_test_cases.tsv"


def _canonical(reference: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    """Reference test cases as canonical stays (one patient each), other fields from ``template``."""
    diagnoses = reference["diagnoses"].fillna("").str.split("|", n=1, expand=True).reindex(columns=[0, 1])
    procedures = reference["procedures"].fillna("").str.split("|", n=1, expand=True).reindex(columns=[0, 1])
    base = template.iloc[[0] * len(reference)].reset_index(drop=True)
    return base.assign(
        case_id=reference["case_id"].to_numpy(),
        patient_id=reference["case_id"].to_numpy(),
        sex=reference["sex"].to_numpy(),
        age_years=reference["age_years"].to_numpy(),
        age_days=reference["age_days"].to_numpy(),
        birth_weight_g=reference["birth_weight_g"].to_numpy(),
        principal_diagnosis=diagnoses[0].replace("", None).to_numpy(),
        other_diagnoses=diagnoses[1].to_numpy(),
        principal_procedure=procedures[0].replace("", None).to_numpy(),
        other_procedures=procedures[1].to_numpy(),
    )


def test_drg_rw_and_complications_come_from_the_grouper(hospital: pd.DataFrame) -> None:
    reference = pd.read_csv(Path(__file__).parents[1] / "data" / REFERENCE, sep="\t", dtype=str, nrows=300)
    reference = reference[reference["expected_status"] == "分组成功"].head(120)
    for column in ("sex", "age_years", "age_days", "birth_weight_g"):
        reference[column] = pd.to_numeric(reference[column])
    cases = _canonical(reference, hospital)
    x = CaseFeatures("discharge", min_category_count=1).fit_transform(cases)
    drg, mdc = x["drg"].astype(str), x["mdc"].astype(str)
    # The default rules group with 歧义组 on: the reference's answer, except that an OR procedure outside
    # the MDC's procedure ADRGs sends a case the reference put in a medical ADRG to the MDC's QY group.
    ambiguous = drg.str.endswith("QY").to_numpy()
    assert ambiguous.any() and (~ambiguous).any()
    assert drg[~ambiguous].tolist() == reference["expected_drg"][~ambiguous].tolist()
    assert mdc.tolist() == reference["expected_mdc"].tolist()
    assert reference["expected_drg"][ambiguous].str[1].isin(list("RSTUVWXYZ")).all()
    assert x["grouped"].eq(1.0).all()
    some_drg = reference["expected_drg"][~ambiguous].iloc[0]
    weights = pd.DataFrame({"drg": [some_drg], "rw": [1.25]})
    x = CaseFeatures("discharge", weights=weights, min_category_count=1).fit_transform(cases)
    assert x["rw"].eq(1.25).sum() == (drg == some_drg).sum() > 0
    assert x["rw"].isna().sum() == (drg != some_drg).sum()
    with_mcc = reference["expected_drg"].str[3] == "1"
    assert (x.loc[with_mcc.to_numpy(), "mcc_count"] > 0).all()
    with_or = x["has_or_procedure"] == 1.0
    assert with_or.any() and (~with_or).any()
