"""Replaying history: the watch list as it would have been each day, against how the stays ended.

For every day of a period, the stays in hospital at its end are cut and scored as the watch list
would have scored them (:func:`models.watch_list.watch_list`); each stay's outcome is then known:
whether its final cost passed its final DRG payment (overrun) and the day its charges to date did.
A warning rule is judged on stays: precision (warned stays that overran), recall (overrunning stays
warned on some day), lead time (days from the first warning to the day charges passed the payment;
positive is early) and the money in the stays it warned about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from features.instay import cut_stays, in_hospital
from models.watch_list import WarningPolicy, watch_list


def replay(
    model: Any,
    records: pd.DataFrame,
    charges: pd.DataFrame,
    cases: pd.DataFrame,
    days: Iterable[pd.Timestamp],
    policy: WarningPolicy = WarningPolicy(),
) -> pd.DataFrame:
    """One row per (day, stay in hospital at its end): the watch list's columns and ``as_of_date``.

    Only stays whose abstract is in ``cases`` (their outcome known) are kept; ``cases`` are also the
    history the admission features read, point in time.
    """
    ended = cases[["case_id", "discharge_date"]]
    rows = []
    for day in days:
        cuts = in_hospital(records, day, ended)
        cuts = cuts[cuts["case_id"].isin(ended["case_id"])].reset_index(drop=True)
        if cuts.empty:
            continue
        found = watch_list(model, cut_stays(records, charges, cuts), cases, policy, reasons=False)
        rows.append(found.assign(as_of_date=pd.Timestamp(day)))
    return pd.concat(rows, ignore_index=True)


def crossing_days(charges: pd.DataFrame, payment: pd.Series) -> pd.Series:
    """Per stay (``payment`` indexed by case id), the first day its charges to date passed the payment."""
    daily = charges.assign(total=charges.drop(columns=["case_id", "charge_date"]).sum(axis=1))
    daily = daily[daily["case_id"].isin(payment.index)].sort_values(["case_id", "charge_date"])
    running = daily.groupby("case_id")["total"].cumsum()
    passed = daily[running.to_numpy() > daily["case_id"].map(payment).to_numpy()]
    return passed.groupby("case_id")["charge_date"].min()


def judge(
    rows: pd.DataFrame, warns: pd.Series, outcome: pd.DataFrame, crossing: pd.Series
) -> dict[str, float]:
    """Precision, recall, lead time and money of one warning rule (``warns``: per row of ``rows``).

    ``outcome`` is indexed by case id with ``overrun`` (bool), ``final_cost`` and ``final_payment``.
    """
    first = rows.loc[warns.to_numpy(), ["case_id", "as_of_date"]].groupby("case_id")["as_of_date"].min()
    stays = outcome.loc[outcome.index.isin(rows["case_id"])]
    warned = stays.index.isin(first.index)
    overran = stays["overrun"].to_numpy(dtype=bool)
    lead = (crossing.reindex(first.index) - first).dt.days
    lead = lead[stays.loc[first.index, "overrun"].to_numpy(dtype=bool)].dropna()
    loss = (stays["final_cost"] - stays["final_payment"]).clip(lower=0)
    return {
        "stays": float(len(stays)),
        "warned": float(warned.sum()),
        "precision": float(overran[warned].mean()) if warned.any() else float("nan"),
        "recall": float(warned[overran].mean()) if overran.any() else float("nan"),
        "lead_days_median": float(lead.median()) if len(lead) else float("nan"),
        "warned_before_crossing": float((lead > 0).mean()) if len(lead) else float("nan"),
        "overrun_yuan_warned": float(loss[warned].sum()),
        "overrun_yuan_all": float(loss.sum()),
    }


def matched_threshold(
    rows: pd.DataFrame,
    outcome: pd.DataFrame,
    crossing: pd.Series,
    target_precision: float,
    score: Callable[[pd.DataFrame], pd.Series],
    grid: Iterable[float] = np.round(np.arange(0.30, 0.96, 0.01), 2),
) -> tuple[float, dict[str, float]]:
    """The lowest threshold on ``score(rows)`` whose warnings reach ``target_precision``, and its figures."""
    values = score(rows)
    for threshold in grid:
        found = judge(rows, values >= threshold, outcome, crossing)
        if found["precision"] >= target_precision:
            return float(threshold), found
    return float("nan"), {}
