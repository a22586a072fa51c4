"""What a training run writes to MLflow beside the model: parameters, metrics of model and baseline,
data fingerprint and ingest manifest, features with their stage, evaluation tables, pinned requirements.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import pandas as pd

from contract.settings import Settings
from models import tracking
from models.task import Evaluation, Task
from pipelines.training.data import TrainingData


def log_run(
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
    """Everything the run decided, so a registered model can be traced back to its data and choices."""
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


def log_manifest(settings: Settings) -> None:
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


def pip_requirements() -> list[str]:
    """Pinned libraries the pyfunc needs (given, so MLflow does not re-import the model to guess them)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "pandas", "numpy", "scikit-learn", "lightgbm")]
