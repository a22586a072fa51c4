"""MLflow plumbing: where runs go, what identifies the data, and when the champion alias moves."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION = "champion"


def use_tracking(uri: str, artifacts: Path, experiment: str) -> str:
    """Point MLflow at ``uri`` and make ``experiment`` (created if needed) the active one; returns its id.

    A local SQLite store gets its artifacts under ``artifacts`` (otherwise MLflow would write to
    ./mlruns of the working directory); any other tracking server keeps its own artifact store.
    """
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        location = (artifacts / experiment).as_uri() if uri.startswith("sqlite:") else None
        mlflow.create_experiment(experiment, artifact_location=location)
    return mlflow.set_experiment(experiment).experiment_id


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 over the row hashes, column names and dtypes of ``frame``: same data, same fingerprint."""
    digest = hashlib.sha256()
    digest.update("|".join(f"{c}:{t}" for c, t in frame.dtypes.astype(str).items()).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str | None:
    """SHA-256 of a file such as the ingest manifest, or None when it does not exist."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@dataclass(frozen=True)
class ChampionDecision:
    promoted: bool
    reason: str
    champion_score: float | None = None


def decide_champion(
    model_name: str,
    new_score: float,
    metric: str,
    better: Callable[[float, float], bool],
    score_champion: Callable[[str], float],
) -> ChampionDecision:
    """Compare the new model with the current champion on the same test period.

    ``score_champion(model_uri)`` re-scores the current champion on the new run's test set; the new
    model wins only when strictly better, and when there is no champion yet.
    """
    client = MlflowClient()
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return ChampionDecision(True, f"no {CHAMPION} yet; this version becomes {CHAMPION}")
    try:
        old = score_champion(f"models:/{model_name}@{CHAMPION}")
    except Exception as error:  # an old champion that cannot read this input cannot be compared
        return ChampionDecision(
            True,
            f"{CHAMPION} v{current.version} cannot score this test set ({type(error).__name__}: {error})",
        )
    if better(new_score, old):
        return ChampionDecision(
            True, f"{metric} {new_score:.4g} beats {CHAMPION} v{current.version}'s {old:.4g}", old
        )
    return ChampionDecision(
        False, f"{metric} {new_score:.4g} does not beat {CHAMPION} v{current.version}'s {old:.4g}", old
    )


def set_champion(model_name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(model_name, CHAMPION, version)
