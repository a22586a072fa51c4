"""Ingestion: read an export, map it to the contract, validate, keep the good rows, account for the rest.

Nothing is lost: every input row is either accepted into the store or written, as it was read, to
``rejected_rows.csv`` with one line per problem in ``rejects.csv``; accepted + rejected = read, always.
Warnings (codes missing from the dictionaries) keep their row and go to ``warnings.csv``. The CSV reports
are UTF-8 with BOM so Excel shows Chinese correctly. Rows are numbered as data rows of the input file,
from 1 (the header is not counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract.charges import CHARGES_TABLE
from contract.errors import InputError
from contract.fields import COST_CATEGORIES, FIELDS, canonical_column, canonical_frame, los_days
from contract.instay import CASES_TABLE, INPATIENTS_TABLE, TABLE_FIELDS
from contract.settings import get_settings
from pipelines import store
from pipelines.mapping import Mapping, check_columns, load_mapping, to_canonical
from pipelines.readers import read_table
from pipelines.validate import (
    Rules,
    merge_problems,
    validate_cases,
    validate_charges,
    validate_inpatients,
)

STEPS = ("read", "map", "validate", "reports", "store")
REPORT_COLUMNS = ["row", "case_id", "field", "column", "value", "reason"]


@dataclass(frozen=True)
class IngestResult:
    """Counts and where the reports went; ``by_reason`` counts rows per (severity, field, reason)."""

    rows_read: int
    accepted: int
    rejected: int
    warnings: int
    new: int
    updated: int
    store_rows: int
    by_reason: pd.DataFrame
    reports_dir: Path
    manifest: dict[str, object]


def ingest_file(
    path: Path | str,
    mapping: Mapping | str | Path | None = None,
    *,
    store_dir: Path | str | None = None,
    reports_dir: Path | str | None = None,
    rules: Rules | None = None,
    on_step: Callable[[str], None] | None = None,
    kind: str = CASES_TABLE,
    client: Any = None,
) -> IngestResult:
    """Validate an export and upsert its accepted rows into the store; see the module docstring.

    ``kind`` is the table the file holds: ``cases`` (discharge abstracts), ``charges`` (the daily
    charges feed, contract.charges) or ``inpatients`` (in-stay records, contract.instay). With a Dask
    ``client`` the store's years of cases are written in parallel on the cluster; the file is read and
    validated here (one input, whose row numbers the reports keep).
    """
    if kind not in TABLE_FIELDS:
        raise InputError(f"unknown kind {kind!r}: use one of {', '.join(TABLE_FIELDS)}")
    fields = TABLE_FIELDS[kind]
    started, clock = datetime.now(UTC), time.perf_counter()
    step = on_step or (lambda _: None)
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    rules = rules or Rules(code_tables=get_settings().casemix_tables)
    store_dir = store.store_path(store_dir)

    raw = read_table(path)
    step("read")
    check_columns(raw.frame.columns, mapping, raw.path.name, fields)
    cases, unreadable = to_canonical(raw.frame, mapping, fields)
    step("map")
    checked = {
        CASES_TABLE: lambda: validate_cases(cases, rules),
        CHARGES_TABLE: lambda: validate_charges(cases),
        INPATIENTS_TABLE: lambda: validate_inpatients(cases, rules),
    }[kind]()
    problems = merge_problems(unreadable, checked)
    errors = problems[problems["severity"] == "error"]
    rejected = np.zeros(len(cases), dtype=bool)
    rejected[errors["row"].to_numpy()] = True
    accepted = finalise(cases[~rejected]) if kind == CASES_TABLE else finalise_rows(cases[~rejected], kind)
    assert len(accepted) + int(rejected.sum()) == len(raw.frame), "every input row is accepted or rejected"
    step("validate")
    reports_dir = Path(reports_dir) if reports_dir else _default_reports_dir(raw.path, started)
    write_reports(raw.frame, cases["case_id"], problems, rejected, reports_dir)
    step("reports")
    update = (
        store.write_cases(accepted, store_dir, client=client)
        if kind == CASES_TABLE
        else store.write_table(kind, accepted, store_dir)
    )
    warnings = problems[problems["severity"] == "warning"]
    record = {
        "input": {
            "path": str(raw.path.resolve()),
            "sha256": raw.sha256,
            "bytes": raw.size_bytes,
            "format": raw.format,
            "encoding": raw.encoding,
        },
        "mapping": mapping.name,
        "kind": kind,
        "rows_read": len(raw.frame),
        "accepted": len(accepted),
        "rejected": int(rejected.sum()),
        "warnings": len(warnings),
        "new": update.new,
        "updated": update.updated,
        "reports_dir": str(reports_dir.resolve()),
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock, 3),
    }
    manifest = store.write_manifest(record, store_dir)
    step("store")
    return IngestResult(
        rows_read=len(raw.frame),
        accepted=len(accepted),
        rejected=int(rejected.sum()),
        warnings=len(warnings),
        new=update.new,
        updated=update.updated,
        store_rows=update.rows,
        by_reason=count_by_reason(problems),
        reports_dir=reports_dir,
        manifest=manifest,
    )


def finalise(accepted: pd.DataFrame) -> pd.DataFrame:
    """Accepted cases in store dtypes (required ints lose their missing-value slot) with ``los_days``."""
    cases = accepted.reset_index(drop=True)
    cases["los_days"] = los_days(cases["admission_date"], cases["discharge_date"])
    return canonical_frame(cases)


def finalise_rows(accepted: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Accepted rows of a daily table in its dtypes; a charge group absent on a day is 0 yuan."""
    rows = accepted.reset_index(drop=True)
    if kind == CHARGES_TABLE:
        rows[list(COST_CATEGORIES)] = rows[list(COST_CATEGORIES)].fillna(0.0)
    return pd.DataFrame(
        {f.name: canonical_column(rows[f.name], f) for f in TABLE_FIELDS[kind]}, index=rows.index
    )


def write_reports(
    raw: pd.DataFrame, case_ids: pd.Series, problems: pd.DataFrame, rejected: np.ndarray, folder: Path
) -> None:
    """rejects.csv (one line per error), rejected_rows.csv (the rows as read), warnings.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, severity in (("rejects.csv", "error"), ("warnings.csv", "warning")):
        found = problems[problems["severity"] == severity]
        lines = found.assign(case_id=case_ids.to_numpy()[found["row"].to_numpy()], row=found["row"] + 1)
        lines[REPORT_COLUMNS].to_csv(folder / name, index=False, encoding="utf-8-sig")
    rows = raw[rejected].astype(object)
    rows.insert(0, "row", np.flatnonzero(rejected) + 1, allow_duplicates=True)
    rows.to_csv(folder / "rejected_rows.csv", index=False, encoding="utf-8-sig")


def count_by_reason(problems: pd.DataFrame) -> pd.DataFrame:
    """Rows per (severity, field, reason), errors first, fields in contract order."""
    order = {f.name: i for i, f in enumerate(FIELDS)}
    counts = (
        problems.groupby(["severity", "field", "reason"], sort=False)["row"]
        .nunique()
        .rename("rows")
        .reset_index()
    )
    counts["_order"] = counts["field"].map(order)
    return (
        counts.sort_values(["severity", "_order", "rows"], ascending=[True, True, False])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _default_reports_dir(source: Path, started: datetime) -> Path:
    return get_settings().data_dir / "ingest" / f"{started:%Y%m%dT%H%M%S}-{source.stem}"
