"""Training orchestration: data → time split → fit → evaluate beside the baseline → MLflow → champion.

``case_data`` (canonical cases) and ``table_data`` (a hospital's prepared feature table) turn input into
a :class:`TrainingData`; :func:`train` runs any task of :mod:`models.tasks` on it the same way.
Everything a run decides is logged: parameters, metrics of model and baseline, data fingerprint,
features with their stage, plots, the registered model and why the champion alias did or did not move.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from contract.fields import fields_known_at
from contract.settings import Settings
from models import plots, tracking
from models import table as table_mode
from models.baselines import GroupMeanBaseline
from models.comparisons import choose_depth, explain_ms, table_comparisons
from models.config import task_params
from models.errors import TrainingInputError
from models.pyfunc import CaseModel, signature
from models.split import TimeSplit
from models.table import TableFeatures
from models.task import Evaluation, Task
from models.tuning import tune_lightgbm

STEPS = ("split", "features", "tune", "fit", "evaluate", "log", "champion")
EXPERIMENT_PREFIX = "caselens-"
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


@dataclass
class TrainResult:
    task: str
    run_id: str
    model_version: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    promoted: bool
    reason: str
    split: dict[str, str]
    rows: dict[str, int]
    seconds: dict[str, float]
    comparisons: dict[str, dict[str, float]] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)


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


def train(
    task: Task,
    data: TrainingData,
    config: dict[str, Any],
    settings: Settings,
    tune_seconds: float = 0.0,
    on_step: Callable[[str], None] = lambda step: None,
) -> TrainResult:
    """Split by time, fit, evaluate beside the baseline, log to MLflow and maybe move the champion."""
    experiment = tracking.use_tracking(
        settings.mlflow_uri, settings.mlflow_artifacts, EXPERIMENT_PREFIX + task.name
    )
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def done(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 2)
        clock = now
        on_step(step)

    splitter = TimeSplit(**config.get("split", {}))
    _check_labels(task, data.labels)
    parts = splitter.assign(data.periods)
    inputs, labels = _by_part(data.inputs, parts), _by_part(data.labels, parts)
    context = {part: task.context(inputs[part], labels[part]) for part in ("train", "test")}
    if data.evaluation_only is not None:
        context["test"] = context["test"].join(data.evaluation_only)
    _check_train_labels(task, labels["train"])
    done("split")

    params = task_params(config, task.name)
    context_val = task.context(inputs["validation"], labels["validation"])

    def fitted_score(trial_params: dict[str, Any], X: dict[str, pd.DataFrame]) -> tuple[float, Any]:
        fitted = task.estimator(trial_params).fit(
            X["train"], labels["train"], X["validation"], labels["validation"]
        )
        found = task.evaluate(
            labels["validation"], fitted.predict(X["validation"]).reset_index(drop=True), context_val
        )
        return found.metrics[task.primary_metric], fitted

    table_choices: dict[str, Any] = {}
    depth = params.get("table_depth")
    params = {k: v for k, v in params.items() if k != "table_depth"}
    if data.mode == "table":
        params = table_mode.table_params(params, config)
        features, X, table_choices["encoding"] = table_mode.choose_strategy(
            data.features,
            inputs,
            labels["train"][task.label_column],
            data.history,
            lambda X: fitted_score(params, X)[0],
            task.greater_is_better,
        )
        if depth:

            def shaped(trial: dict[str, Any]) -> tuple[float, float]:
                value, fitted = fitted_score(trial, X)
                return value, explain_ms(fitted.explained, X["validation"])

            params, table_choices["depth"] = choose_depth(
                params, depth["candidates"], depth["explain_budget_ms"], shaped, task.greater_is_better
            )
    else:
        features = data.features.fit(inputs["train"])
        X = {part: _transform(features, frame, data.history) for part, frame in inputs.items()}
    done("features")

    with mlflow.start_run(experiment_id=experiment, run_name=f"{task.name}-{data.mode}") as run:
        if tune_seconds > 0:

            def score(trial_params: dict[str, Any]) -> float:
                return fitted_score(trial_params, X)[0]

            tuning = config.get("tuning", {})
            params, study = tune_lightgbm(
                task, params, score, tuning.get("space", {}), tune_seconds, tuning.get("seed", 0)
            )
            mlflow.set_tag("tuning.trials", str(len(study.trials)))
        done("tune")

        estimator = task.estimator(params).fit(
            X["train"], labels["train"], X["validation"], labels["validation"]
        )
        model = CaseModel(features, estimator, task.output, inputs["train"].dtypes.to_dict())
        # An estimator that picks among candidates (readmission) logs the validation figures it chose by.
        chosen_by = getattr(estimator, "validation_metrics_", {})
        mlflow.log_metrics({f"validation_{k}": v for k, v in chosen_by.items() if pd.notna(v)})
        if hasattr(estimator, "served_"):
            mlflow.set_tag("model.served", estimator.served_)
        done("fit")

        predictions = model.predict_frame(inputs["test"], data.history)  # as served and re-scored
        baseline = GroupMeanBaseline(task.baseline_levels).fit(
            context["train"], task.baseline_targets(labels["train"])
        )
        evaluation = task.evaluate(labels["test"], predictions, context["test"])
        baseline_evaluation = task.evaluate(
            labels["test"], baseline.predict(context["test"]).reset_index(drop=True), context["test"]
        )
        comparisons = {}
        if data.mode == "table":
            comparisons = table_comparisons(
                task,
                inputs["train"][features.columns_],
                labels["train"],
                inputs["test"][features.columns_],
                labels["test"],
                context["test"],
            )
        done("evaluate")

        split = splitter.describe(data.periods, parts)
        rows = {part: len(frame) for part, frame in inputs.items()}
        _log_run(task, data, params, split, rows, evaluation, baseline_evaluation, features, X["train"])
        if data.mode == "cases":
            _log_manifest(settings)
        for name, found in comparisons.items():
            mlflow.log_metrics({f"{name}_test_{k}": v for k, v in found.metrics.items() if pd.notna(v)})
        if table_choices:
            table_mode.log_choices(table_choices)
        figures = task.plots(estimator, X["test"], labels["test"], predictions)
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}")
        plots.close(figures)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=signature(inputs["test"].head(100), predictions.head(100), _optional_inputs(features)),
            input_example=inputs["test"].head(5),
            registered_model_name=task.model_name,
            pip_requirements=_requirements(),
        )
        version = str(info.registered_model_version)
        done("log")

        def score(uri: str | None, rows: np.ndarray) -> float:
            """Primary metric on the chosen test rows, of this run's model (None) or a registered one."""
            found = (
                predictions
                if uri is None
                else _predict(mlflow.pyfunc.load_model(uri), inputs["test"], data.history)
            )
            chosen = found.reset_index(drop=True)[rows].reset_index(drop=True)
            metrics = task.evaluate(labels["test"][rows], chosen, context["test"][rows]).metrics
            return metrics[task.primary_metric]

        test_periods = splitter.periods(data.periods)[(parts == "test").to_numpy()]
        decision = tracking.decide_champion(
            task.model_name, task.primary_metric, task.better, test_periods, score, splitter.min_rows
        )
        if decision.promoted:
            tracking.set_champion(task.model_name, version)
        mlflow.set_tags(
            {"champion.promoted": str(decision.promoted).lower(), "champion.reason": decision.reason}
        )
        mlflow.log_text(decision.reason + "\n", "champion.txt")
        mlflow.MlflowClient().set_model_version_tag(
            task.model_name, version, "champion.reason", decision.reason
        )
        done("champion")
        mlflow.log_dict(seconds, "timings.json")

    return TrainResult(
        task=task.name,
        run_id=run.info.run_id,
        model_version=version,
        metrics=evaluation.metrics,
        baseline_metrics=baseline_evaluation.metrics,
        promoted=decision.promoted,
        reason=decision.reason,
        split=split,
        rows=rows,
        seconds=seconds,
        comparisons={name: found.metrics for name, found in comparisons.items()},
        choices=table_choices,
    )


def _optional_inputs(features: Any) -> tuple[str, ...]:
    """Inputs a request may leave out: a table's label column, read only as earlier rows' outcomes."""
    label = getattr(features, "label", None)
    return (label,) if label else ()


def _transform(features: Any, inputs: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
    return features.transform(inputs) if history is None else features.transform(inputs, history=history)


def _predict(
    model: mlflow.pyfunc.PyFuncModel, inputs: pd.DataFrame, history: pd.DataFrame | None
) -> pd.DataFrame:
    """A registered model's predictions, with history when it is a CaseModel (as serving calls it)."""
    python_model = model.unwrap_python_model()
    if isinstance(python_model, CaseModel):
        return python_model.predict_frame(inputs, history)
    return model.predict(inputs)


def _by_part(frame: pd.DataFrame, parts: pd.Series) -> dict[str, pd.DataFrame]:
    return {part: frame[(parts == part).to_numpy()] for part in ("train", "validation", "test")}


def _check_labels(task: Task, labels: pd.DataFrame) -> None:
    if task.label_column not in labels.columns:
        raise TrainingInputError(f"label column {task.label_column!r} is missing")
    bad = labels[task.label_column].isna()
    if bad.any():
        raise TrainingInputError(
            f"row {labels.index[bad.to_numpy()][0]}: label {task.label_column!r} is missing "
            f"({int(bad.sum())} rows)"
        )


def _check_train_labels(task: Task, labels: pd.DataFrame) -> None:
    if labels[task.label_column].nunique() < 2:
        raise TrainingInputError(
            f"label {task.label_column!r} has a single value in the training period: nothing to learn"
        )


def _log_run(
    task: Task,
    data: TrainingData,
    params: dict[str, Any],
    split: dict[str, str],
    rows: dict[str, int],
    evaluation: Evaluation,
    baseline: Evaluation,
    features: Any,
    X_train: pd.DataFrame,
) -> None:
    mlflow.log_params(
        {
            "task": task.name,
            "stage": task.stage,
            "mode": data.mode,
            **split,
            **{f"rows_{k}": v for k, v in rows.items()},
            **_flatten(params),
        }
    )
    mlflow.log_metrics({f"test_{k}": v for k, v in evaluation.metrics.items() if pd.notna(v)})
    mlflow.log_metrics({f"baseline_test_{k}": v for k, v in baseline.metrics.items() if pd.notna(v)})
    mlflow.set_tags({"task": task.name, "data.fingerprint": tracking.frame_fingerprint(X_train)})
    catalog = _catalog(features, X_train, task)
    mlflow.log_text(catalog.to_csv(index=False), "features.csv")
    for name, table in {
        **evaluation.tables,
        **{f"baseline_{k}": v for k, v in baseline.tables.items()},
    }.items():
        mlflow.log_text(table.to_csv(), f"evaluation/{name}.csv")
    mlflow.log_text(
        json.dumps({"model": evaluation.metrics, "baseline": baseline.metrics}, indent=2), "metrics.json"
    )


def _log_manifest(settings: Settings) -> None:
    """The ingest manifest of the store the cases came from, when there is one."""
    from pipelines.store import manifest_path

    path = manifest_path(settings.store_dir)
    if path.is_file():
        mlflow.log_artifact(str(path), "data")
        mlflow.set_tag("data.manifest_sha256", tracking.file_fingerprint(path))


def _catalog(features: Any, X: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Feature list with stage: the transformer's own catalog when it has one, the columns otherwise."""
    catalog = getattr(features, "catalog", None)
    frame = pd.DataFrame(catalog) if catalog is not None else pd.DataFrame({"feature": list(X.columns)})
    if "stage" not in frame.columns:
        frame["stage"] = task.stage
    return frame


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _requirements() -> list[str]:
    """Pinned libraries the pyfunc needs (given, so MLflow does not re-import the model to guess them)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "pandas", "numpy", "scikit-learn", "lightgbm")]
