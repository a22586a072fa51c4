"""The training run: time split → features → tune → fit → evaluate beside the baseline → champion.

:func:`train` runs any task of :mod:`models.tasks` on a :class:`~pipelines.training.data.TrainingData`
the same way; what the run logs to MLflow is in :mod:`pipelines.training.mlflow_log`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from contract.settings import Settings
from models import plots, tracking
from models import table as table_mode
from models.baselines import GroupMeanBaseline
from models.comparisons import choose_depth, explain_ms, table_comparisons
from models.config import task_params
from models.errors import TrainingInputError
from models.pyfunc import CaseModel, signature
from models.split import TimeSplit
from models.task import Task
from models.tuning import tune_lightgbm
from pipelines.training.data import TrainingData
from pipelines.training.mlflow_log import log_manifest, log_run, pip_requirements

STEPS = ("split", "features", "tune", "fit", "evaluate", "log", "champion")
EXPERIMENT_PREFIX = "caselens-"


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
        log_run(task, data, params, split, rows, evaluation, baseline_evaluation, features, X["train"])
        if data.mode == "cases":
            log_manifest(settings)
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
            pip_requirements=pip_requirements(),
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
