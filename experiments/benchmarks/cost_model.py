"""The demo cost model the serving and explainer benchmarks measure, fitted the same way for both.

CaseFeatures at the admission stage and the cost task's CostModel, trained on the earliest three
quarters of the cases by discharge date and early-stopped on the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from contract.fields import fields_known_at
from features.pipeline import CaseFeatures
from models.config import load_config
from models.tasks.cost import CostModel


def fit_cost_model(
    cases: pd.DataFrame, trees: int | None = None
) -> tuple[CaseFeatures, CostModel, dict[str, Any]]:
    """The fitted features, the fitted estimator and its LightGBM parameters (``trees`` overrides)."""
    admission = cases[list(fields_known_at("admission"))]
    features = CaseFeatures("admission").fit(admission, history=cases)
    X = features.transform(admission, history=cases)
    order = np.argsort(cases["discharge_date"].to_numpy(), kind="stable")
    train, validation = order[: len(order) * 3 // 4], order[len(order) * 3 // 4 :]
    labels = cases[["total_cost"]].rename(columns={"total_cost": "cost"})
    params = {**load_config()["tasks"]["cost"]["lightgbm"], "verbose": -1}
    if trees is not None:
        params["n_estimators"] = trees
    estimator = CostModel(params).fit(
        X.iloc[train], labels.iloc[train], X.iloc[validation], labels.iloc[validation]
    )
    return features, estimator, params
