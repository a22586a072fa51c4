"""The watch list of a day from the store: the stays in hospital at its end, cut there and scored."""

from __future__ import annotations

import pandas as pd

from contract.errors import InputError, NotFound
from features.instay import cut_stays, in_hospital
from models.watch_list import WarningPolicy, watch_list
from pipelines.store import read_cases, read_table

MODEL_URI = "models:/caselens-instay@champion"


def champion(mlflow_uri: str) -> object:
    """The in-stay champion's Python model; a registry without one is a ``NotFound`` saying what to run."""
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    try:
        return mlflow.pyfunc.load_model(MODEL_URI).unwrap_python_model()
    except mlflow.exceptions.MlflowException:
        raise NotFound("no champion of caselens-instay: run `caselens train instay` first") from None


def watch_day(
    model: object,
    as_of: pd.Timestamp,
    department: str | None = None,
    policy: WarningPolicy = WarningPolicy(),
    store_dir: object = None,
) -> pd.DataFrame:
    """The ranked watch list of every stay in hospital at the end of ``as_of`` (one department's)."""
    records, charges = read_table("inpatients", store_dir), read_table("charges", store_dir)
    cases = read_cases(store_dir)
    cuts = in_hospital(records, as_of, cases[["case_id", "discharge_date"]])
    if department is not None:
        latest = records.drop_duplicates("case_id", keep="last").set_index("case_id")["department"]
        known = set(latest.unique())
        if department not in known:
            raise InputError(
                f"department {department!r} has no in-stay record; known: {', '.join(sorted(known))}"
            )
        cuts = cuts[cuts["case_id"].map(latest).to_numpy() == department].reset_index(drop=True)
    frame = cut_stays(records, charges, cuts)
    return watch_list(model, frame, cases, policy)
