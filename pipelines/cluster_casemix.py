"""Grouping and pricing on a Dask cluster: the grouper and ``price_cases`` per partition of the store.

Grouping reads one case at a time, so any partition gives the in-process rows. Pricing has three
things that look past one case, each handled before the per-partition call:

- weights estimated from the cases (no insurer RW table): one pass groups every partition and brings
  back the few columns the calibration reads (DRG, ADRG, status, stay, costs), the weights are
  calibrated once in this process and sent to every partition;
- the readmission rule (再入院) links a patient's stays: the cases are shuffled by patient first;
- a point value closing a budget over the cases' own points (点数法 without ``total_points``) needs
  every case's points before any is priced: refused here, with the way round (give the year's
  ``yuan`` or the region's ``total_points``, or run in-process).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from casemix.engine import CasemixEngine
from casemix.indicators import Period, add_sums, indicator_sums, indicators_from_sums
from casemix.payment import PaymentRules
from casemix.rw_table import read_weights
from casemix.tables import load_tables
from contract.errors import ConfigError
from contract.settings import get_settings
from pipelines import cluster

CALIBRATION_COLUMNS = ("status", "drg", "adrg", "los_days", "total_cost")
ORDER_COLUMNS = ("case_id", "admission_date")  # what puts rows back in the store's order


@dataclass(frozen=True)
class GroupedOnCluster:
    """What a cluster run wrote: cases per status, payment totals (priced runs) and the partitions."""

    output: Path
    status_counts: pd.Series
    drg_payment: float | None
    margin: float | None
    weights_source: str | None
    partitions: int


def group_partition(
    cases: pd.DataFrame,
    tables: Path,
    rules: PaymentRules | None,
    weights: pd.DataFrame | None,
    translate_codes: bool = False,
) -> pd.DataFrame:
    """One partition grouped (and priced, with ``rules``): the in-process ``caselens group`` rows."""
    # The engine's grouper is built once per worker process and table set (its lookups cost more than
    # a partition); a partition is grouped once, so the memo is off.
    engine = CasemixEngine(load_tables(tables), rules, weights, remember=False)
    result = engine.grouped(cases, translate_codes=translate_codes)
    if rules is None:
        return result
    return engine.price_labelled(result, weights)


def group_store(
    client: Any,
    output: Path,
    *,
    store_dir: Path | None = None,
    tables: Path | None = None,
    rules: PaymentRules | None = None,
    weights_path: Path | None = None,
    translate_codes: bool = False,
) -> GroupedOnCluster:
    """Group (and price) the whole store on the cluster ``client`` is connected to; write a folder."""
    tables = Path(tables or get_settings().casemix_tables).resolve()
    cases, sample = cluster.read_store(store_dir), cluster.store_sample(store_dir)
    table = None
    if rules is not None:
        check_distributable(rules)
        if rules.readmission is not None:
            cases = cluster.by_patient(cases)
        table = (
            read_weights(weights_path)
            if weights_path is not None
            else weights_for(cases, sample, tables, rules, translate_codes)
        )
    result = cluster.map_partitions(cases, sample, group_partition, tables, rules, table, translate_codes)
    cluster.write_folder(result, output)
    return _summary(output, rules is not None, cases.npartitions)


def report_store(
    client: Any,
    rules: PaymentRules,
    by: Sequence[str],
    period: Period | None,
    *,
    store_dir: Path | None = None,
    tables: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The casemix indicators of the whole store and the weights priced with: every partition is
    grouped, priced and summed on the cluster; only the per-group sums come back."""
    tables = Path(tables or get_settings().casemix_tables).resolve()
    check_distributable(rules)
    cases, sample = cluster.read_store(store_dir), cluster.store_sample(store_dir)
    if rules.readmission is not None:
        cases = cluster.by_patient(cases)
    table = weights_for(cases, sample, tables, rules, False)
    priced = cluster.map_partitions(cases, sample, group_partition, tables, rules, table)
    parts = [dask.delayed(indicator_sums)(part, by, period) for part in priced.to_delayed()]
    return indicators_from_sums(add_sums(dask.compute(*parts))), table


def check_distributable(rules: PaymentRules) -> None:
    """Refuse rules whose pricing needs every case at once (a point value closing a budget)."""
    closing = [p.year for p in rules.point_values if p.yuan is None and p.total_points is None]
    if rules.method == "point" and closing:
        raise ConfigError(
            f"payment rules {rules.name!r}: the point value of {', '.join(map(str, closing))} closes the "
            "budget over the priced cases' own points, which needs every case at once; give that year's "
            "yuan or the region's total_points, or price without --scheduler"
        )


def weights_for(
    cases: Any, sample: pd.DataFrame, tables: Path, rules: PaymentRules, translate_codes: bool
) -> pd.DataFrame:
    """The insurer's table the rules name, else weights calibrated on every grouped case (the columns
    the calibration reads only are brought back to this process), in the store's order: the means
    then add up in the in-process order, to the last bit."""
    engine = CasemixEngine(load_tables(tables), rules)
    if engine.rw_table is not None:  # the table is read; the cases are not looked at
        return engine.weights()
    grouped = cluster.map_partitions(cases, sample, group_partition, tables, None, None, translate_codes)
    wanted = [
        *ORDER_COLUMNS,
        *CALIBRATION_COLUMNS,
        *(c for c in rules.outside_drg.columns if c in grouped.columns),
    ]
    return engine.weights(cluster.in_store_order(grouped[wanted].compute()).drop(columns=list(ORDER_COLUMNS)))


def _summary(output: Path, priced: bool, partitions: int) -> GroupedOnCluster:
    """Counts and totals read back from the written folder, column by column (never a whole row)."""
    columns = ["status", *(["drg_payment", "margin", "weights_source"] if priced else [])]
    table = pq.read_table(output, columns=columns)
    counts = table["status"].value_counts().to_pylist()
    status = pd.Series({c["values"]: c["counts"] for c in counts}, dtype="int64")
    payment = margin = source = None
    if priced:
        payment = float(pc.sum(table["drg_payment"]).as_py() or 0.0)
        margin = float(pc.sum(table["margin"]).as_py() or 0.0)
        source = table["weights_source"][0].as_py() if table.num_rows else ""
    return GroupedOnCluster(output, status, payment, margin, source, partitions)
