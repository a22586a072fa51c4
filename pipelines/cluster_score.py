"""Batch scoring of the stored cases with a registered model, in this process or on a Dask cluster.

Each case is scored as training scored its test cases: from the fields known at the task's stage,
with every stored stay as history (``CaseModel.predict_frame(inputs, history)``). A case model's
history features read only the patient's own earlier stays, so on a cluster the cases are shuffled
by patient and every partition is scored on its own: the same numbers. Models whose features read
other patients' stays (the coding model's error history of a coder or department, a prepared table's
entity history) are scored in-process only; the cluster refuses them, saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from contract.errors import ConfigError
from features.pipeline import CaseFeatures
from pipelines import cluster
from pipelines.store import read_cases


def score_partition(cases: pd.DataFrame, model: Any) -> pd.DataFrame:
    """``case_id`` and the model's prediction columns for every case, its patient's stays as history."""
    inputs = cases[[c for c in model.dtypes if c in cases.columns]]
    predicted = model.predict_frame(inputs, history=cases)
    predicted.insert(0, "case_id", cases["case_id"].to_numpy())
    return predicted


def score_store(model: Any, store_dir: Path | None = None) -> pd.DataFrame:
    """Every stored case scored in this process."""
    return score_partition(read_cases(store_dir), model)


def score_store_on_cluster(model: Any, output: Path, store_dir: Path | None = None) -> int:
    """Every stored case scored per patient partition on the connected cluster; rows written."""
    if not isinstance(getattr(model, "features", None), CaseFeatures):
        raise ConfigError(
            f"a model with {type(getattr(model, 'features', model)).__name__} reads other patients' "
            "stays (coder, department or table entity history): score it without --scheduler"
        )
    cases = cluster.by_patient(cluster.read_store(store_dir))
    scored = cluster.map_partitions(cases, cluster.store_sample(store_dir), score_partition, model)
    return cluster.write_folder(scored, output)
