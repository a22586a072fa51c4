"""The tuning space holds LightGBM's categorical parameters, and its first trial is the config itself."""

from __future__ import annotations

import mlflow

from models.config import load_config
from models.tasks import get_task
from models.tuning import LIGHTGBM_DEFAULTS, tune_lightgbm

CATEGORICAL = {"cat_smooth", "min_data_per_group", "cat_l2", "max_cat_threshold"}


def test_space_includes_the_categorical_parameters_and_starts_from_the_config(tracking) -> None:
    config = load_config()
    space = config["tuning"]["space"]
    assert set(space) >= CATEGORICAL
    params = config["tasks"]["readmission"]
    seen: list[dict] = []

    def score(trial: dict) -> float:
        seen.append(trial["lightgbm"])
        return float(len(seen))

    with mlflow.start_run():
        best, study = tune_lightgbm(
            get_task("readmission"), params, score, space, seconds=120, seed=0, max_trials=3
        )
    assert len(study.trials) == 3  # a count, not a time budget: the same on a loaded machine
    first = seen[0]
    for name in CATEGORICAL:  # the readmission table leaves them out: LightGBM's own values are tried first
        assert first[name] == LIGHTGBM_DEFAULTS[name]
    assert first["num_leaves"] == params["lightgbm"]["num_leaves"]
    assert best["lightgbm"] == first  # Brier is minimised and the first trial scored lowest
