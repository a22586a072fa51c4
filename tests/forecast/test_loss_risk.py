"""Loss risk per DRG × department: probabilities from the draws, ranking, drivers, backtest scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.forecast import backtest, forecast_surplus
from models.forecast.loss_risk import (
    DRIVERS,
    LossBacktest,
    LossCalibration,
    brier,
    calibrated_scores,
    case_dispersion,
    decompose,
    loss_probability,
    loss_risk,
    loss_scores,
    loss_summary,
    reliability,
    smoothed_loss_rate,
)
from models.forecast.panel import LEAF
from models.forecast.simulate import SurplusForecast

QUARTERS = pd.period_range("2026Q1", periods=2, freq="Q")


def handmade(
    volume: np.ndarray, payment: np.ndarray, cost: np.ndarray, history: pd.DataFrame
) -> SurplusForecast:
    """A forecast of three leaves × two quarters whose draws (draws × leaves × quarters) are given;
    the point forecast is the draws' mean."""
    leaves = pd.DataFrame(
        {"department": ["a", "a", "b"], "adrg": ["X1", "X1", "Y1"], "drg": ["X11", "X13", "Y19"]}
    )
    draws = {"volume": volume, "payment": payment, "cost": cost}
    return SurplusForecast(
        name="base",
        leaves=leaves,
        history=history,
        quarters=QUARTERS,
        rate=pd.Series(10_000.0, index=QUARTERS),
        point={m: d.mean(axis=0) for m, d in draws.items()},
        draws=draws,
    )


def panel(rows: list[tuple[str, str, str, str, int, float, float]]) -> pd.DataFrame:
    """A leaf × quarter panel (n, payment, cost) like ``leaf_panel``'s."""
    frame = pd.DataFrame(rows, columns=[*LEAF, "quarter", "n", "payment", "cost"])
    frame["quarter"] = pd.PeriodIndex(frame["quarter"], freq="Q")
    return frame.set_index([*LEAF, "quarter"]).sort_index()


HISTORY = panel(
    [
        ("a", "X1", "X11", "2025Q1", 10, 1_000.0, 900.0),
        ("a", "X1", "X11", "2025Q2", 10, 1_000.0, 1_100.0),
        ("a", "X1", "X13", "2025Q1", 2, 200.0, 250.0),
        ("b", "Y1", "Y19", "2025Q2", 1, 100.0, 80.0),
    ]
)


@pytest.fixture()
def forecast() -> SurplusForecast:
    rng = np.random.default_rng(3)
    volume = rng.uniform(0.0, 12.0, (200, 3, 2))
    volume[:, 2, :] = 0.0  # a leaf expecting no case at all
    payment = volume * 100.0
    cost = volume * rng.normal([[95.0, 110.0], [120.0, 130.0], [90.0, 90.0]], 10.0, (200, 3, 2))
    return handmade(volume, payment, cost, HISTORY)


def test_probabilities_follow_the_draws_with_a_poisson_count_of_cases(forecast: SurplusForecast) -> None:
    """Each draw: Σₙ Poisson(n; V) Φ(−√n m / (r p)) for its cases V, margin m and payment p per case
    and the leaf's case spread r, averaged over the draws (computed here straight from scipy)."""
    risk = loss_risk(forecast).set_index([*LEAF, "quarter"]).sort_index()
    spread = case_dispersion(forecast.history)
    surplus = forecast.draws["payment"] - forecast.draws["cost"]
    n = np.arange(1, 200)[:, None]
    for i, leaf in enumerate(forecast.leaves.itertuples(index=False)):
        for t, quarter in enumerate(QUARTERS.astype(str)):
            row = risk.loc[(*leaf, quarter)]
            v, pay = forecast.draws["volume"][:, i, t], forecast.draws["payment"][:, i, t]
            if (v > 0).all():
                sd = spread.loc[tuple(leaf)] * pay / v
                each = (
                    stats.poisson.pmf(n, v) * stats.norm.cdf(-np.sqrt(n) * surplus[:, i, t] / v / sd)
                ).sum(axis=0)
                assert row["p_loss_simulated"] == pytest.approx(each.mean(), abs=1e-9)
            assert row["expected_loss"] == pytest.approx(np.clip(-surplus[:, i, t], 0, None).mean())
    assert risk["p_loss"].between(0, 1).all() and (risk["p_loss"] == risk["p_loss_simulated"]).all()
    assert (risk.loc[("b", "Y1", "Y19"), ["p_loss", "expected_loss"]] == 0).all().all()


def test_without_case_spread_a_draw_loses_when_negative_and_a_case_comes() -> None:
    rng = np.random.default_rng(1)
    volume = rng.uniform(0.0, 60.0, (50, 3, 2))
    payment, cost = volume * 100.0, volume * rng.normal(100.0, 10.0, (50, 3, 2))
    p = loss_probability(volume, payment, cost, np.zeros(3))
    assert np.allclose(p, (payment - cost < 0) * (1 - np.exp(-volume)), atol=1e-9)
    # a spread pulls a sure loss or a sure win towards even odds, more so with fewer cases
    wide = loss_probability(volume, payment, cost, np.full(3, 0.5))
    assert (wide[payment - cost < 0] < p[payment - cost < 0] + 1e-12).all()
    assert (wide[(payment - cost > 0) & (volume > 1)] > 0).all()


def test_case_spread_is_each_leafs_own_shrunk_to_the_pool() -> None:
    rows = []
    for q, quarter in enumerate(pd.period_range("2024Q1", periods=8, freq="Q").astype(str)):
        rows.append(("a", "X1", "X11", quarter, 10, 1_000.0, 950.0))  # the same margin every quarter
        rows.append(("a", "X1", "X13", quarter, 10, 1_000.0, 1_000.0 + (300.0 if q % 2 else -300.0)))
        rows.append(("b", "Y1", "Y19", quarter, 10, 1_000.0, 1_000.0 + (100.0 if q % 2 else -100.0)))
    rows.append(("b", "Y1", "Y17", "2025Q4", 1, 100.0, 90.0))  # one quarter: the pool's spread
    spread = case_dispersion(panel(rows))
    own = {
        drg: np.sqrt(8 * 10 * (d / 100) ** 2 / 7) for drg, d in (("X11", 0.0), ("X13", 30.0), ("Y19", 10.0))
    }
    pooled = np.median(list(own.values())) ** 2
    for drg, sd in own.items():
        leaf = spread.xs(drg, level="drg").iloc[0]
        assert leaf == pytest.approx(np.sqrt((7 * sd**2 + 4 * pooled) / (7 + 4)))
    assert spread.xs("Y17", level="drg").iloc[0] == pytest.approx(np.sqrt(pooled))
    assert spread.xs("X11", level="drg").iloc[0] > 0  # never sure from its own quarters alone


def test_cells_are_ranked_by_expected_loss_over_the_horizon(forecast: SurplusForecast) -> None:
    risk = loss_risk(forecast)
    cells = risk.drop_duplicates(list(LEAF)).set_index("rank")
    assert list(cells.index) == [1, 2, 3]
    assert cells["expected_loss_total"].is_monotonic_decreasing
    assert tuple(cells.loc[1, list(LEAF)]) == ("a", "X1", "X13")  # costs 120–130 a case against 100 paid
    totals = risk.groupby("drg")["expected_loss"].sum()
    assert cells.set_index("drg")["expected_loss_total"].to_dict() == pytest.approx(totals.to_dict())


def test_drivers_add_up_to_the_change_and_split_a_handmade_cell() -> None:
    # 10 cases at 100 paid, 90 cost → 12 cases at 105 paid, 100 cost: surplus 100 → 60
    parts = decompose(*(np.array([x]) for x in (10.0, 1_000.0, 900.0, 12.0, 1_260.0, 1_200.0)))
    assert parts["driver_volume"][0] == pytest.approx(2 * (10 + 5) / 2)
    assert parts["driver_payment_change"][0] == pytest.approx(5 * 11)
    assert parts["driver_cost_trend"][0] == pytest.approx(-10 * 11)
    assert sum(p[0] for p in parts.values()) == pytest.approx(60 - 100)
    # a cell without a case on one side: its whole change is volume
    gone = decompose(*(np.array([x]) for x in (4.0, 400.0, 500.0, 0.0, 0.0, 0.0)))
    assert gone["driver_volume"][0] == pytest.approx(100.0) and gone["driver_cost_trend"][0] == 0.0


def test_drivers_add_up_on_a_simulated_hospital(cases: pd.DataFrame, hm) -> None:
    """Six quarters ahead: the last two are told against forecast quarters, the first four against history."""
    base, _ = forecast_surplus(cases, hm.reprice, hm.SCHEDULE, 6, n_draws=100)
    risk = loss_risk(base)
    change = risk["surplus"] - risk["reference_surplus"]
    assert np.allclose(risk[list(DRIVERS)].sum(axis=1), change, rtol=0, atol=1e-6)
    # the reference of the first forecast quarter is the same quarter a year before, as it happened
    first = risk[risk["h"] == 1].set_index(list(LEAF))
    actual = base.history.xs(pd.Period("2025Q1", freq="Q"), level="quarter")
    assert np.allclose(
        first.loc[actual.index, "reference_surplus"], actual["payment"] - actual["cost"], rtol=1e-12
    )
    assert risk["p_loss"].between(0, 1).all() and risk["expected_loss"].ge(0).all()


def test_brier_and_reliability_on_a_handmade_case() -> None:
    p, y = np.array([0.9, 0.2, 0.5, 0.05]), np.array([1, 0, 1, 0])
    assert brier(p, y) == pytest.approx((0.01 + 0.04 + 0.25 + 0.0025) / 4)
    table = reliability(pd.Series(p), pd.Series(y))
    assert table["n"].sum() == 4
    assert table.loc["(0.8, 0.9]", "observed"] == 1.0 and table.loc["(-0.001, 0.1]", "observed"] == 0.0
    with pytest.raises(ValueError):
        brier(p, y[:2])


def test_smoothed_rate_lies_between_the_cell_and_the_pool() -> None:
    losses = pd.DataFrame([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    rate = smoothed_loss_rate(losses)
    pooled = losses.to_numpy().mean()
    own = losses.mean(axis=1)
    assert ((rate - pooled) * (own - pooled) >= 0).all()  # towards the cell's own share …
    assert ((rate - own).abs() <= (own - pooled).abs() + 1e-12).all()  # … but not beyond it
    assert 0 < rate.iloc[1] < rate.iloc[0] < 1


def test_backtest_scores_outcomes_and_naive_rule_by_hand() -> None:
    """Origin 2026Q1; what happened: X11 lost in 2026Q1 (and in 2025Q1), X13 won in 2026Q1 though it
    lost in 2025Q1, Y19 had no case in 2026Q1 (no loss) but lost in 2026Q2."""
    actual = panel(
        [
            *HISTORY.reset_index().itertuples(index=False, name=None),
            ("a", "X1", "X11", "2026Q1", 10, 1_000.0, 1_200.0),
            ("a", "X1", "X13", "2026Q1", 2, 200.0, 150.0),
            ("b", "Y1", "Y19", "2026Q2", 1, 100.0, 300.0),
        ]
    )
    quarters = pd.period_range("2025Q1", "2026Q2", freq="Q")
    draws = np.ones((4, 3, 2))
    pay = np.array([100.0, 100.0, 100.0, 100.0])[:, None, None] * draws
    cost = np.array([90.0, 110.0, 120.0, 130.0])[:, None, None] * draws  # 3 of 4 draws lose
    forecast = handmade(draws * 50, pay * 50, cost * 50, HISTORY)
    scores = loss_scores(forecast, actual, quarters, pd.Period("2026Q1", freq="Q")).set_index(
        ["drg", "quarter"]
    )
    assert scores["lost"].to_dict() == {
        ("X11", "2026Q1"): 1.0,
        ("X11", "2026Q2"): 0.0,
        ("X13", "2026Q1"): 0.0,
        ("X13", "2026Q2"): 0.0,
        ("Y19", "2026Q1"): 0.0,
        ("Y19", "2026Q2"): 1.0,
    }
    assert scores["naive"].to_dict() == {
        ("X11", "2026Q1"): 0.0,  # 2025Q1: 1,000 paid, 900 cost
        ("X11", "2026Q2"): 1.0,
        ("X13", "2026Q1"): 1.0,
        ("X13", "2026Q2"): 0.0,
        ("Y19", "2026Q1"): 0.0,
        ("Y19", "2026Q2"): 0.0,
    }
    p = scores["p_loss_simulated"].iloc[0]  # 3 of 4 draws lose ¥10–30 a case: a little under 3/4
    assert np.allclose(scores["p_loss_simulated"], p) and 0.7 < p < 0.75
    summary = loss_summary(calibrated_scores(scores.reset_index()))
    row = summary.loc["all cells"]
    lost = np.array([1, 0, 0, 0, 0, 1])
    assert row["brier_simulated"] == pytest.approx(np.mean((p - lost) ** 2))
    assert row["brier_calibrated"] == row["brier_simulated"]  # nothing earlier to learn from
    assert row["brier_naive"] == pytest.approx(np.mean((np.array([0, 1, 1, 0, 0, 0]) - lost) ** 2))


def test_calibration_is_learnt_from_earlier_origins_only() -> None:
    rng = np.random.default_rng(0)
    n = 400
    rows = pd.DataFrame(
        {
            "origin": np.repeat(["2025Q1", "2025Q2", "2025Q3"], n),
            "quarter": np.repeat(["2025Q1", "2025Q2", "2025Q3"], n),
            "p_loss_simulated": rng.uniform(0, 1, 3 * n),
            "loss_rate_history": rng.uniform(0.05, 0.95, 3 * n),
        }
    )
    simulated, history = (rows[c].clip(1e-3, 1 - 1e-3) for c in ("p_loss_simulated", "loss_rate_history"))
    truth = 1 / (
        1 + np.exp(-(0.5 * np.log(simulated / (1 - simulated)) + 1.5 * np.log(history / (1 - history))))
    )
    rows["lost"] = (rng.uniform(0, 1, 3 * n) < truth).astype(float)
    scored = calibrated_scores(rows)
    first = scored["origin"] == "2025Q1"
    assert (scored.loc[first, "p_loss_calibrated"] == scored.loc[first, "p_loss_simulated"]).all()
    second = LossCalibration.fit(rows[rows["origin"] == "2025Q1"])
    later = scored["origin"] == "2025Q2"
    assert np.allclose(
        scored.loc[later, "p_loss_calibrated"],
        second(rows.loc[later, "p_loss_simulated"], rows.loc[later, "loss_rate_history"]),
    )
    fitted = LossCalibration.fit(rows)
    assert fitted is not None and fitted.history > fitted.simulated > 0
    assert brier(scored.loc[~first, "p_loss_calibrated"], rows.loc[~first, "lost"]) < brier(
        rows.loc[~first, "p_loss_simulated"], rows.loc[~first, "lost"]
    )
    assert LossCalibration.fit(rows.head(10)) is None


def test_loss_backtest_shares_the_surplus_backtests_forecasts(cases: pd.DataFrame, hm) -> None:
    scorer = LossBacktest(cases)
    backtest(cases, hm.reprice, hm.SCHEDULE, 2, origins=3, n_draws=50, on_forecast=scorer)
    scores = scorer.scores
    assert sorted(scores["origin"].unique()) == ["2025Q2", "2025Q3", "2025Q4"]
    assert (
        scores[["p_loss_simulated", "p_loss_calibrated", "naive", "loss_rate_history"]]
        .stack()
        .between(0, 1)
        .all()
    )
    assert set(scores["lost"].unique()) <= {0.0, 1.0}
    assert len(scores) == len(scores.drop_duplicates(["origin", *LEAF, "quarter"]))
