"""The fitted indices' own uncertainty: every draw gets its own level and slope, growing with horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecast import forecast_surplus
from models.forecast.levels import level_forecast
from models.forecast.panel import leaf_panel
from models.forecast.per_case import department_trend

QUARTERS = pd.period_range("2023Q1", periods=12, freq="Q")
GROWTH = 0.01  # cost per case, per quarter, in both departments


def two_departments(shock: float, seed: int = 0) -> pd.DataFrame:
    """A steady department on an exact cost trend and an erratic one whose quarters jump by ``shock``."""
    rng = np.random.default_rng(seed)
    jumps = rng.normal(0.0, shock, len(QUARTERS))
    frames = []
    for i, quarter in enumerate(QUARTERS):
        for department, adrg, drg, rw in (
            ("steady", "FM1", "FM11", 2.0),
            ("steady", "FM1", "FM15", 1.0),
            ("erratic", "IC2", "IC21", 2.0),
            ("erratic", "IC2", "IC25", 1.0),
        ):
            n = 200
            noise = jumps[i] if department == "erratic" else 0.0
            frames.append(
                pd.DataFrame(
                    {
                        "department": department,
                        "adrg": adrg,
                        "drg": drg,
                        "rw": rw,
                        "discharge_date": quarter.start_time + pd.to_timedelta(np.arange(n) % 90, "D"),
                        "cost": rw * 10_000 * np.exp(GROWTH * i + noise) * rng.lognormal(0.0, 0.01, n),
                    }
                )
            )
    cases = pd.concat(frames, ignore_index=True)
    return cases.assign(payment=cases["rw"] * 10_000.0)


def test_trend_error_is_centred_and_grows_with_the_distance_from_the_recent_quarters() -> None:
    cases = two_departments(shock=0.05)
    panel = leaf_panel(cases, QUARTERS[:7], ["cost"])  # under two years: no quarter-of-year effects
    trend = department_trend(panel, "cost")
    assert trend.fit.loc["steady", "slope"] == pytest.approx(GROWTH, abs=1e-3)
    future = pd.period_range(QUARTERS[7], periods=4, freq="Q")
    multipliers = np.random.default_rng(1).standard_normal((7, 4000))
    error = trend.error(pd.Series(["steady", "erratic"]), QUARTERS[3:7], future, multipliers)
    spread = error.std(axis=1)  # departments × horizon
    assert spread[0].max() < 1e-3  # an exact trend leaves nothing to doubt
    assert np.all(np.diff(spread[1]) > 0)  # the erratic department's doubt grows with the horizon
    assert spread[1, -1] > 1.3 * spread[1, 0]
    assert np.abs(error.mean(axis=1)[1]).max() < 0.1 * spread[1].max()


def test_bootstrap_slope_spread_matches_the_slopes_of_fresh_histories() -> None:
    """On average, the slope spread one history's residuals claim is what re-running history shows."""
    slopes, claimed = [], []
    for seed in range(40):
        trend = department_trend(leaf_panel(two_departments(0.05, seed), QUARTERS[:7], ["cost"]), "cost")
        weights = trend.slope_weights.loc["erratic"].to_numpy()
        residuals = np.nan_to_num(trend.residuals.loc["erratic"].to_numpy())
        slopes.append(trend.fit.loc["erratic", "slope"])
        claimed.append(np.sum((weights * residuals) ** 2))  # the bootstrap slope's variance
    assert np.sqrt(np.mean(claimed)) == pytest.approx(np.std(slopes), rel=0.3)
    assert np.mean(slopes) == pytest.approx(GROWTH, abs=0.004)


def test_an_erratic_department_gets_wider_cost_bands_that_grow_with_horizon(hm) -> None:
    cases = two_departments(shock=0.05)
    base, _ = forecast_surplus(cases, hm.reprice, hm.SCHEDULE, 8, quarters=QUARTERS[:7], n_draws=1000, seed=2)
    table = level_forecast(base, "department").set_index(["key", "quarter"])
    relative = ((table["cost_hi80"] - table["cost_lo80"]) / table["cost"]).unstack("quarter")
    steady, erratic = relative.loc["steady"].to_numpy(), relative.loc["erratic"].to_numpy()
    assert (erratic > 2 * steady).all()
    assert erratic[-1] > 1.4 * erratic[0]  # two years out, the slope's doubt outweighs a quarter's noise
    cost_per_case = (table["cost"] / table["volume"]).unstack("quarter").loc["steady"].to_numpy()
    assert np.diff(np.log(cost_per_case)) == pytest.approx([GROWTH] * 7, abs=2e-3)


def test_draws_spread_around_the_point_forecast_of_every_leaf(hm, cases: pd.DataFrame) -> None:
    """Cutting sparse leaves' volumes and noise at zero must not lift their mean above the point
    (it put the hospital's surplus band on the loss side of its own forecast)."""
    rng = np.random.default_rng(2)
    # a department seeing a case or two a quarter, some quarters none
    days = [q.start_time + pd.Timedelta(days=40) for q in QUARTERS for _ in range(rng.poisson(1.0))]
    rare = pd.DataFrame(
        {"department": "urology", "adrg": "LR1", "drg": "LR11", "rw": 3.0, "discharge_date": days}
    )
    rare["cost"] = 30_000 * rng.lognormal(0.0, 0.8, len(rare))
    rare["payment"] = hm.reprice(rare, 10_000.0)
    base, _ = forecast_surplus(
        pd.concat([cases, rare], ignore_index=True), hm.reprice, hm.SCHEDULE, 2, n_draws=400, seed=1
    )
    np.testing.assert_allclose(base.draws["volume"].mean(axis=0), base.point["volume"], rtol=1e-9)
    sparse = (base.leaves["department"] == "urology").to_numpy()
    assert (base.draws["volume"][:, sparse] == 0).any()  # the cut at zero is exercised
    surplus = level_forecast(base, "hospital")
    middle = (surplus["surplus_lo80"] + surplus["surplus_hi80"]) / 2
    half = (surplus["surplus_hi80"] - surplus["surplus_lo80"]) / 2
    assert ((middle - surplus["surplus"]).abs() < 0.15 * half).all()


def test_volume_errors_are_out_of_sample() -> None:
    """A quarter's one-step error comes from the quarters before it only: later history cannot
    change it (MSTL's in-sample residuals did, and were half its real one-step errors)."""
    from models.forecast.volume import forecast_volume

    rng = np.random.default_rng(0)
    index = pd.MultiIndex.from_tuples(
        [("cardiology", "FM1"), ("respiratory", "ES2")], names=["department", "adrg"]
    )
    season = np.tile([1.2, 1.0, 0.9, 1.0], 3)
    counts = pd.DataFrame(
        rng.poisson(np.outer([60, 40], season * 1.02 ** np.arange(12))), index=index, columns=QUARTERS
    )
    found = forecast_volume(counts, 1)
    assert set(found.model) == {"MSTL"}
    changed = counts.copy()
    changed.iloc[:, -1] *= 3
    again = forecast_volume(changed, 1)
    pd.testing.assert_frame_equal(found.residuals.iloc[:, :-1], again.residuals.iloc[:, :-1])
    for t in (4, 9, 11):  # seasonal naive from the first season on, then MSTL: each refitted before t
        before = forecast_volume(counts.iloc[:, :t], 1).point.iloc[:, 0]
        np.testing.assert_allclose(found.residuals.iloc[:, t], counts.iloc[:, t] - before)
    assert (found.residuals.iloc[:, :4] == 0).all().all()


def test_per_case_errors_are_out_of_sample(hm, cases: pd.DataFrame) -> None:
    """A quarter's per-case errors are judged against the values fitted before it: tripling the last
    quarter's charges moves only that quarter's errors (in-sample errors all moved with the fit)."""
    from models.forecast.per_case import MIN_LOOK_BACK, per_case_values

    def errors(frame: pd.DataFrame) -> np.ndarray:
        priced = frame.assign(payment_at_0=hm.reprice(frame, 10_500.0))
        panel = leaf_panel(priced, QUARTERS, ["cost", "payment_at_0"])
        return per_case_values(panel, {10_500.0: "payment_at_0"}, 10_500.0, 4).cost_residuals

    last = cases["discharge_date"] >= QUARTERS[-1].start_time
    before, after = errors(cases), errors(cases.assign(cost=cases["cost"].where(~last, cases["cost"] * 3)))
    np.testing.assert_array_equal(before[:, :-1], after[:, :-1])
    assert (after[:, -1] > before[:, -1] + 1.0).all()
    assert (before[:, :MIN_LOOK_BACK] == 0).all() and (before[:, MIN_LOOK_BACK:] != 0).any()
