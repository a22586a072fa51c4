"""The in-stay task's training data: past stays cut at a day each, labelled with how they ended.

Every discharged stay with daily records that spent a night in hospital is cut once, at a day drawn
uniformly from its days before discharge (``features.instay.sample_cuts``; one cut per stay keeps the
stays equally weighted and the rows independent). Its inputs are the cut frame (``cut_stays``: only
what was recorded by the end of that day), its labels its final abstract's outcome; it belongs to its
discharge period, so the time split tests on stays that ended after every training label was known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.settings import Settings
from features.instay import cut_stays, sample_cuts
from models.errors import TrainingInputError
from models.task import Task
from pipelines.training.data import TrainingData

SEED = 0


def instay_data(
    task: Task,
    cases: pd.DataFrame,
    records: pd.DataFrame,
    charges: pd.DataFrame,
    settings: Settings,
    seed: int = SEED,
) -> TrainingData:
    """Training data for ``task`` (stage ``in_stay``) from stored abstracts and daily tables."""
    first = records.groupby("case_id")["recorded_date"].min()
    cuts = sample_cuts(cases, np.random.default_rng(seed))
    known = cuts["as_of_date"].to_numpy() >= cuts["case_id"].map(first).to_numpy(dtype="datetime64[ns]")
    cuts = cuts[known & cuts["case_id"].isin(charges["case_id"]).to_numpy()]
    if cuts.empty:
        raise TrainingInputError(
            "no discharged stay has in-stay records and daily charges: ingest them with "
            "`caselens ingest FILE --kind inpatients` and `--kind charges`"
        )
    inputs = cut_stays(records, charges, cuts)
    labels = task.labels(cases.loc[cuts.index], settings)
    features = task.features()
    labels["pregroup_drg"] = _pregrouped(features, inputs, cases)
    return TrainingData(
        inputs=inputs,
        labels=labels,
        periods=cases.loc[cuts.index, "discharge_date"],
        features=features,
        mode="cases",
        history=cases,
    )


def _pregrouped(features: object, inputs: pd.DataFrame, cases: pd.DataFrame) -> pd.Series:
    """The DRG each cut groups to (for the baseline and the breakdowns, not as a label)."""
    from casemix.payment import PaymentRules
    from casemix.pregroup import Pregrouper
    from contract.settings import get_settings

    rules = getattr(features, "rules", None) or PaymentRules.load(get_settings().payment_config)
    return Pregrouper.for_rules(rules, cases).pregroup(inputs)["pregroup_drg"]
