"""The surplus forecast's inputs on a Dask cluster: the store grouped and priced per partition.

The expensive, per-case part of ``caselens forecast surplus`` (reading every stay, grouping it,
pricing it) runs on the workers, as ``caselens group`` does (``pipelines.cluster_casemix``): weights
calibrated once on every partition's grouped cases, the readmission rule (再入院) after a shuffle by
patient, a point value closing a budget over the cases' own points refused. Only
``HISTORY_COLUMNS`` come back to this process: the columns the forecast, its re-pricing at future
base rates (the payment rules re-applied, cross-case rules included), the settlement and the loss
risk read. The code lists, the free text, the audit and settlement fields stay on the cluster. The
forecast itself (quarterly series per department × DRG) then runs here, on the same rows, in the
store's order, as in-process: the same tables to the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from casemix.engine import CasemixEngine
from casemix.grouper import OUTPUT_COLUMNS
from casemix.payment import PRICED_COLUMNS, PRICING_INPUT_COLUMNS, PaymentRules
from contract.settings import get_settings
from pipelines import cluster
from pipelines.cluster_casemix import check_distributable, group_partition, weights_for
from pipelines.forecast import PricedHistory, priced_history, with_surplus_columns

HISTORY_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(("case_id", *PRICING_INPUT_COLUMNS, *OUTPUT_COLUMNS, *PRICED_COLUMNS, "payment", "cost"))
)


def history_partition(
    cases: pd.DataFrame, tables: Path, rules: PaymentRules, weights: pd.DataFrame
) -> pd.DataFrame:
    """One partition grouped and priced, cut to ``HISTORY_COLUMNS``: what travels back to the client."""
    priced = with_surplus_columns(group_partition(cases, tables, rules, weights))
    return priced[[c for c in HISTORY_COLUMNS if c in priced.columns]]


def price_history_on_cluster(
    client: Any,
    rules: PaymentRules,
    weights: pd.DataFrame | Path | None = None,
    *,
    store_dir: Path | None = None,
) -> PricedHistory:
    """``pipelines.forecast.price_history`` of the whole store, grouped and priced on the cluster
    ``client`` is connected to; the weights are the given table, the rules' table, or calibrated once
    on every partition."""
    check_distributable(rules)
    tables = Path(get_settings().casemix_tables).resolve()
    engine = CasemixEngine.from_settings(rules=rules, weights=weights, tables=tables)
    cases, sample = cluster.read_store(store_dir), cluster.store_sample(store_dir)
    if rules.readmission is not None:
        cases = cluster.by_patient(cases)
    given = weights is not None or engine.rw_table is not None
    table = engine.weights() if given else weights_for(cases, sample, tables, rules, False)
    priced = cluster.map_partitions(cases, sample, history_partition, tables, rules, table).compute()
    return priced_history(cluster.in_store_order(priced), engine, table)
