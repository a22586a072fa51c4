"""DRG cost drivers, end to end: priced cases → both decompositions → ranked cells, CSVs, charts, MLflow.

The files land in one folder (``<data_dir>/drivers`` from the CLI), which the service reads:
``cells.csv`` (the ranked cells with their sentences), ``charge-groups.csv`` and ``features.csv``
(every cell: keys, ``cases``, ``gap_total`` then one column per driver; each row adds up),
``feature-levels.csv`` (base + mean contributions = the cell's mean cost), ``cell-NN.png`` per top
cell and ``run.json``. See :mod:`models.drivers.decompose` for what the decompositions mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from casemix.indicators import Period
from contract.errors import InputError, NotFound
from contract.settings import Settings, get_settings
from models.drivers.charts import plot_cell
from models.drivers.decompose import (
    CHARGE_GROUPS,
    COST_MODEL_PARAMS,
    FEATURES,
    UNALLOCATED,
    UNEXPLAINED,
    Level,
    addup_error,
    case_contributions,
    cell_keys,
    charge_group_gaps,
    discharge_features,
    driver_cases,
    feature_differences,
    feature_gaps,
    feature_levels,
    fit_cost_model,
)
from models.drivers.story import rank_cells, sentence, top_drivers

EXPERIMENT = "caselens-drivers"
FEATURE_DRIVERS = [*FEATURES, UNEXPLAINED]
SUMMARY = ("cases", "payment", "cost", "surplus", "cost_per_case", "benchmark_per_case", "gap_per_case")


@dataclass
class DriversRun:
    """What a run produced: every cell's two decompositions and the ranked top cells."""

    charge_groups: pd.DataFrame
    features: pd.DataFrame
    levels: pd.DataFrame
    cells: pd.DataFrame
    meta: dict[str, object]
    files: list[Path] = field(default_factory=list)


def read_reference(path: Path) -> pd.DataFrame:
    """A regional reference: mean cost per case in each charge group per ``drg`` (and ``period``).

    CSV columns ``drg``, optionally ``period`` (as the report labels periods: 2025Q3, 2025-07, 2025)
    and ``total_cost``, and the ten charge groups of the data contract (``cost_general_services`` …
    ``cost_other``), yuan per case. Where ``total_cost`` is given, what the groups leave of it is
    ``cost_unallocated``; otherwise the groups are the total.
    """
    if not path.is_file():
        raise NotFound(f"{path}: no such reference file")
    table = pd.read_csv(path, dtype={"drg": str, "period": str}, encoding="utf-8-sig")
    missing = [c for c in ("drg", *CHARGE_GROUPS[:-1]) if c not in table.columns]
    if missing:
        raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}")
    money = [*CHARGE_GROUPS[:-1], *(["total_cost"] if "total_cost" in table.columns else [])]
    for column in money:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0]) + 2  # the file's line: a header, then 1-based rows
            raise InputError(
                f"{path.name} line {row}, field {column}: {table[column].iloc[row - 2]!r} is not yuan ≥ 0"
            )
        table[column] = values.astype(float)
    keys = ["drg", "period"] if "period" in table.columns else ["drg"]
    duplicated = table.duplicated(keys)
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0]) + 2
        raise InputError(
            f"{path.name} line {row}: a second row for {', '.join(keys)} {table.loc[row - 2, keys].tolist()}"
        )
    groups = table[list(CHARGE_GROUPS[:-1])].sum(axis=1)
    total = table["total_cost"] if "total_cost" in table.columns else groups
    return table[keys].assign(
        benchmark_per_case=total, **{c: table[c] for c in CHARGE_GROUPS[:-1]}, **{UNALLOCATED: total - groups}
    )


def run_drivers(
    priced: pd.DataFrame,
    out_dir: Path,
    *,
    level: Level = "department",
    period: Period = "quarter",
    reference: pd.DataFrame | None = None,
    min_cases: int = 5,
    top: int = 10,
    names: Callable[[str], str | None] = lambda _: None,
    step: Callable[[str], None] = lambda _: None,
) -> DriversRun:
    """Decompose every cell's gap, rank the cells, and write the tables and top cells' charts.

    ``priced`` is ``casemix.payment.price_cases``'s frame; ``names`` gives a DRG's name.
    """
    if level == "hospital" and reference is None:
        raise InputError("at hospital level the benchmark is the hospital itself: give a reference file")
    keys = cell_keys(level)
    cases = driver_cases(priced, period)
    step("charge groups")
    charges = charge_group_gaps(cases, level, reference)
    if charges.empty:
        on = "DRG and period" if reference is not None and "period" in reference.columns else "DRG"
        raise InputError(f"no cell to compare: the reference shares no {on} with the cases")
    step("discharge cost model and SHAP")
    X = discharge_features(cases)
    contributions = case_contributions(fit_cost_model(X, cases["cost"]), X, cases["cost"])
    features = feature_gaps(cases, contributions, level)
    levels = feature_levels(cases, contributions, level)
    differences = feature_differences(cases, X, level)
    step("rank and write")
    cells = rank_cells(charges, keys, min_cases=min_cases, top=top)
    cells = _with_sentences(cells, features, differences, keys, names)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("cell-*.png"):  # an earlier run's: its ranks are not this run's
        stale.unlink()
    files = [
        _csv(_ordered(charges, keys, list(CHARGE_GROUPS)), out_dir / "charge-groups.csv"),
        _csv(_ordered(features, keys, FEATURE_DRIVERS), out_dir / "features.csv"),
        _csv(levels, out_dir / "feature-levels.csv"),
    ]
    for row in cells.to_dict("records"):
        feature_row = _match(features, keys, row)
        where = f"{row.get('department') or ''} {row['period']}".strip()
        title = f"#{row['rank']} DRG {row['drg']} {where}: ¥{row['gap_total']:,.0f} over the benchmark"
        path = out_dir / f"cell-{row['rank']:02d}.png"
        files.append(
            plot_cell(
                _match(charges, keys, row), feature_row, (list(CHARGE_GROUPS), FEATURE_DRIVERS), title, path
            )
        )
    files.append(_csv(cells, out_dir / "cells.csv"))
    meta: dict[str, object] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "level": level,
        "period": period,
        "keys": keys,
        "benchmark": "reference file" if reference is not None else "the DRG's mean across the hospital",
        "feature_benchmark": "the DRG's mean across the hospital (a reference file has no cases)",
        "min_cases": min_cases,
        "top": top,
        "cases": len(cases),
        "cells": len(charges),
        "cells_over": int((charges["gap_total"] > 0).sum()),
        "gap_over_total": float(charges.loc[charges["gap_total"] > 0, "gap_total"].sum()),
        "charge_groups": list(CHARGE_GROUPS),
        "features": FEATURE_DRIVERS,
        "cost_model": {"objective": "regression (yuan)", **COST_MODEL_PARAMS},
        "addup_error_charge_groups": addup_error(charges, CHARGE_GROUPS),
        "addup_error_features": addup_error(features, FEATURE_DRIVERS),
    }
    (out_dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    files.append(out_dir / "run.json")
    return DriversRun(charges, features, levels, cells, meta, files)


def track_run(
    run: DriversRun, out_dir: Path, params: dict[str, object], settings: Settings | None = None
) -> str:
    """Log the run to MLflow (experiment ``caselens-drivers``): parameters, totals and every file."""
    import mlflow

    from models.tracking import use_tracking

    settings = settings or get_settings()
    experiment = use_tracking(settings.mlflow_uri, settings.mlflow_artifacts, EXPERIMENT)
    name = f"drivers {run.meta['level']} × {run.meta['period']}"
    with mlflow.start_run(experiment_id=experiment, run_name=name) as active:
        mlflow.log_params(params)
        mlflow.log_metrics(
            {k: float(run.meta[k]) for k in ("cases", "cells", "cells_over", "gap_over_total")}
            | {k: float(run.meta[k]) for k in ("addup_error_charge_groups", "addup_error_features")}
        )
        mlflow.log_artifacts(str(out_dir))
        return active.info.run_id


def _with_sentences(
    cells: pd.DataFrame,
    features: pd.DataFrame,
    differences: pd.DataFrame,
    keys: list[str],
    names: Callable[[str], str | None],
) -> pd.DataFrame:
    """The ranked cells' summary columns, top drivers of both kinds and a sentence in each language."""
    rows = []
    for cell in cells.to_dict("records"):
        row = pd.Series(cell)
        found = _match(features, keys, cell)
        groups = top_drivers(row, list(CHARGE_GROUPS))
        feats = top_drivers(found, FEATURE_DRIVERS) if found is not None else []
        moved = _match(differences, keys, cell)
        changes = {} if moved is None else moved.drop(labels=keys).astype(float).to_dict()
        name = names(cell["drg"])
        rows.append(
            {
                "rank": cell["rank"],
                **{k: cell[k] for k in keys},
                "drg_name": name,
                **{k: cell[k] for k in SUMMARY},
                "gap_total": cell["gap_total"],
                "top_charge_groups": json.dumps([[d, round(v, 2), round(s, 4)] for d, v, s in groups]),
                "top_features": json.dumps([[d, round(v, 2), round(s, 4)] for d, v, s in feats]),
                "sentence_en": sentence(row, groups, feats, changes, name, "en"),
                "sentence_zh": sentence(row, groups, feats, changes, name, "zh"),
            }
        )
    columns = ["rank", *keys, "drg_name", *SUMMARY, "gap_total", "top_charge_groups", "top_features"]
    return pd.DataFrame(rows, columns=[*columns, "sentence_en", "sentence_zh"])


def _match(table: pd.DataFrame, keys: list[str], cell: dict) -> pd.Series | None:
    """The row of ``table`` with the cell's keys (None when it has none)."""
    mask = pd.Series(True, index=table.index)
    for key in keys:
        value = cell[key]
        mask &= table[key].isna() if value is None or value != value else table[key].eq(value)
    found = table[mask]
    return None if found.empty else found.iloc[0]


def _ordered(table: pd.DataFrame, keys: list[str], drivers: list[str]) -> pd.DataFrame:
    """The CSV's columns: keys, ``cases``, ``gap_total``, the drivers, then the cell's money."""
    rest = [c for c in table.columns if c not in (*keys, "cases", "gap_total", *drivers)]
    return table[[*keys, "cases", "gap_total", *drivers, *rest]]


def _csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False, encoding="utf-8-sig")  # with a BOM so Excel shows the Chinese right
    return path
