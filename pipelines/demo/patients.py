"""Patients: who they are and the chronic conditions they carry into every admission."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.demo.catalog import Catalog

# Payer mix of a city tertiary hospital (abstract codes, see contract.fields.INSURANCE_TYPES).
INSURANCE_SHARES = {1: 0.46, 2: 0.42, 4: 0.01, 5: 0.01, 6: 0.02, 7: 0.06, 8: 0.01, 9: 0.01}


def draw_patients(
    types: np.ndarray, admitted: np.ndarray, catalog: Catalog, rng: np.random.Generator
) -> pd.DataFrame:
    """One patient per first (index) admission: sex, birth date, payer and chronic conditions.

    ``types`` and ``admitted`` (datetime64[D]) are those of the patient's first admission, so age
    and sex follow that case type's distribution (deliveries are women, neonates are days old).
    """
    t = catalog.types
    n = len(types)
    female = rng.random(n) < t["female"].to_numpy()[types]
    age = rng.normal(t["age_mean"].to_numpy()[types], t["age_sd"].to_numpy()[types])
    age = np.clip(age, t["age_min"].to_numpy()[types], t["age_max"].to_numpy()[types])
    newborn = t["age_max"].to_numpy()[types] == 0
    age_days = np.where(newborn, np.minimum(rng.geometric(0.35, n) - 1, 28), 0)
    days_old = np.where(newborn, age_days, np.floor(age * 365.25) + rng.integers(0, 365, n))
    birth = admitted - days_old.astype("timedelta64[D]")
    payers = np.array(list(INSURANCE_SHARES))
    insurance = payers[rng.choice(len(payers), n, p=np.array(list(INSURANCE_SHARES.values())))]

    chronic = catalog.chronic
    logit = np.log(chronic["prevalence"].to_numpy() / (1 - chronic["prevalence"].to_numpy()))
    p = 1 / (1 + np.exp(-(logit[None, :] + chronic["age_slope"].to_numpy()[None, :] * (age[:, None] - 70))))
    has = (rng.random((n, len(chronic))) < p) & (age[:, None] >= 18)
    frame = pd.DataFrame({"sex": np.where(female, 2, 1), "birth_date": birth, "insurance_type": insurance})
    for k, key in enumerate(chronic["key"]):
        frame[f"chronic_{key}"] = has[:, k]
    return frame.assign(n_chronic=has.sum(axis=1))


def age_at(birth: np.ndarray, admitted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Completed years and, under one year, days of age at admission."""
    days = (admitted - birth).astype("timedelta64[D]").astype(np.int64)
    years = np.floor(days / 365.25).astype(np.int64)
    return years, np.where(years == 0, days, -1)
