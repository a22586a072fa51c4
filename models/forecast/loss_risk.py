"""Each DRG × department's risk of losing money in the coming quarters, and what drives it.

The surplus forecast already simulates every leaf (department × ADRG × DRG; a DRG lies in one ADRG,
so a leaf is a DRG × department cell) jointly, draw by draw, so the loss risk is read off the same
draws rather than modelled again, with two things a draw does not hold. A draw's volume is a mean
number of cases, not a count: a cell expecting 0.3 cases has none in most quarters, and then it
loses nothing. And a draw's margin is a mean per case, while a small cell's quarter turns on a few
cases' own margins. So in each draw the quarter's cases are a Poisson count with the draw's volume
as mean, each case's margin varies around the draw's margin per case by the cell's own spread
(:func:`case_dispersion`), and the probability of a loss is the mean over draws of
Σₙ Poisson(n) · P(n cases' margins sum below 0) (:func:`loss_probability`). The expected loss is
the mean over draws of the loss (a surplus counts as a loss of 0).

Sparse cells: their volume errors are their ADRG cell's, spread by their share of its cases, and
their per-case errors are scaled to a typical quarter of their own (``models.forecast.per_case``);
their case spread is shrunk to the pooled one (empirical Bayes on a variance).
The backtest (``experiments/results/loss_risk.md``) found the simulated probabilities of single
cells overconfident (each cell's draws are narrower than its quarters' real spread) and a cell's
own history of losing quarters, shrunk to the pooled share by empirical Bayes
(:func:`smoothed_loss_rate`), a strong predictor. The published probability therefore combines the
two by a logistic regression learnt on the backtest's scored forecasts (:class:`LossCalibration`,
Platt scaling with one more input); without a backtest the simulated probability is shown.

What drives the expected surplus is told against the same quarter a year before (the actual
quarter, or its forecast beyond a year), so a season does not pass for a trend. The surplus of a
cell is volume × margin per case (payment per case − cost per case), and its change is split
exactly into three parts by the midpoint (Shapley) rule of a two-factor product:

    volume         = (V₁ − V₀) × (m₀ + m₁) / 2
    payment change = (p₁ − p₀) × (V₀ + V₁) / 2
    cost trend     = −(c₁ − c₀) × (V₀ + V₁) / 2

with V cases, p and c payment and cost per case, m = p − c, 0 the reference quarter and 1 the
point forecast (the forecast's expected surplus). Each part is what its factor's change is worth at
the average of the other factor's two values, so the parts add up to the change whatever the
order, and a cell with no case on one side keeps the other side's margin (its change is volume).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression

from models.forecast.backtest import known_at
from models.forecast.panel import LEAF, complete_quarters, leaf_panel
from models.forecast.simulate import SurplusForecast

DRIVERS: tuple[str, ...] = ("driver_volume", "driver_payment_change", "driver_cost_trend")
BINS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
BRIER_COLUMNS: dict[str, str] = {
    "brier_simulated": "p_loss_simulated",
    "brier_calibrated": "p_loss_calibrated",
    "brier_naive": "naive",
    "brier_smoothed": "loss_rate_history",
}
MIN_CALIBRATION_ROWS = 50
MANY_CASES = 50  # mean cases from which a quarter's count of cases is taken as its mean
DISPERSION_PRIOR_QUARTERS = 4.0  # history quarters' worth of the pooled case spread each leaf borrows
PROBABILITY_FLOOR = 1e-3  # logits of 0 and 1 are cut here: a 0.1% risk is as sure as the data allow


def loss_risk(forecast: SurplusForecast, calibration: LossCalibration | None = None) -> pd.DataFrame:
    """One row per department × DRG × forecast quarter, the cells ranked by expected loss.

    Columns: the leaf's keys, ``quarter``, ``h`` (1 = the first forecast quarter), the point
    ``volume``, ``payment``, ``cost`` and ``surplus``; ``p_loss_simulated`` and ``expected_loss``
    from the draws; ``loss_rate_history``, the cell's smoothed share of losing history quarters;
    ``p_loss``, the two combined by ``calibration`` (the simulated one without it); the reference
    quarter's actual (or forecast) ``reference_surplus`` and the three ``DRIVERS`` (they sum to
    ``surplus − reference_surplus``); ``rank``, 1 for the cell whose expected loss over the whole
    horizon (``expected_loss_total``) is largest.
    """
    surplus_draws = forecast.draws["payment"] - forecast.draws["cost"]  # draws × leaves × quarters
    dispersion = case_dispersion(forecast.history).reindex(
        pd.MultiIndex.from_frame(forecast.leaves[list(LEAF)])
    )
    p_simulated = loss_probability(
        forecast.draws["volume"], forecast.draws["payment"], forecast.draws["cost"], dispersion.to_numpy()
    ).mean(axis=0)
    expected_loss = np.clip(-surplus_draws, 0.0, None).mean(axis=0)
    volume, payment, cost = (forecast.point[m] for m in ("volume", "payment", "cost"))
    reference = _reference(forecast)
    drivers = decompose(reference["volume"], reference["payment"], reference["cost"], volume, payment, cost)
    history_rate = smoothed_loss_rate(history_losses(forecast.history))
    leaves = pd.MultiIndex.from_frame(forecast.leaves[list(LEAF)])
    n_leaves, horizon = volume.shape
    table = pd.DataFrame(
        {
            **{key: np.repeat(forecast.leaves[key].to_numpy(), horizon) for key in LEAF},
            "quarter": np.tile(forecast.quarters.astype(str), n_leaves),
            "h": np.tile(np.arange(1, horizon + 1), n_leaves),
            "volume": volume.ravel(),
            "payment": payment.ravel(),
            "cost": cost.ravel(),
            "surplus": (payment - cost).ravel(),
            "p_loss": p_simulated.ravel(),
            "p_loss_simulated": p_simulated.ravel(),
            "loss_rate_history": np.repeat(history_rate.reindex(leaves, fill_value=0.0).to_numpy(), horizon),
            "expected_loss": expected_loss.ravel(),
            "reference_quarter": np.tile((forecast.quarters - 4).astype(str), n_leaves),
            "reference_surplus": (reference["payment"] - reference["cost"]).ravel(),
            **{name: part.ravel() for name, part in drivers.items()},
        }
    )
    if calibration is not None:
        table["p_loss"] = calibration(table["p_loss_simulated"], table["loss_rate_history"])
    table["expected_loss_total"] = table.groupby(list(LEAF), sort=False)["expected_loss"].transform("sum")
    order = table.drop_duplicates(list(LEAF))[[*LEAF, "expected_loss_total"]]
    order = order.sort_values(
        ["expected_loss_total", *LEAF], ascending=[False, True, True, True], kind="stable"
    )
    order["rank"] = np.arange(1, len(order) + 1)
    table = table.merge(order[[*LEAF, "rank"]], on=list(LEAF), how="left")
    return table.sort_values(["rank", "h"], kind="stable").reset_index(drop=True)


def loss_probability(
    volume: np.ndarray, payment: np.ndarray, cost: np.ndarray, dispersion: np.ndarray
) -> np.ndarray:
    """P(the quarter's surplus < 0) of each draw (draws × leaves × quarters), given its mean cases,
    payment and cost, when the cases are a Poisson count and each case's margin varies around the
    draw's margin per case with a standard deviation of ``dispersion`` (per leaf) × payment per case.

    Σₙ Poisson(n; V) · Φ(−√n · m / σ) over n ≥ 1 cases; from ``MANY_CASES`` cases on the count's
    own spread hardly moves √n, so n = V. No case: no loss. A leaf without dispersion (NaN or 0)
    loses exactly when its margin is negative and a case comes.
    """
    volume = np.clip(volume, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.where(volume > 0, (payment - cost) / volume, 0.0)
        spread = np.nan_to_num(dispersion)[None, :, None] * np.where(volume > 0, payment / volume, 0.0)
    certain = spread <= 0

    def below_zero(cases: np.ndarray | float, m: np.ndarray, sd: np.ndarray, sure: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sure, (m < 0).astype(float), stats.norm.cdf(-np.sqrt(cases) * m / sd))

    many = volume >= MANY_CASES
    out = np.where(many, below_zero(volume, margin, spread, certain), 0.0)
    few = ~many & (volume > 0)
    v, m, sd, sure = volume[few], margin[few], spread[few], certain[few]
    for n in range(1, int(MANY_CASES + 8 * np.sqrt(MANY_CASES)) + 1):
        out[few] += stats.poisson.pmf(n, v) * below_zero(n, m, sd, sure)
    return out


def case_dispersion(history: pd.DataFrame, prior_quarters: float = DISPERSION_PRIOR_QUARTERS) -> pd.Series:
    """Each leaf's spread of one case's margin, relative to its payment per case, from its history
    quarters and shrunk to the pooled spread (empirical Bayes on a variance).

    A quarter of n cases whose margin per case is off the leaf's mean by d says n·d² about the
    variance of one case; summed over the leaf's k quarters with a case, over k − 1 degrees of
    freedom. A leaf seen in few quarters borrows ``prior_quarters`` quarters' worth of the median
    over leaves, so one lucky or unlucky quarter does not make it sure or hopeless.
    """
    frame = history.reset_index()
    frame = frame[frame["n"] > 0]
    totals = frame.groupby(list(LEAF))[["n", "payment", "cost"]].transform("sum")
    mean_margin = (totals["payment"] - totals["cost"]) / totals["n"]
    per_case_payment = (totals["payment"] / totals["n"]).where(lambda x: x > 0)
    margin = (frame["payment"] - frame["cost"]) / frame["n"]
    squares = frame["n"] * ((margin - mean_margin) / per_case_payment) ** 2
    by_leaf = squares.groupby([frame[k] for k in LEAF]).agg(["sum", "size"])
    dof = by_leaf["size"] - 1
    own = by_leaf["sum"] / dof.where(dof > 0)
    pooled = float(own.median()) if own.notna().any() else 0.0
    return np.sqrt((by_leaf["sum"] + prior_quarters * pooled) / (dof + prior_quarters))


def history_losses(history: pd.DataFrame) -> pd.DataFrame:
    """Leaves × history quarters, 1.0 where the leaf's surplus was negative (0 without a case)."""
    wide = history[["payment", "cost"]].unstack("quarter", fill_value=0)
    quarters = pd.PeriodIndex(history.index.get_level_values("quarter").unique().sort_values())
    lost = (wide["payment"] - wide["cost"]) < 0
    return lost.reindex(columns=quarters, fill_value=False).astype(float)


@dataclass(frozen=True)
class LossCalibration:
    """P(loss) = σ(a + b·logit(simulated) + c·logit(history rate)), learnt on backtest forecasts.

    Platt scaling of the simulated probability, with the cell's smoothed history of losses as a
    second input: the backtest showed the simulated spread of single cells too narrow (a slope b
    well under 1) and the history rate informative beyond it.
    """

    intercept: float
    simulated: float
    history: float
    n: int

    def __call__(self, simulated: pd.Series | np.ndarray, history: pd.Series | np.ndarray) -> np.ndarray:
        score = self.intercept + self.simulated * _logit(simulated) + self.history * _logit(history)
        return 1.0 / (1.0 + np.exp(-score))

    @classmethod
    def fit(cls, scores: pd.DataFrame) -> LossCalibration | None:
        """Learnt from scored forecasts (``p_loss_simulated``, ``loss_rate_history``, ``lost``);
        None when there are too few, or only one outcome, to learn from."""
        if len(scores) < MIN_CALIBRATION_ROWS or scores["lost"].nunique() < 2:
            return None
        inputs = np.column_stack([_logit(scores["p_loss_simulated"]), _logit(scores["loss_rate_history"])])
        model = LogisticRegression(C=1e4).fit(inputs, scores["lost"].to_numpy(dtype=int))
        return cls(
            float(model.intercept_[0]), float(model.coef_[0, 0]), float(model.coef_[0, 1]), len(scores)
        )


def _logit(p: pd.Series | np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype=float), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(clipped / (1 - clipped))


def decompose(
    v0: np.ndarray, pay0: np.ndarray, cost0: np.ndarray, v1: np.ndarray, pay1: np.ndarray, cost1: np.ndarray
) -> dict[str, np.ndarray]:
    """Volume, payment-per-case and cost-per-case parts (``DRIVERS``) of (pay1 − cost1) − (pay0 − cost0).

    Totals, not per-case values, are given: per-case values are totals over cases where there are
    cases, and the other side's otherwise (both sides empty: everything is 0).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        p0, c0 = np.where(v0 > 0, pay0 / v0, np.nan), np.where(v0 > 0, cost0 / v0, np.nan)
        p1, c1 = np.where(v1 > 0, pay1 / v1, np.nan), np.where(v1 > 0, cost1 / v1, np.nan)
    p0, c0 = np.where(np.isnan(p0), p1, p0), np.where(np.isnan(c0), c1, c0)
    p1, c1 = np.where(np.isnan(p1), p0, p1), np.where(np.isnan(c1), c0, c1)
    p0, c0, p1, c1 = (np.nan_to_num(a) for a in (p0, c0, p1, c1))
    volume_mid = (v0 + v1) / 2
    return dict(
        zip(
            DRIVERS,
            ((v1 - v0) * ((p0 - c0) + (p1 - c1)) / 2, (p1 - p0) * volume_mid, -(c1 - c0) * volume_mid),
            strict=True,
        )
    )


def _reference(forecast: SurplusForecast) -> dict[str, np.ndarray]:
    """Volume, payment and cost of each leaf in the same quarter a year before each forecast quarter:
    the actuals where that quarter is history (0 where the leaf had no case), the point forecast
    where it is itself forecast, NaN where it precedes the history."""
    history = forecast.history
    quarters = pd.PeriodIndex(history.index.get_level_values("quarter").unique().sort_values())
    leaves = pd.MultiIndex.from_frame(forecast.leaves[list(LEAF)])
    wide = history.unstack("quarter", fill_value=0)
    out = {}
    for measure, column in (("volume", "n"), ("payment", "payment"), ("cost", "cost")):
        actual = wide[column].reindex(index=leaves, columns=quarters, fill_value=0).to_numpy(dtype=float)
        values = np.full((len(leaves), len(forecast.quarters)), np.nan)
        for i, before in enumerate(forecast.quarters - 4):
            if before in quarters:
                values[:, i] = actual[:, quarters.get_loc(before)]
            elif before in forecast.quarters:
                values[:, i] = forecast.point[measure][:, forecast.quarters.get_loc(before)]
        out[measure] = values
    return out


def brier(probability: pd.Series | np.ndarray, outcome: pd.Series | np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (lower is better)."""
    p, y = np.asarray(probability, dtype=float), np.asarray(outcome, dtype=float)
    if len(p) != len(y) or not len(p):
        raise ValueError("brier needs as many outcomes as probabilities, at least one")
    return float(np.mean((p - y) ** 2))


def reliability(probability: pd.Series, outcome: pd.Series, bins: tuple[float, ...] = BINS) -> pd.DataFrame:
    """Per probability bin: forecasts, their mean probability and the share that did lose money."""
    frame = pd.DataFrame({"p": np.asarray(probability, dtype=float), "y": np.asarray(outcome, dtype=float)})
    frame["bin"] = pd.cut(frame["p"], list(bins), include_lowest=True)
    table = frame.groupby("bin", observed=False).agg(
        n=("y", "size"), mean_p=("p", "mean"), observed=("y", "mean")
    )
    table.index = table.index.astype(str)
    return table


def smoothed_loss_rate(losses: pd.DataFrame) -> pd.Series:
    """Each leaf's share of losing quarters shrunk to the pooled share (empirical Bayes, beta-binomial).

    ``losses`` is leaves (rows) × history quarters of 0/1. Every leaf is observed the same number of
    quarters n, so the beta prior follows from the moments of the leaves' shares: the pooled mean μ,
    and the intra-leaf correlation ρ = (n·s² / (μ(1 − μ)) − 1) / (n − 1) of which the prior's
    strength is (1 − ρ) / ρ quarters. A leaf with few quarters of its own stays near the pool.
    """
    k, n = losses.sum(axis=1).to_numpy(dtype=float), losses.shape[1]
    mu = float(k.sum() / (n * len(k))) if len(k) and n else 0.0
    if n < 2 or mu in (0.0, 1.0):
        return pd.Series(mu, index=losses.index)
    spread = float(np.var(k / n))
    rho = float(np.clip((n * spread / (mu * (1 - mu)) - 1) / (n - 1), 1e-3, 1.0))
    strength = (1 - rho) / rho
    return pd.Series((k + mu * strength) / (n + strength), index=losses.index)


def loss_scores(
    forecast: SurplusForecast, actual: pd.DataFrame, quarters: pd.PeriodIndex, origin: pd.Period
) -> pd.DataFrame:
    """The forecast's loss probabilities from ``origin`` against what happened, beside the baselines.

    ``actual`` is the leaf panel (n, payment, cost) of every history quarter, ``quarters`` those
    quarters. Scored are the leaves the forecast knew at the origin, in forecast quarters inside the
    history; a leaf without a case in a quarter did not lose money in it. Baselines, known at the
    origin: ``naive`` is 1 when the leaf lost money in the same quarter of the last year known at the
    origin (a year before for h ≤ 4, two years for h ≤ 8, ...), 0/1; ``loss_rate_history`` is its
    empirical-Bayes share of losing quarters before the origin (:func:`smoothed_loss_rate`).
    """
    risk = loss_risk(forecast)
    lost = history_losses(actual).reindex(columns=quarters, fill_value=0.0).stack()
    quarter = pd.PeriodIndex(risk["quarter"], freq="Q")
    keys = [risk[k].to_numpy() for k in LEAF]

    def outcome(at: pd.PeriodIndex) -> np.ndarray:
        """1 where the leaf lost money in quarter ``at`` (0 without a case there, or before the history)."""
        return lost.reindex(pd.MultiIndex.from_arrays([*keys, at])).fillna(0.0).to_numpy()

    back = 4 * np.ceil(risk["h"].to_numpy() / 4).astype(int)
    scores = risk.assign(
        origin=str(origin),
        lost=outcome(quarter),
        naive=outcome(pd.PeriodIndex([q - int(b) for q, b in zip(quarter, back, strict=True)], freq="Q")),
    )
    return scores[quarter.isin(quarters)].reset_index(drop=True)


def calibrated_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with ``p_loss_calibrated``: each origin's probabilities combined by the calibration
    learnt only from what was known at it (strictly earlier origins' forecasts of quarters that had
    ended, as for the surplus bands); an origin with nothing to learn from keeps the simulated one."""
    parts = []
    for origin, own in scores.groupby("origin", sort=True):
        calibration = LossCalibration.fit(known_at(scores, str(origin)))
        calibrated = (
            own["p_loss_simulated"].to_numpy()
            if calibration is None
            else calibration(own["p_loss_simulated"], own["loss_rate_history"])
        )
        parts.append(own.assign(p_loss_calibrated=calibrated))
    return pd.concat(parts).loc[scores.index]


def loss_summary(scores: pd.DataFrame, busy: float = 10.0) -> pd.DataFrame:
    """Brier scores of the forecast's probabilities (simulated; calibrated as known at each origin)
    and of the baselines, over all scored cells and over the busy ones (``busy`` or more cases
    forecast in the quarter), with the share that lost; ``scores`` from :func:`calibrated_scores`."""
    rows = {}
    for subset, frame in (("all cells", scores), (f"≥ {busy:g} cases", scores[scores["volume"] >= busy])):
        if frame.empty:
            continue
        rows[subset] = {
            "n": len(frame),
            "loss_share": float(frame["lost"].mean()),
            **{name: brier(frame[column], frame["lost"]) for name, column in BRIER_COLUMNS.items()},
        }
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass
class LossBacktest:
    """Scores the loss risk at every backtest origin: pass it as ``backtest(..., on_forecast=...)``,
    so the loss risk is judged on the very forecasts the surplus backtest made."""

    cases: pd.DataFrame
    quarters: pd.PeriodIndex | None = None
    parts: list[pd.DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.quarters is None:
            self.quarters = complete_quarters(self.cases["discharge_date"])
        self._actual = leaf_panel(self.cases, self.quarters, ["payment", "cost"])

    def __call__(self, origin: pd.Period, forecast: SurplusForecast) -> None:
        self.parts.append(loss_scores(forecast, self._actual, self.quarters, origin))

    @property
    def scores(self) -> pd.DataFrame:
        """Every origin's scores, calibrated as known at each (:func:`calibrated_scores`)."""
        if not self.parts:
            raise ValueError("no backtest origin has been scored yet")
        return calibrated_scores(pd.concat(self.parts, ignore_index=True))
