"""The ward watch list (在院预警): every stay in hospital ranked by expected overrun, with a warning level.

Warning levels are the hospital's policy, not the model's: ``watch`` when charges to date reach
``watch_ratio`` of the pre-grouped DRG's payment standard (90% in common use; the payment rules'
``overrun.watch``) or the predicted overrun probability reaches ``watch_probability``; ``overrun`` when
charges to date reach ``overrun_ratio`` (110%, ``overrun.threshold``) of it or the predicted final
cost does. The list is ranked by expected overrun: the probability
times the predicted amount above the standard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract.errors import ConfigError
from features.view import Table, table_column, table_length
from models.tasks.instay import top_reasons

LEVELS = ("none", "watch", "overrun")
WATCH_COLUMNS = (
    "rank",
    "case_id",
    "department",
    "day_of_stay",
    "cost_to_date",
    "pregrouped_drg",
    "payment_standard",
    "ratio_to_date",
    "predicted_final_cost",
    "final_cost_lower",
    "final_cost_upper",
    "overrun_probability",
    "expected_overrun",
    "warning_level",
    "top_reasons",
)


@dataclass(frozen=True)
class WarningPolicy:
    """A hospital's warning thresholds (ratios of the payment standard, and a probability)."""

    watch_ratio: float = 0.9
    overrun_ratio: float = 1.1
    watch_probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.watch_ratio <= self.overrun_ratio:
            raise ConfigError(
                f"warning thresholds: need 0 < watch ratio ({self.watch_ratio}) <= overrun ratio "
                f"({self.overrun_ratio})"
            )
        if not 0 <= self.watch_probability <= 1:
            raise ConfigError(
                f"warning thresholds: watch probability {self.watch_probability} is not in [0, 1]"
            )

    @classmethod
    def from_rules(cls, rules: Any, watch_probability: float = 0.5) -> WarningPolicy:
        """The thresholds of the payment rules' ``[overrun]`` section (``casemix.payment.Overrun``)."""
        return cls(rules.overrun.watch, rules.overrun.threshold, watch_probability)

    def levels(self, ratio: np.ndarray, predicted_ratio: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """``none``/``watch``/``overrun`` per stay; a missing ratio (no standard) never triggers."""
        with np.errstate(invalid="ignore"):
            overrun = (ratio >= self.overrun_ratio) | (predicted_ratio >= self.overrun_ratio)
            watch = (ratio >= self.watch_ratio) | (probability >= self.watch_probability)
        return np.where(overrun, "overrun", np.where(watch, "watch", "none"))


def watch_list(
    model: Any,
    frame: pd.DataFrame,
    history: pd.DataFrame | None,
    policy: WarningPolicy = WarningPolicy(),
    reasons: bool = True,
) -> pd.DataFrame:
    """``WATCH_COLUMNS`` for the cut stays in ``frame`` (``features.instay.cut_stays``), ranked.

    ``model`` is the in-stay champion's registered model (``models.pyfunc.CaseModel``); ``history`` the
    stored abstracts the admission features look back on. ``reasons=False`` leaves ``top_reasons``
    empty (a replay of many days does not read them).
    """
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WATCH_COLUMNS})
    cut = model.features.pregroup(frame)
    if reasons:
        answer = model.explain_frame(cut, history)
        why = top_reasons(answer.contributions.values, answer.X, model.features.catalog)
        return ranked(cut, answer.outputs, policy, why)
    return ranked(cut, model.predict_frame(cut, history), policy)


def ranked(
    cut: pd.DataFrame, predicted: pd.DataFrame, policy: WarningPolicy, why: list[str] | str = ""
) -> pd.DataFrame:
    """``watch_list`` of pre-grouped stays ``cut`` from the model's outputs ``predicted`` (positionally
    aligned) and their reasons ``why``: :func:`stay_rows`, ranked by expected overrun, then warning
    level, then probability (ties keep their order)."""
    rows = stay_rows(cut, predicted, policy, why)
    severity = sum(i * (rows["warning_level"] == level) for i, level in enumerate(LEVELS))
    order = np.lexsort((-rows["overrun_probability"], -severity, -rows["expected_overrun"]))
    ordered = {"rank": np.arange(1, len(order) + 1), **{name: rows[name][order] for name in rows}}
    return pd.DataFrame(ordered)[list(WATCH_COLUMNS)]


def stay_rows(
    cut: Table, predicted: pd.DataFrame, policy: WarningPolicy, why: list[str] | str = ""
) -> dict[str, np.ndarray]:
    """``WATCH_COLUMNS`` but the rank, one array each, in the order of ``cut`` (a frame, or columns:
    :data:`features.view.Table`): what a caller that scores stays one by one (``POST
    /v1/predict/in-stay``) answers, the watch list's rows unranked."""
    standard = np.asarray(table_column(cut, "payment_standard"), dtype=np.float64)
    to_date = np.asarray(table_column(cut, "charges_to_date"), dtype=np.float64)
    final = predicted["final_cost"].to_numpy(dtype=np.float64)
    probability = predicted["p_overrun"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(standard > 0, to_date / standard, np.nan)
        predicted_ratio = np.where(standard > 0, final / standard, np.nan)
    above = np.nan_to_num(np.maximum(final - standard, 0.0), nan=0.0)
    reasons = np.empty(table_length(cut), dtype=object)
    reasons[:] = why
    return {
        "case_id": np.asarray(table_column(cut, "case_id"), dtype=object),
        "department": np.asarray(table_column(cut, "department"), dtype=object),
        "day_of_stay": np.asarray(table_column(cut, "day_of_stay"), dtype=np.int64),
        "cost_to_date": to_date,
        "pregrouped_drg": np.asarray(table_column(cut, "pregroup_drg"), dtype=object),
        "payment_standard": standard,
        "ratio_to_date": np.round(ratio, 4),
        "predicted_final_cost": np.round(final, 2),
        "final_cost_lower": np.round(predicted["final_cost_lower"].to_numpy(dtype=np.float64), 2),
        "final_cost_upper": np.round(predicted["final_cost_upper"].to_numpy(dtype=np.float64), 2),
        "overrun_probability": np.round(probability, 4),
        "expected_overrun": np.round(probability * above, 2),
        "warning_level": policy.levels(ratio, predicted_ratio, probability),
        "top_reasons": reasons,
    }
