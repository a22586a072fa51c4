"""The watch list of a day from the store: the stays in hospital at its end, cut there and scored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from contract.errors import InputError, NotFound
from features.instay import cut_stays, in_hospital
from models.tracking import CHAMPION
from models.watch_list import WarningPolicy, watch_list
from pipelines.store import read_cases, read_table

MODEL_URI = f"models:/caselens-instay@{CHAMPION}"
LATEST = "watch_latest.json"  # in the reports folder: which watch list the ward page shows


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


def watch_path(reports_dir: Path, day: pd.Timestamp, department: str | None = None) -> Path:
    """Where a day's watch list goes by default: ``watch_<day>[_<department>].csv``."""
    suffix = f"_{department}" if department else ""
    return reports_dir / f"watch_{day:%Y-%m-%d}{suffix}.csv"


def write_watch(
    found: pd.DataFrame,
    day: pd.Timestamp,
    department: str | None,
    reports_dir: Path,
    out: Path | None = None,
) -> Path:
    """Write the watch list as CSV and point ``<reports_dir>/watch_latest.json`` at it.

    The ward page reads the latest list through that small file rather than guessing from file names:
    a list written with ``-o`` elsewhere, or for one department, is still the one the page finds.
    """
    target = out or watch_path(reports_dir, day, department)
    target.parent.mkdir(parents=True, exist_ok=True)
    found.to_csv(target, index=False, encoding="utf-8-sig")
    levels = found["warning_level"].value_counts()
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": f"{day:%Y-%m-%d}",
        "department": department,
        "file": str(target.resolve()),
        "stays": len(found),
        "overrun": int(levels.get("overrun", 0)),
        "watch": int(levels.get("watch", 0)),
    }
    reports_dir.mkdir(parents=True, exist_ok=True)
    latest = reports_dir / LATEST
    partial = latest.with_suffix(".tmp")
    partial.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    partial.replace(latest)  # the page never reads half a file
    return target
