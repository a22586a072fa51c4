"""Point-in-time history of a table's own rows: what the same entity (patient) did before each row.

Readmission risk grows with earlier admissions, yet a prepared table holds each encounter as its own
row. Given the entity column (patient id) and an order column (admission date or any orderable
value), each row gets the count of the entity's *strictly earlier* rows, the gap since the last one,
running sums of the numeric utilisation columns over them and, when the order is a date and an outcome
window is given, the labels of earlier rows whose window closed before this row. Rows with the same
order value are never each other's history, so nothing recorded at or after a row reaches it.

The features of ``rows`` are computed from a ``pool`` of rows (in training, the whole table; at
prediction time, the rows given), so the pyfunc model computes exactly what training computed when it
is handed the same earlier rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.errors import TrainingInputError

DAY_NS = 86_400 * 10**9


def order_values(values: pd.Series) -> tuple[pd.Series, bool]:
    """The order column as numbers (days for dates) and whether it is a date.

    Text that reads as dates is a date; other text is ordered as text (its gaps are unknown).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return _days(values), True
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return pd.to_numeric(values, errors="coerce").astype("float64"), False
    dates = pd.to_datetime(values, errors="coerce", format="mixed")
    if dates.notna().sum() == values.notna().sum() and values.notna().any():
        return _days(dates), True
    return values.astype("string"), False


def _days(dates: pd.Series) -> pd.Series:
    ns = dates.astype("datetime64[ns]").astype("int64").astype("float64")
    return pd.Series(np.where(dates.isna(), np.nan, ns / DAY_NS), index=dates.index)


def history_features(
    rows: pd.DataFrame,
    pool: pd.DataFrame,
    entity: str,
    order: str,
    sums: list[str],
    label: str | None = None,
    horizon_days: float | None = None,
) -> pd.DataFrame:
    """History features of each row of ``rows`` from the strictly earlier rows of ``pool``.

    ``label`` (a column of ``pool``) feeds ``history_label_*`` only for a date order and a horizon:
    an earlier row counts when its outcome is given and its order + ``horizon_days`` is before this
    row's order.
    """
    for name in (entity, order):
        if name not in rows.columns or name not in pool.columns:
            raise TrainingInputError(f"history column {name!r} is missing from the input")
    t_rows, is_date = order_values(rows[order])
    t_pool, _ = order_values(pool[order])
    if not pd.api.types.is_float_dtype(t_rows) or not pd.api.types.is_float_dtype(t_pool):
        t_rows, t_pool = _ranks(t_rows, t_pool)
        gaps = False
    else:
        gaps = True
    values = pool[sums].apply(pd.to_numeric, errors="coerce").fillna(0.0) if sums else None
    columns = ["history_rows", *(["history_gap"] if gaps else []), *(f"history_sum_{c}" for c in sums)]
    found = _earlier(rows[entity], t_rows, pool[entity], t_pool, values, last=gaps)
    out = pd.DataFrame(index=rows.index)
    out["history_rows"] = found["count"]
    if gaps:
        out["history_gap"] = t_rows.to_numpy() - found["last"]
    for c in sums:
        out[f"history_sum_{c}"] = found[c]
    if label is not None and horizon_days is not None and is_date:
        # Without the label column no earlier outcome is known: the features are there, missing.
        given = pool[label] if label in pool.columns else pd.Series(np.nan, index=pool.index)
        known = pd.to_numeric(given, errors="coerce")
        keep = known.notna().to_numpy()
        outcome = _earlier(
            rows[entity],
            t_rows,
            pool[entity][keep],
            t_pool[keep] + float(horizon_days),
            known[keep].to_frame("label"),
            last=False,
        )
        out["history_label_rows"] = outcome["count"]
        out["history_label_mean"] = np.where(
            outcome["count"] > 0, outcome["label"] / np.maximum(outcome["count"], 1), np.nan
        )
        columns += ["history_label_rows", "history_label_mean"]
    return out[columns]


def _ranks(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Text orders as positions in their joint sorted order (missing stays missing)."""
    levels = np.sort(pd.unique(pd.concat([a, b]).dropna().astype(str)))
    position = {v: float(i) for i, v in enumerate(levels)}
    return (
        a.astype(object).map(position).astype("float64"),
        b.astype(object).map(position).astype("float64"),
    )


def _earlier(
    row_entity: pd.Series,
    row_time: pd.Series,
    pool_entity: pd.Series,
    pool_time: pd.Series,
    values: pd.DataFrame | None,
    last: bool,
) -> dict[str, np.ndarray]:
    """Per row: count (and value sums, last time) of pool rows of its entity with time < its time.

    Rows and pool are sorted together by (entity, time, pool after row), so a running sum over pool
    rows read at a row's position covers exactly the strictly earlier pool rows.
    """
    n = len(row_entity)
    pool_ok = pool_entity.notna().to_numpy() & pool_time.notna().to_numpy()
    names = list(values.columns) if values is not None else []
    frame = pd.DataFrame(
        {
            "entity": np.concatenate(
                [row_entity.astype(str).to_numpy(object), pool_entity[pool_ok].astype(str).to_numpy(object)]
            ),
            "time": np.concatenate([row_time.to_numpy(float), pool_time[pool_ok].to_numpy(float)]),
            "is_pool": np.r_[np.zeros(n, dtype=np.int8), np.ones(int(pool_ok.sum()), dtype=np.int8)],
            "row": np.r_[np.arange(n), np.full(int(pool_ok.sum()), -1)],
        }
    )
    for name in names:
        frame[name] = np.r_[np.zeros(n), values[name].to_numpy(float)[pool_ok]]
    frame["time_if_pool"] = np.where(frame["is_pool"] == 1, frame["time"], np.nan)
    frame = frame.sort_values(["entity", "time", "is_pool"], kind="stable", na_position="last")
    grouped = frame.groupby("entity", sort=False)
    count = grouped["is_pool"].cumsum().to_numpy()
    sums = {name: grouped[name].cumsum().to_numpy() for name in names}
    latest = grouped["time_if_pool"].ffill().to_numpy() if last else None
    at = frame["row"].to_numpy()
    mine = at >= 0
    order = at[mine]
    valid = ~np.isnan(frame["time"].to_numpy()[mine])
    out: dict[str, np.ndarray] = {}
    placed = np.full(n, np.nan)
    placed[order] = np.where(valid, count[mine], np.nan)
    out["count"] = placed
    for name in names:
        placed = np.full(n, np.nan)
        placed[order] = np.where(valid, sums[name][mine], np.nan)
        out[name] = placed
    if latest is not None:
        placed = np.full(n, np.nan)
        placed[order] = np.where(valid, latest[mine], np.nan)
        out["last"] = placed
    missing_entity = row_entity.isna().to_numpy()
    for key in out:
        out[key][missing_entity] = np.nan
    return out
