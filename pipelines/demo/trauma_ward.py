"""The planted cost driver: a trauma ward whose femoral-fracture fixations use dearer implants.

About a third of the femoral-fracture stays (ADRG IF3) go, as beds allow, to a trauma-orthopaedics
ward (创伤骨科) instead of the orthopaedics department; the ward fixes fractures with imported locking
plates, so its consumables (耗材) run at about 1.5× orthopaedics' for the same stays (a log-normal
factor per stay, mean 1.5, σ 0.12), every other charge group as it would be. The ward is chosen at
random, independently of the patient and the stay, so nothing but the department and the consumables
tells its stays apart: ``caselens casemix drivers`` should name consumables as the first driver of the
ward's IF3 cells (tests/casemix/test_drivers.py checks it). Its draws come from a child of the
generator, so every other draw of the simulation is the same as without the ward.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CASE_TYPE = "femoral_fracture_surgery"
WARD = "trauma_orthopaedics"
WARD_SHARE = 0.35
CONSUMABLES_FACTOR = 1.5
FACTOR_SIGMA = 0.12


def plant(
    case_types: np.ndarray,
    departments: np.ndarray,
    charges: pd.DataFrame,
    expected: np.ndarray,
    consumables_share: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Departments, charges and expected totals with the ward's stays moved and their consumables raised.

    ``consumables_share`` is each stay's expected share of consumables in its charges (its type's), so
    the expected total (the oracle's) rises by the expected extra consumables.
    """
    eligible = case_types == CASE_TYPE
    ward = eligible & (rng.random(len(case_types)) < WARD_SHARE)
    factor = CONSUMABLES_FACTOR * np.exp(
        FACTOR_SIGMA * rng.standard_normal(len(case_types)) - FACTOR_SIGMA**2 / 2
    )
    factor = np.where(ward, factor, 1.0)
    charges = charges.copy()
    extra = np.round(charges["cost_consumables"].to_numpy() * (factor - 1.0), 2)
    charges["cost_consumables"] = charges["cost_consumables"].to_numpy() + extra
    charges["total_cost"] = np.round(charges["total_cost"].to_numpy() + extra, 2)
    departments = np.where(ward, WARD, departments).astype(object)
    expected = expected * np.where(ward, 1.0 + (CONSUMABLES_FACTOR - 1.0) * consumables_share, 1.0)
    return departments, charges, expected
