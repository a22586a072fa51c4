"""MLflow plumbing: where runs go, what identifies the data, and when the champion alias moves."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from contract.errors import StateError
from contract.settings import mask_credentials

CHAMPION = "champion"


def use_tracking(uri: str, artifacts: Path, experiment: str) -> str:
    """Point MLflow at ``uri`` and make ``experiment`` (created if needed) the active one; returns its id.

    A local SQLite store gets its artifacts under ``artifacts`` (otherwise MLflow would write to
    ./mlruns of the working directory); any other tracking server keeps its own artifact store. MLflow
    prints each run's link to stdout straight from the tracking URI, password or token included: a URI
    with credentials gets no link. A store that does not answer is a ``StateError`` with the
    credentials masked, not MLflow's traceback.
    """
    if mask_credentials(uri) != uri:
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    mlflow.set_tracking_uri(uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
    except MlflowException as error:  # its message holds the request URL, credentials and all
        shown = mask_credentials(uri)
        raise StateError(
            f"the MLflow tracking store {shown} did not answer: {mask_credentials(str(error))}"
        ) from None
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
    compared_on: str | None = None  # the periods both models were scored on


def last_seen_period(run_id: str) -> str | None:
    """The last period a run's model trained or was calibrated on (early stopping, calibration and
    conformal intervals use the validation period, which follows training), from its split parameters."""
    params = MlflowClient().get_run(run_id).data.params
    found = params.get("validation_periods") or params.get("train_periods")
    return found.split("..")[-1] if found else None


def after(periods: pd.Series, boundary: str) -> pd.Series:
    """Which ``periods`` lie wholly after ``boundary``, a period as a run logs it ("2025Q3", "7", "B").

    Calendar periods compare by time, so a champion split by month and a challenger split by quarter
    still compare right; a table's own period values compare as numbers when they are numbers, else
    as text (the order the split sorted them in).
    """
    if isinstance(periods.dtype, pd.PeriodDtype):
        return periods.dt.start_time > pd.Period(boundary).end_time
    if pd.api.types.is_numeric_dtype(periods):
        return periods > float(boundary)
    return periods.astype(str) > boundary


def decide_champion(
    model_name: str,
    metric: str,
    better: Callable[[float, float], bool],
    test_periods: pd.Series,
    score: Callable[[str | None, np.ndarray], float],
    min_rows: int = 1,
) -> ChampionDecision:
    """Compare the new model with the current champion on test periods neither of them has seen.

    The new model never saw its test period (the time split). The champion may have: a version
    trained on a longer extract trained or was calibrated on it. So both are scored, with
    ``score(model_uri or None for the new model, rows)``, only on the test rows after the champion's
    last training or validation period; with fewer than ``min_rows`` of those there is no fair
    comparison and the champion stays. The new model wins only when strictly better there, and
    when there is no champion yet.
    """
    client = MlflowClient()
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return ChampionDecision(True, f"no {CHAMPION} yet; this version becomes {CHAMPION}")
    name = f"{CHAMPION} v{current.version}"
    seen, rows, note = None, np.ones(len(test_periods), dtype=bool), ""
    try:
        seen = last_seen_period(current.run_id) if current.run_id else None
        if seen is not None:
            rows = after(test_periods, seen).to_numpy()
    except (MlflowException, ValueError, TypeError):  # its run is gone, or its periods are of another kind
        seen = None
    if seen is None:
        note = f" (the periods {name} saw are unknown: compared on the whole test period)"
    if rows.sum() < max(min_rows, 1):
        return ChampionDecision(
            False,
            f"{name} trained or was calibrated on periods up to {seen}, which covers this run's test "
            f"periods ({test_periods.min()}..{test_periods.max()}): no period neither model has seen, "
            f"so {CHAMPION} stays",
        )
    compared_on = f"{test_periods[rows].min()}..{test_periods[rows].max()}"
    try:
        old = score(f"models:/{model_name}@{CHAMPION}", rows)
    except Exception as error:  # an old champion that cannot read this input cannot be compared
        return ChampionDecision(
            True, f"{name} cannot score this test set ({type(error).__name__}: {error})", None, compared_on
        )
    new = score(None, rows)
    verdict = "beats" if better(new, old) else "does not beat"
    return ChampionDecision(
        better(new, old),
        f"{metric} {new:.4g} {verdict} {name}'s {old:.4g} on {compared_on}{note}",
        old,
        compared_on,
    )


def set_champion(model_name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(model_name, CHAMPION, version)
