"""Optional hyperparameter search within a time budget, each trial a nested MLflow run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlflow
import optuna

from contract.errors import ConfigError
from models.task import direction

# LightGBM's own values of parameters a task's table may leave out, so the first trial is the config.
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "cat_smooth": 10.0,
    "min_data_per_group": 100,
    "cat_l2": 10.0,
    "max_cat_threshold": 32,
    "num_leaves": 31,
    "learning_rate": 0.1,
    "min_child_samples": 20,
    "n_estimators": 100,
}


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One draw from the ``[tuning.space]`` tables of the config."""
    drawn: dict[str, Any] = {}
    for name, spec in space.items():
        log = bool(spec.get("log", False))
        if spec["type"] == "int":
            drawn[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=log)
        elif spec["type"] == "float":
            drawn[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=log)
        else:
            raise ConfigError(f"tuning.space.{name}: type must be 'int' or 'float', not {spec['type']!r}")
    return drawn


def tune_lightgbm(
    task: Any,
    params: dict[str, Any],
    score: Callable[[dict[str, Any]], float],
    space: dict[str, dict[str, Any]],
    seconds: float,
    seed: int = 0,
    max_trials: int | None = None,
) -> tuple[dict[str, Any], optuna.Study]:
    """Search the task's ``lightgbm`` table for ``seconds`` (or ``max_trials``, whichever ends first);
    ``score(params)`` fits and scores on validation.

    Returns the task params with the best ``lightgbm`` table; the configured values are the first
    trial, so tuning never ends worse on validation than the config.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction(task), sampler=optuna.samplers.TPESampler(seed=seed))
    configured = {**LIGHTGBM_DEFAULTS, **params["lightgbm"]}
    study.enqueue_trial({k: configured[k] for k in space if k in configured}, skip_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        trial_params = {**params, "lightgbm": {**params["lightgbm"], **suggest(trial, space)}}
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial_params["lightgbm"])
            value = score(trial_params)
            mlflow.log_metric(f"validation_{task.primary_metric}", value)
        return value

    study.optimize(objective, n_trials=max_trials, timeout=seconds, gc_after_trial=True)
    return {**params, "lightgbm": {**params["lightgbm"], **study.best_params}}, study
