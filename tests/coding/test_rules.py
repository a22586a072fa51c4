"""The coding team's rules (the baseline) and the specificity checks, on handmade abstracts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.coding.rules import (
    RulesBaseline,
    is_unspecified,
    planned_procedure_not_coded,
    rule_flags,
    rule_pattern,
    unspecified_share,
)


def test_rules_and_pattern():
    cases = pd.DataFrame(
        {
            "principal_diagnosis": ["R10.400", "R10.400", "J18.900"],
            "other_diagnoses": ["K35.800", None, "R50.900|E11.900"],
            "principal_procedure": [None, "47.0901", None],
            "planned_procedure": ["47.0901", None, None],
            "admission_diagnosis": ["K35.800", "R10.400", "J18.000"],
            "total_cost": [1000.0, 1000.0, 1000.0],
            "cost_treatment": [400.0, 0.0, 0.0],
            "cost_consumables": [200.0, 0.0, 0.0],
            "los_days": [1, 2, 3],
        }
    )
    flags = rule_flags(cases, np.array([1, 0, 0]))
    assert flags.iloc[0].drop("principal_unspecified").all() and not flags.iloc[0]["principal_unspecified"]
    assert not flags.iloc[1].any()  # a symptom principal with no specific diagnosis beside it is fine
    assert rule_pattern(flags).tolist()[1:] == ["none", "principal_unspecified"]
    assert rule_pattern(flags).iloc[0].startswith("mcc_coded+mcc_short_stay+admission_category_differs+")


def test_specificity():
    assert is_unspecified(pd.Series(["J18.900", "J18.9", "J18.000", "I10.x00x002", None])).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]
    share = unspecified_share(pd.Series(["J18.900|E11.900", "I10.x00", None]))
    assert share[0] == 1.0 and share[1] == 0.0 and np.isnan(share[2])


def test_planned_procedure_is_coded_when_listed_anywhere():
    cases = pd.DataFrame(
        {
            "planned_procedure": ["51.2300", "51.2300", "51.2300", None],
            "principal_procedure": ["51.2300", "88.0100", None, None],
            "other_procedures": [None, "51.2300", "88.0100", None],
        }
    )
    assert planned_procedure_not_coded(cases).tolist() == [False, False, True, False]


def test_rules_baseline_weighs_flags_by_their_audited_error_rates():
    """Errors follow the admission-category flag and the coder's prior rate, not the MCC flag: the fitted
    weights and the ranking of new cases say so."""
    rng = np.random.default_rng(3)
    n = 4000
    X = pd.DataFrame(
        {
            "mcc_count": rng.integers(0, 2, n).astype(float),
            "admission_category_differs": (rng.random(n) < 0.2).astype(float),
            "planned_procedure_not_coded": (rng.random(n) < 0.05).astype(float),
            "cost_to_drg_mean": np.exp(rng.normal(0, 0.5, n)),
            "mcc_short_stay": (rng.random(n) < 0.02).astype(float),
            "surgical_charges_no_procedure": (rng.random(n) < 0.02).astype(float),
            "symptom_principal_with_specific": (rng.random(n) < 0.02).astype(float),
            "principal_unspecified": (rng.random(n) < 0.2).astype(float),
            "coder_prior_error_rate": np.where(rng.random(n) < 0.05, np.nan, rng.uniform(0.02, 0.15, n)),
        }
    )
    logit = -3 + 2.0 * X["admission_category_differs"] + 15 * X["coder_prior_error_rate"].fillna(0.08)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    baseline = RulesBaseline().fit(X[:3000], y[:3000])
    weights = baseline.coefficients()
    assert weights["admission_category_differs"] > 0.5 and weights["coder_prior_error_rate"] > 0.2
    assert abs(weights["mcc_coded"]) < 0.2
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[3000:], baseline.predict_proba(X[3000:])) > 0.7
