"""Point-in-time case features on a Dask cluster, in two passes over the store.

1. Category levels: each partition counts the levels of the categorical features; the counts are
   added up in this process (a few thousand numbers) and the transformer is fitted from them, so it
   learns the levels ``fit_transform`` learns from the whole store.
2. Features: the cases are shuffled by patient, so every partition holds its patients' stays whole,
   and each partition is transformed on its own. History features only look at the patient's own
   earlier stays (``features.history``), so a partition gives the rows the whole store gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import pandas as pd

from contract.fields import Stage
from features.pipeline import CaseFeatures
from pipelines import cluster


@dataclass(frozen=True)
class FeaturesOnCluster:
    """The fitted transformer (levels of the whole store), where the rows went and how many."""

    features: CaseFeatures
    output: Path
    rows: int
    partitions: int


def fit_levels(cases: Any, features: CaseFeatures) -> CaseFeatures:
    """``features`` fitted on every partition of ``cases`` (a Dask frame) from summed level counts."""
    parts = [dask.delayed(features.category_counts)(part) for part in cases.to_delayed()]
    counted = dask.compute(*parts)
    names = counted[0].keys() if counted else ()
    return features.fit_counts(
        {name: pd.concat([c[name] for c in counted]).groupby(level=0).sum() for name in names}
    )


def feature_partition(cases: pd.DataFrame, features: CaseFeatures) -> pd.DataFrame:
    """One partition of whole patients: ``case_id`` then its features, as ``caselens features build``."""
    table = features.transform(cases)
    table.insert(0, "case_id", cases["case_id"].to_numpy())
    return table.reset_index(drop=True)


def build_features(
    client: Any,
    output: Path,
    stage: Stage,
    *,
    store_dir: Path | None = None,
    min_category_count: int = 20,
) -> FeaturesOnCluster:
    """Features of every stored case on the cluster ``client`` is connected to, written as a folder."""
    stored = cluster.read_store(store_dir)
    features = fit_levels(stored, CaseFeatures(stage, min_category_count=min_category_count))
    shuffled = cluster.by_patient(stored)
    table = cluster.map_partitions(shuffled, cluster.store_sample(store_dir), feature_partition, features)
    rows = cluster.write_folder(table, output)
    return FeaturesOnCluster(features, output, rows, shuffled.npartitions)
