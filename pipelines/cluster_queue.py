"""The coding-review queue on a Dask cluster: a period's unaudited cases scored per patient partition.

The coding model reads two kinds of history besides the case itself (``models.coding.features``):

- the patient's own earlier stays (the discharge-stage case features): the stays are shuffled by
  patient, so each partition holds its patients whole, as ``caselens score`` does;
- the error history of the case's coder and department, read from *other* patients' audited stays.
  As for ``caselens score``, each partition counts its audits per coder (and per department) and
  audit day (``pipelines.cluster_score.store_audits``); the counts, entities × days whatever the
  number of stays, are added up here and sent to every worker (``AuditedHistory``), and the history
  features are computed from them: the same integers as from the audited stays themselves.

Only stays discharged by the period's end are shuffled (no later stay is history of a case discharged
in the period); the audit counts read four columns of every stay. Each partition scores its cases of
the period; only those rows (the queue's) come back, put in the store's order, and are ranked here as
in-process (``models.review_queue.rank_queue``): the same queue, to the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import pandas as pd

from models.coding.features import AuditedHistory
from models.review_queue import (
    QueuePolicy,
    in_queue,
    no_cases,
    queue_period,
    rank_queue,
    score_cases,
)
from pipelines import cluster
from pipelines.cluster_score import Audits, store_audits


def queue_partition(
    stays: pd.DataFrame,
    model: Any,
    span: pd.Period,
    department: str | None,
    audits: Audits,
    rules: Any = None,
) -> pd.DataFrame | None:
    """The scored cases of ``span`` in one partition of whole patients (None: it has none), with their
    ``admission_date`` to put them back in the store's order."""
    stays = stays.reset_index(drop=True)
    keep = in_queue(stays, span, department)
    if not keep.any():
        return None
    chosen = stays[keep]
    scored = score_cases(chosen, model, history=AuditedHistory(stays, audits), rules=rules)
    return scored.assign(admission_date=chosen["admission_date"].to_numpy())


def coding_queue_on_cluster(
    client: Any,
    model: Any,
    period: str,
    department: str | None = None,
    budget: int | None = None,
    policy: QueuePolicy = QueuePolicy(),
    rules: Any = None,
    *,
    store_dir: Path | None = None,
) -> pd.DataFrame:
    """``models.review_queue.coding_queue`` of the store, scored on the cluster ``client`` is connected
    to; only the period's scored cases come back to this process."""
    span = queue_period(period)
    until = span.end_time
    audits = store_audits(store_dir, until)  # dated by the period's end: no later audit is history

    stays = cluster.read_store(store_dir)
    stays = cluster.by_patient(stays[stays["discharge_date"] <= until])
    shared = client.scatter([model, audits], broadcast=True)  # once per worker, not once per task
    parts = dask.compute(
        *[
            dask.delayed(queue_partition)(part, shared[0], span, department, shared[1], rules)
            for part in stays.to_delayed()
        ]
    )
    scored = [part for part in parts if part is not None]
    if not scored:
        raise no_cases(period, department)
    ordered = cluster.in_store_order(pd.concat(scored, ignore_index=True))
    return rank_queue(ordered.drop(columns="admission_date"), policy, budget)
