"""Charges by the abstract's ten groups, driven by case type, severity, length of stay and time.

The expected total of a stay is the type's median charge times 0.85 without complication, 1.1 with
a CC or 1.45 with an MCC, scaled by its length of stay against the type's usual stay (elasticity
0.55) and by price growth (3% a year); the charged total is that times log-normal noise. It is split
into the ten groups by a Dirichlet draw around the type's profile (drugs and consumables shares from
the case mix; the rest by surgical or medical care); nationally negotiated drugs are a part of
western drugs, larger in oncology.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.fields import COST_CATEGORIES
from pipelines.demo.catalog import Catalog

SEVERITY_FACTOR = np.array([0.85, 1.1, 1.45])
LOS_ELASTICITY = 0.55
GROWTH_PER_YEAR = 0.03
NOISE_SIGMA = 0.25
CONCENTRATION = 80.0
# Shares of the charge groups other than drugs and consumables, before normalising (medical, surgical).
OTHER_SHARES = {
    "cost_general_services": (0.14, 0.10),
    "cost_diagnostics": (0.22, 0.12),
    "cost_treatment": (0.10, 0.22),
    "cost_rehabilitation": (0.01, 0.01),
    "cost_tcm": (0.015, 0.005),
    "cost_chinese_drugs": (0.04, 0.015),
    "cost_blood": (0.01, 0.02),
    "cost_other": (0.015, 0.01),
}


def expected_cost(
    stays: pd.DataFrame, severity: np.ndarray, catalog: Catalog, start: np.datetime64
) -> np.ndarray:
    """Mean total charge of a stay given what is known at discharge (the oracle's ``expected_cost``)."""
    t = catalog.types
    types = stays["type"].to_numpy()
    los = np.maximum(stays["los"].to_numpy(), 1)
    usual = t["los"].to_numpy()[types] * np.array([1.0, 1.35, 1.8])[severity]
    years = (stays["admitted"].to_numpy().astype("datetime64[D]") - start).astype(np.int64) / 365.25
    core = (
        t["cost"].to_numpy()[types]
        * SEVERITY_FACTOR[severity]
        * (los / usual) ** LOS_ELASTICITY
        * (1 + GROWTH_PER_YEAR) ** years
    )
    return core * np.exp(NOISE_SIGMA**2 / 2)


def charges(
    stays: pd.DataFrame, expected: np.ndarray, catalog: Catalog, rng: np.random.Generator
) -> pd.DataFrame:
    """The ten charge groups (yuan, 2 decimals), their total, negotiated drugs and the patient-paid items.

    全自费 items (outside the insurer's catalogue, ≈ 3% of charges) and 先自付 (the first-paid part of
    class-B items, ≈ 3%) are what the payment rules' fund formula charges the patient before the
    deductible; with them an employee pays ≈ 1/4 and a resident ≈ 2/5 of a median (¥12,000) stay,
    near the schemes' reported actual reimbursement of inpatient charges (about 75% and 60%)."""
    t = catalog.types
    types = stays["type"].to_numpy()
    n = len(types)
    total = expected * np.exp(NOISE_SIGMA * rng.standard_normal(n) - NOISE_SIGMA**2 / 2)
    surgical = t["surgical"].to_numpy()[types].astype(int)
    drugs = t["drugs"].to_numpy()[types]
    consumables = t["consumables"].to_numpy()[types]
    rest = 1 - drugs - consumables
    others = np.array([OTHER_SHARES[c] for c in OTHER_SHARES])  # (8, 2)
    other = others[:, surgical].T  # (n, 8)
    other = other / other.sum(axis=1, keepdims=True) * rest[:, None]
    profile = {c: other[:, k] for k, c in enumerate(OTHER_SHARES)}
    profile["cost_western_drugs"] = drugs
    profile["cost_consumables"] = consumables
    alpha = np.column_stack([profile[c] for c in COST_CATEGORIES]) * CONCENTRATION
    shares = rng.gamma(np.maximum(alpha, 1e-3))
    shares /= shares.sum(axis=1, keepdims=True)
    parts = np.round(shares * total[:, None], 2)
    frame = pd.DataFrame(parts, columns=list(COST_CATEGORIES))
    frame.insert(0, "total_cost", np.round(parts.sum(axis=1), 2))
    oncology = t["department"].to_numpy()[types] == "oncology"
    negotiated_share = np.where(oncology, rng.beta(4, 6, n), rng.beta(1, 15, n))
    frame["cost_negotiated_drugs"] = np.round(frame["cost_western_drugs"].to_numpy() * negotiated_share, 2)
    frame["cost_self_funded"] = np.round(frame["total_cost"].to_numpy() * rng.beta(1, 30, n), 2)
    frame["cost_first_self_paid"] = np.round(frame["total_cost"].to_numpy() * rng.beta(2, 60, n), 2)
    return frame
