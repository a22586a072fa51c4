"""Training data: canonical cases from the store, or a hospital's prepared table.

Both become one :class:`TrainingData`: whatever the source, a task then trains on it the same
way (:mod:`pipelines.training.run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from contract.fields import fields_known_at
from contract.settings import Settings
from models.errors import TrainingInputError
from models.table import TableFeatures
from models.task import Task

ORACLE_COLUMNS = ("expected_cost", "true_readmission_prob", "true_coding_error_prob")


@dataclass
class TrainingData:
    """What a task trains on: model inputs, labels and the period each row belongs to (same index)."""

    inputs: pd.DataFrame
    labels: pd.DataFrame
    periods: pd.Series
    features: Any
    mode: str
    history: pd.DataFrame | None = None
    evaluation_only: pd.DataFrame | None = None


def case_data(
    task: Task, cases: pd.DataFrame, settings: Settings, oracle: pd.DataFrame | None = None
) -> TrainingData:
    """Training data from canonical cases: inputs are the fields known at the task's stage.

    The full cases are the history every part's features may look back on (point in time: a case
    only sees stays discharged before it). ``oracle`` (the demo hospital's truth, by ``case_id``) is
    kept for evaluation only: it never reaches the features or the estimator. A task with
    ``partial_labels`` trains and is judged on its labelled cases only; the others stay history.
    """
    if cases.empty:
        raise TrainingInputError("no cases to train on: the case store is empty")
    known = [c for c in fields_known_at(task.stage) if c in cases.columns]
    labels = task.labels(cases, settings)
    labelled = labels[task.label_column].notna() | (not task.partial_labels)
    if not labelled.any():
        raise TrainingInputError(f"no case has a {task.label_column!r} label")
    evaluation_only = None
    if oracle is not None:
        columns = [c for c in ORACLE_COLUMNS if c in oracle.columns]
        evaluation_only = cases[["case_id"]].join(oracle.set_index("case_id")[columns], on="case_id")[columns]
        evaluation_only = evaluation_only[labelled]
    return TrainingData(
        inputs=cases.loc[labelled, known],
        labels=labels[labelled],
        periods=cases.loc[labelled, "discharge_date"],
        features=task.features(),
        mode="cases",
        history=cases,
        evaluation_only=evaluation_only,
    )


def read_table(path: Path) -> pd.DataFrame:
    """A prepared feature table from Parquet, CSV or Excel."""
    path = Path(path)
    if not path.is_file():
        raise TrainingInputError(f"table {path} does not exist")
    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".xlsx": pd.read_excel}
    if path.suffix.lower() not in readers:
        raise TrainingInputError(f"table {path}: use .parquet, .csv or .xlsx, not {path.suffix!r}")
    return readers[path.suffix.lower()](path)


def table_data(
    task: Task,
    table: pd.DataFrame,
    label: str,
    group: str | None = None,
    entity: str | None = None,
    order: str | None = None,
    label_horizon_days: float | None = None,
) -> TrainingData:
    """Training data from a prepared table: every column but ``label`` and ``group`` is a feature.

    ``group`` is the period column the split orders by (dates are cut into the split's periods);
    without it the rows are taken in file order and cut into ten equal consecutive blocks.
    ``entity`` and ``order`` (together) add each row's history from the earlier rows of its entity;
    they stay inputs but are not features, and so does the label when ``label_horizon_days`` lets
    earlier rows' outcomes be history.
    """
    if (entity is None) != (order is None):
        raise TrainingInputError("--entity and --order go together")
    if label_horizon_days is not None and entity is None:
        raise TrainingInputError("--label-horizon-days needs --entity and --order")
    for name, role in ((label, "label"), (group, "group"), (entity, "entity"), (order, "order")):
        if name is not None and name not in table.columns:
            raise TrainingInputError(
                f"{role} column {name!r} is not in the table; columns: {', '.join(map(str, table.columns))}"
            )
    if table.empty:
        raise TrainingInputError("the table has no rows")
    y = pd.to_numeric(table[label], errors="coerce") if table[label].dtype != bool else table[label]
    bad = y.isna()
    if bad.any():
        raise TrainingInputError(
            f"row {table.index[bad.to_numpy()][0]}: label {label!r} is missing or not a number "
            f"({int(bad.sum())} rows)"
        )
    periods = (
        _dates_if_text(table[group])
        if group
        else pd.Series(pd.qcut(range(len(table)), 10, labels=False), index=table.index)
    )
    keep = {c for c in (entity, order) if c} | ({label} if label_horizon_days is not None else set())
    inputs = table.drop(columns=[c for c in (label, group) if c and c not in keep])
    if label in inputs.columns:  # earlier rows' outcomes; a row to score has none (NaN)
        inputs[label] = y.astype("float64")
    features = TableFeatures(
        entity=entity,
        order=order,
        label=label if label_horizon_days is not None else None,
        label_horizon_days=label_horizon_days,
    )
    return TrainingData(
        inputs=inputs,
        labels=task.labels_from_table(y.rename(label)),
        periods=periods.rename(group or "row_block"),
        features=features,
        mode="table",
        history=inputs if entity is not None else None,
    )


def _dates_if_text(values: pd.Series) -> pd.Series:
    """A text period column that reads entirely as dates (a CSV's "2024-01-05") becomes dates, so the
    split cuts it into periods instead of taking each day as its own period."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return values
    dates = pd.to_datetime(values, errors="coerce", format="ISO8601")
    return dates if dates.notna().sum() == values.notna().sum() else values
