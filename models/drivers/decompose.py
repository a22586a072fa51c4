"""The gap between a cell's cost per case and its DRG's benchmark, decomposed two exact ways.

A *cell* is a DRG in one department (or the whole hospital) in one discharge period; its *benchmark*
is the same DRG's mean across the hospital in the same period (so price growth and seasons cancel),
or a regional reference. The gap is cases × (cell mean cost − benchmark mean cost), in yuan, and:

- **by charge group**: the cell's mean cost per case in each of the abstract's ten groups minus the
  benchmark's, times its cases. Where an abstract's groups do not add up to its total (ingestion
  tolerates a rounding difference) the rest is its own group, ``cost_unallocated``, so the groups
  always add up to the total gap, to the fen;
- **by case features**: exact TreeSHAP values (LightGBM's ``pred_contrib``) of a discharge-stage cost
  model, averaged over the cell's cases and over the benchmark's, differenced, times the cases. The
  model is fitted on cost in yuan with a squared-error objective, not on log cost as the admission
  cost model is: SHAP values of a log model add up on the log scale, and their exponentials
  multiply, so they could not be summed into yuan. (No registered model fits: the cost task is an
  admission-stage forecast on log cost, so the command fits this one on the cases it explains; the
  decomposition describes them, it forecasts nothing.) Per case, base + Σ SHAP is the prediction; what
  the model leaves (actual − prediction) is the ``unexplained`` driver: the department's own
  practice beyond its case mix. So base + mean contributions + mean unexplained is the cell's mean
  cost exactly, and the feature drivers add up to the same total gap.

The features are the case facts a department head can read and argue with (length of stay, MCC and
CC counts, procedures, diagnoses, age, sex, admission route and type, discharge disposition, the DRG
itself), not the coded-feature pipeline's hundreds of columns, and never the department: a
department's habit is what the decomposition is asked to expose, not to explain away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd
import pyarrow.compute as pc

from casemix.indicators import Period, period_of
from contract.errors import InputError
from contract.fields import COST_CATEGORIES, code_lists
from models import lgbm

Level = Literal["department", "hospital"]
UNALLOCATED = "cost_unallocated"
CHARGE_GROUPS: tuple[str, ...] = (*COST_CATEGORIES, UNALLOCATED)
UNEXPLAINED = "unexplained"
FEATURES: tuple[str, ...] = (
    "los_days",
    "mcc_count",
    "cc_count",
    "procedures",
    "diagnoses",
    "age_years",
    "sex",
    "admission_source",
    "admission_type",
    "discharge_disposition",
    "drg_code",
)
CATEGORICAL = ("sex", "admission_source", "admission_type", "discharge_disposition", "drg_code")
COST_MODEL_PARAMS: dict[str, Any] = {
    "n_estimators": 150,
    "learning_rate": 0.08,
    "num_leaves": 15,
    "max_depth": 5,  # TreeSHAP's time grows with leaves × depth²: every case of the history is explained
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "random_state": 0,
    "n_jobs": 1,
}
MONEY = ("payment", "cost", "surplus")
BENCHMARK_KEYS = ["hospital_id", "drg", "period"]  # the DRG across the hospital's departments, per period


def cell_keys(level: Level) -> list[str]:
    """The columns naming a cell: hospital, DRG, the department (at department level) and period."""
    if level not in ("department", "hospital"):
        raise InputError(f"level must be 'department' or 'hospital', not {level!r}")
    return ["hospital_id", "drg", *(["department"] if level == "department" else []), "period"]


def driver_cases(priced: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The grouped cases of ``price_cases``'s frame with ``period`` and the money columns named as the
    casemix report names them (payment, cost = total charges, surplus); ungroupable cases have no DRG
    to be compared within and are left out."""
    missing = [c for c in ("drg", "status", "discharge_date", "total_cost", "drg_payment") if c not in priced]
    if missing:
        raise InputError(f"cases lack {', '.join(missing)}: group and price them first")
    kept = priced[priced["status"].eq("grouped") & priced["drg"].notna()]
    frame = kept.assign(
        period=period_of(kept["discharge_date"], period).astype(str),
        payment=kept["drg_payment"].astype(float),
        cost=kept["total_cost"].astype(float),
        surplus=kept["drg_payment"].astype(float) - kept["total_cost"].astype(float),
    )
    if "hospital_id" not in frame.columns:
        frame["hospital_id"] = None
    return frame.reset_index(drop=True)


def charge_costs(cases: pd.DataFrame) -> pd.DataFrame:
    """Each case's charges by group, with ``cost_unallocated`` = total − Σ groups so they add up."""
    missing = [c for c in COST_CATEGORIES if c not in cases.columns]
    if missing:
        raise InputError(f"cases lack the charge groups {', '.join(missing)}")
    groups = cases[list(COST_CATEGORIES)].astype(float).fillna(0.0)
    groups[UNALLOCATED] = cases["total_cost"].astype(float) - groups.sum(axis=1)
    return groups


def charge_group_gaps(
    cases: pd.DataFrame, level: Level, reference: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per cell: keys, cases, payment, cost, surplus, benchmark and the charge-group gaps.

    ``cases`` come from :func:`driver_cases`. ``reference`` holds the benchmark's mean cost per case in
    each charge group per ``drg`` (and ``period``, when it has one), e.g. a regional table; without it
    the benchmark is the DRG's mean across the hospital in the period. Cells whose DRG the reference
    lacks are dropped. Columns: keys, ``cases``, ``payment``, ``cost``, ``surplus``,
    ``cost_per_case``, ``benchmark_per_case``, ``gap_per_case``, ``gap_total`` and one column per
    charge group holding its share of ``gap_total`` in yuan (the groups add up to ``gap_total``).
    """
    keys = cell_keys(level)
    groups = charge_costs(cases)
    frame = pd.concat([cases[[*keys, *MONEY]], groups], axis=1)
    cells = _cell_table(frame, keys, list(CHARGE_GROUPS))
    if reference is None:
        bench = _benchmark(frame, list(CHARGE_GROUPS))
        on = BENCHMARK_KEYS
    else:
        on = ["drg", "period"] if "period" in reference.columns else ["drg"]
        bench = reference[[*on, "benchmark_per_case", *CHARGE_GROUPS]]
    merged = cells.merge(bench, on=on, how="inner", suffixes=("", "_bench"))
    return _gaps(merged, keys, list(CHARGE_GROUPS))


def discharge_features(cases: pd.DataFrame) -> pd.DataFrame:
    """The readable case facts the cost model learns from (see the module docstring), known at discharge."""

    def count(column: str) -> pd.Series:
        lengths = pc.list_value_length(code_lists(cases[column])).to_numpy(zero_copy_only=False)
        return pd.Series(lengths, index=cases.index, dtype=float).fillna(0.0)

    procedures = count("other_procedures") + cases["principal_procedure"].notna().astype(float)
    frame = pd.DataFrame(
        {
            "los_days": pd.to_numeric(cases["los_days"], errors="coerce").astype(float),
            "mcc_count": cases["mcc_count"].astype(float),
            "cc_count": cases["cc_count"].astype(float),
            "procedures": procedures,
            "diagnoses": count("other_diagnoses") + cases["principal_diagnosis"].notna().astype(float),
            "age_years": pd.to_numeric(cases["age_years"], errors="coerce").astype(float),
        },
        index=cases.index,
    )
    for column in CATEGORICAL:
        source = "drg" if column == "drg_code" else column  # renamed: ``drg`` is a cell key
        values = cases[source] if source in cases.columns else pd.Series(None, index=cases.index)
        frame[column] = values.astype(str).where(values.notna(), None).astype("category")
    return frame[list(FEATURES)]


def fit_cost_model(X: pd.DataFrame, cost: pd.Series, params: dict[str, Any] | None = None) -> Any:
    """A LightGBM regression of total charges in yuan on :func:`discharge_features` (see why above)."""
    if len(X) < 2:
        raise InputError(f"{len(X)} grouped cases: too few to fit the discharge cost model")
    model = lgbm.regressor(params or COST_MODEL_PARAMS, objective="regression")
    return model.fit(X, cost.astype(float))


def case_contributions(model: Any, X: pd.DataFrame, cost: pd.Series) -> pd.DataFrame:
    """Per case: the base value, each feature's SHAP value and ``unexplained`` (actual − prediction),
    in yuan; ``base`` + the rest is the case's cost up to float rounding."""
    values, base = lgbm.contributions(model, X)
    frame = pd.DataFrame(values, columns=list(X.columns), index=X.index)
    frame[UNEXPLAINED] = cost.astype(float).to_numpy() - base - values.sum(axis=1)
    frame.insert(0, "base", base)
    return frame


def feature_levels(cases: pd.DataFrame, contributions: pd.DataFrame, level: Level) -> pd.DataFrame:
    """One row per cell: keys, cases, mean cost, base and each driver's mean contribution per case
    (base + contributions = the cell's mean cost)."""
    keys = cell_keys(level)
    drivers = [c for c in contributions.columns if c != "base"]
    frame = pd.concat([cases[[*keys, "cost"]], contributions], axis=1)
    found = frame.groupby(keys, dropna=False, observed=True, sort=True)
    table = found[["cost", "base", *drivers]].mean().rename(columns={"cost": "mean_cost"})
    table.insert(0, "cases", found.size())
    return table.reset_index()


def feature_gaps(cases: pd.DataFrame, contributions: pd.DataFrame, level: Level) -> pd.DataFrame:
    """Like :func:`charge_group_gaps`, the drivers being the features' SHAP values and ``unexplained``
    (always against the hospital's own cases of the DRG: a regional reference has no cases)."""
    keys = cell_keys(level)
    drivers = [c for c in contributions.columns if c != "base"]
    frame = pd.concat([cases[[*keys, *MONEY]], contributions[drivers]], axis=1)
    cells = _cell_table(frame, keys, drivers)
    bench = _benchmark(frame, drivers)
    merged = cells.merge(bench, on=BENCHMARK_KEYS, how="inner", suffixes=("", "_bench"))
    return _gaps(merged, keys, drivers)


def feature_differences(cases: pd.DataFrame, X: pd.DataFrame, level: Level) -> pd.DataFrame:
    """Per cell: its mean of each numeric feature minus the benchmark's (e.g. +1.8 days' stay), for
    sentences that say how a driver differs, not only what it costs."""
    keys = cell_keys(level)
    numeric = [c for c in FEATURES if c not in CATEGORICAL]
    frame = pd.concat([cases[keys], X[numeric]], axis=1)
    cells = _means(frame, keys, numeric)
    bench = _means(frame, BENCHMARK_KEYS, numeric)
    merged = cells.merge(bench, on=BENCHMARK_KEYS, suffixes=("", "_bench"))
    out = merged[keys].copy()
    for column in numeric:
        out[column] = merged[column] - merged[f"{column}_bench"]
    return out


def _means(frame: pd.DataFrame, keys: Sequence[str], columns: list[str]) -> pd.DataFrame:
    return frame.groupby(list(keys), dropna=False, observed=True, sort=True)[columns].mean().reset_index()


def _benchmark(frame: pd.DataFrame, drivers: list[str]) -> pd.DataFrame:
    """The DRG's mean cost and drivers per case across the hospital in each period."""
    found = _means(frame.assign(benchmark_per_case=frame["cost"]), BENCHMARK_KEYS, ["benchmark_per_case"])
    return found.merge(_means(frame, BENCHMARK_KEYS, drivers), on=BENCHMARK_KEYS)


def _cell_table(frame: pd.DataFrame, keys: list[str], drivers: list[str]) -> pd.DataFrame:
    """Per cell: cases, summed money and mean drivers per case."""
    found = frame.groupby(keys, dropna=False, observed=True, sort=True)
    table = found[list(MONEY)].sum()
    table.insert(0, "cases", found.size())
    return table.join(found[drivers].mean()).reset_index()


def _gaps(merged: pd.DataFrame, keys: list[str], drivers: list[str]) -> pd.DataFrame:
    """Keys, money, the per-case and total gap (from the totals) and each driver's part of it (yuan)."""
    out = merged[[*keys, "cases", *MONEY, "benchmark_per_case"]].copy()
    out.insert(out.columns.get_loc("benchmark_per_case"), "cost_per_case", out["cost"] / out["cases"])
    out["gap_per_case"] = out["cost_per_case"] - out["benchmark_per_case"]
    out["gap_total"] = out["gap_per_case"] * out["cases"]
    for driver in drivers:
        out[driver] = (merged[driver] - merged[f"{driver}_bench"]) * out["cases"]
    return out.reset_index(drop=True)


def addup_error(table: pd.DataFrame, drivers: Sequence[str]) -> float:
    """The largest |Σ drivers − gap_total| over the rows, in yuan (0 up to float rounding)."""
    if table.empty:
        return 0.0
    return float((table[list(drivers)].sum(axis=1) - table["gap_total"]).abs().max())
