"""Batch scoring of the stored cases with a registered model, in this process or on a Dask cluster.

Each case is scored as training scored its test cases: from the fields known at the task's stage,
with every stored stay as history (``CaseModel.predict_frame(inputs, history)``). Two kinds of history:

- the patient's own earlier stays (every case model's history features): on a cluster the cases are
  shuffled by patient, so each partition holds its patients whole and is scored on its own;
- for the coding model, also the error history of the case's coder and department, read from *other*
  patients' audited stays. Each partition counts its audits per coder (and per department) and audit
  day; the counts, entities × days whatever the number of stays, are added up in this process
  (:func:`store_audits`) and sent to every worker with the model, and each partition computes the
  history features from them (``models.coding.features.AuditedHistory``): the same integers as from
  the audited stays themselves. The coding queue (``pipelines.cluster_queue``) counts them the same way.

A prepared table's model (``TableFeatures``) does not score the store's cases: refused on the cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from contract.errors import ConfigError
from features.pipeline import CaseFeatures
from models.coding.features import AUDITED_BY, AuditedHistory, CodingFeatures, audit_counts, sum_audit_counts
from pipelines import cluster
from pipelines.store import read_cases

AUDIT_COLUMNS = ("audit_date", "audit_error", *AUDITED_BY)
Audits = dict[str, pd.DataFrame]  # audit counts per day by entity (``coder_id``, ``department``)


def count_audits(stays: pd.DataFrame, until: pd.Timestamp | None = None) -> Audits:
    """One partition's audits (dated by ``until`` if given) counted per entity and day."""
    dated = stays if until is None else stays[stays["audit_date"] <= until]
    return {entity: audit_counts(dated, entity) for entity in AUDITED_BY}


def store_audits(store_dir: Path | None = None, until: pd.Timestamp | None = None) -> Audits:
    """Every stored audit (dated by ``until`` if given) counted per coder, department and day: counted
    per partition on the connected cluster (four columns read), added up here."""
    audited = cluster.read_store(store_dir, columns=AUDIT_COLUMNS)
    counted = dask.compute(*[dask.delayed(count_audits)(part, until) for part in audited.to_delayed()])
    return {entity: sum_audit_counts([c[entity] for c in counted], entity) for entity in AUDITED_BY}


def score_partition(cases: pd.DataFrame, model: Any, audits: Audits | None = None) -> pd.DataFrame:
    """``case_id`` and the model's prediction columns for every case, its patient's stays as history
    (and, given ``audits``, the coders' and departments' audits counted over every stay)."""
    cases = cases.reset_index(drop=True)
    inputs = cases[[c for c in model.dtypes if c in cases.columns]]
    history = cases if audits is None else AuditedHistory(cases, audits)
    predicted = model.predict_frame(inputs, history=history)
    predicted.insert(0, "case_id", cases["case_id"].to_numpy())
    return predicted


def score_store(model: Any, store_dir: Path | None = None) -> pd.DataFrame:
    """Every stored case scored in this process."""
    return score_partition(read_cases(store_dir), model)


def score_store_on_cluster(client: Any, model: Any, output: Path, store_dir: Path | None = None) -> int:
    """Every stored case scored per patient partition on the cluster ``client`` is connected to, written
    as a Parquet folder; the rows written."""
    features = getattr(model, "features", None)
    if not isinstance(features, CaseFeatures | CodingFeatures):
        raise ConfigError(
            f"a model with {type(features).__name__} does not score the store's cases per patient "
            "(a prepared table's entity history reads its other rows): score it without --scheduler"
        )
    audits = store_audits(store_dir) if isinstance(features, CodingFeatures) else None
    cases = cluster.by_patient(cluster.read_store(store_dir))
    meta = score_partition(cluster.store_sample(store_dir), model, audits).iloc[:0]
    shared = client.scatter([model, audits], broadcast=True)  # once per worker, not once per task
    parts = [dask.delayed(score_partition)(part, *shared) for part in cases.to_delayed()]
    with dask.config.set(cluster.DASK_CONFIG):
        scored = dd.from_delayed(parts, meta=meta)
    return cluster.write_folder(scored, output)
