"""The coding team's rules (the baseline) and the specificity checks, on handmade abstracts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.coding.rules import is_unspecified, rule_flags, rule_pattern, unspecified_share


def test_rules_and_pattern():
    cases = pd.DataFrame(
        {
            "principal_diagnosis": ["R10.400", "R10.400", "J18.900"],
            "other_diagnoses": ["K35.800", None, "R50.900|E11.900"],
            "principal_procedure": [None, "47.0901", None],
            "planned_procedure": ["47.0901", None, None],
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
    assert rule_pattern(flags).iloc[0].startswith("mcc_short_stay+symptom_principal_with_specific+")


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
