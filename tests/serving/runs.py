"""A served world where the run-backed endpoints answer: an in-stay champion, a watch list, a surplus
forecast (with its loss risk) and a cost-driver run, in a data folder of its own.

The shared ``world`` stays without them (their 503s are tested); this one is built once per session
for the tests that attack those endpoints (``test_fuzz_runs.py``, ``test_hostile_runs.py``). Everything
is the smallest run that still writes every file the service reads: a tiny in-stay model (as
``test_instay_api.py`` trains it), 50 forecast draws over the world's 900 cases, the top 4 driver cells.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from casemix.payment import PaymentRules
from contract.settings import Settings, get_settings
from experiments.benchmarks.instay_serving import stay_body
from models.config import load_config
from models.tasks import get_task
from models.watch_list import WarningPolicy
from pipelines.drivers import run_drivers
from pipelines.forecast import price_history, run_surplus_forecast
from pipelines.instay import instay_data
from pipelines.store import write_cases, write_table
from pipelines.training.run import train
from pipelines.watch import champion, watch_day, write_watch
from serving.registry import mlflow_uris


def tiny_instay_config() -> dict:
    """The project's training config with a few small in-stay trees (the in-stay test worlds' models)."""
    config = copy.deepcopy(load_config())
    config["split"]["min_rows"] = 20
    params = config["tasks"]["instay"]
    for table in (params["lightgbm"], params["overrun"]["lightgbm"]):
        table.update(n_estimators=20, num_leaves=15, n_jobs=1)
    params["mondrian_min_group"] = 50
    return config


def store_and_watch(hospital: Any, settings: Settings) -> tuple[pd.Timestamp, pd.DataFrame]:
    """Store the demo hospital (abstracts, daily charges, in-stay records) in ``settings``' store, train
    the tiny in-stay champion on it and score the watch list of its last day: (that day, the list)."""
    write_cases(hospital.cases, settings.store_dir)
    write_table("charges", hospital.charges, settings.store_dir)
    write_table("inpatients", hospital.inpatients, settings.store_dir)
    task = get_task("instay")
    data = instay_data(task, hospital.cases, hospital.inpatients, hospital.charges, settings)
    with mlflow_uris(settings.mlflow_uri):  # the registry too: an earlier app pinned another one
        train(task, data, tiny_instay_config(), settings)
        day = hospital.cases["discharge_date"].max()
        policy = WarningPolicy.from_rules(PaymentRules.load(settings.payment_config))
        watched = watch_day(champion(settings.mlflow_uri), day, None, policy, settings.store_dir)
    return day, watched


@dataclass
class RunsWorld:
    settings: Settings
    mlflow_uri: str  # where the in-stay champion is: Settings reads MLFLOW_TRACKING_URI first, and
    # MLflow exports it, so tests point it here while they ask (``RunsWorld.pointed``)
    hospital: Any  # pipelines.demo.DemoHospital: the in-stay records and charges the stays come from
    day: pd.Timestamp  # the watch list's day
    watched: pd.DataFrame  # the watch list of ``day``, as ``caselens watch`` scored it

    def stay(self, row: int = 0) -> dict[str, Any]:
        """The JSON body of the stay at ``row`` of the watch list, cut at its day."""
        return stay_body(self.hospital, self.watched["case_id"].iloc[row], self.day)

    def pointed(self, patch: pytest.MonkeyPatch) -> None:
        """Point MLflow's environment at this world's store, as a service's environment would."""
        patch.setenv("MLFLOW_TRACKING_URI", self.mlflow_uri)


def build_runs_world(hospital: Any, world_cases: pd.DataFrame, root: Any) -> RunsWorld:
    """Store the demo hospital, train the in-stay champion, write a watch list, a forecast and a
    drivers run under ``root``; the environment is as before when it returns."""
    with pytest.MonkeyPatch.context() as patch:
        data_dir = root / "data"
        patch.setenv("CASELENS_DATA_DIR", str(data_dir))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        get_settings.cache_clear()  # whatever reads the settings follows the patched data folder
        settings = Settings(data_dir=data_dir)
        day, watched = store_and_watch(hospital, settings)
        write_watch(watched, day, None, data_dir / "reports")
        priced = price_history(world_cases)
        run_surplus_forecast(priced, 2, data_dir / "forecast", n_draws=50, origins=2, top=5)
        run_drivers(priced.cases, data_dir / "drivers", period="year", top=4, min_cases=2)
        uri = settings.mlflow_uri
    get_settings.cache_clear()
    return RunsWorld(settings, uri, hospital, day, watched)
