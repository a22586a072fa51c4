"""The surplus forecast on a handmade hospital: sums, scenarios, the rate in force, the backtest."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from models.forecast import Scenario, backtest, backtest_summary, coverage, forecast_surplus, level_table
from models.forecast.backtest import known_at
from models.forecast.levels import aggregate, difference, level_forecast, level_keys
from models.forecast.panel import complete_quarters

HORIZON = 3


@pytest.fixture(scope="module")
def forecasts(hm, cases: pd.DataFrame):
    scenario = Scenario(
        name="rate +5% from 2026Q2, cardiology FM1 +10%, orthopaedics cost -5%",
        base_rate=[{"effective_from": date(2026, 4, 1), "change": 0.05}],
        volume=[{"department": "cardiology", "adrg": "FM1", "change": 0.10}],
        cost=[{"department": "orthopaedics", "change": -0.05}],
    )
    return forecast_surplus(cases, hm.reprice, hm.SCHEDULE, HORIZON, scenario=scenario, n_draws=200, seed=3)


def test_history_is_the_complete_quarters(cases: pd.DataFrame, forecasts) -> None:
    base, _ = forecasts
    assert list(complete_quarters(cases["discharge_date"]).astype(str)) == [
        f"{y}Q{q}" for y in (2023, 2024, 2025) for q in (1, 2, 3, 4)
    ]
    assert list(base.quarters.astype(str)) == ["2026Q1", "2026Q2", "2026Q3"]


def test_departments_add_up_to_the_hospital_in_the_point_and_every_draw(forecasts) -> None:
    base, _ = forecasts
    for measure in ("volume", "payment", "cost"):
        _, hospital = aggregate(base.draws[measure], level_keys(base.leaves, "hospital"))
        _, departments = aggregate(base.draws[measure], level_keys(base.leaves, "department"))
        assert np.allclose(departments.sum(axis=1), hospital[:, 0, :])
    tables = {level: level_forecast(base, level) for level in ("hospital", "department", "drg")}
    for level in ("department", "drg"):
        summed = tables[level].groupby("quarter")[["volume", "payment", "cost", "surplus"]].sum()
        assert np.allclose(
            summed.to_numpy(), tables["hospital"].set_index("quarter")[summed.columns].to_numpy()
        )
    hospital = tables["hospital"]
    assert (hospital["surplus_lo95"] <= hospital["surplus_lo80"]).all()
    assert (hospital["surplus_lo80"] <= hospital["surplus_hi80"]).all()
    assert (hospital["surplus_hi80"] <= hospital["surplus_hi95"]).all()


def test_forecast_pays_the_rate_in_force_in_the_forecast_quarter(hm, forecasts) -> None:
    """History before 2025 was paid at ¥10,000; every forecast case is re-priced at ¥10,500."""
    base, _ = forecasts
    rw = hm.LEAVES.set_index("drg")["rw"].reindex(base.leaves["drg"]).to_numpy()
    per_case = base.point["payment"] / base.point["volume"]
    assert np.allclose(per_case, rw[:, None] * 10_500.0)
    assert base.rate.tolist() == [10_500.0] * HORIZON


def test_scenario_moves_the_forecast_by_exactly_the_change(forecasts) -> None:
    base, changed = forecasts
    leaves = base.leaves
    fm1 = ((leaves["department"] == "cardiology") & (leaves["adrg"] == "FM1")).to_numpy()
    ortho = (leaves["department"] == "orthopaedics").to_numpy()
    rate = np.array([1.0, 1.05, 1.05])  # the base-rate change takes effect with 2026Q2
    volume = np.where(fm1[:, None], 1.10, 1.0)
    assert np.allclose(changed.point["volume"], base.point["volume"] * volume)
    assert np.allclose(changed.point["payment"], base.point["payment"] * volume * rate[None, :])
    cost = np.where(ortho[:, None], 0.95, 1.0) * volume
    assert np.allclose(changed.point["cost"], base.point["cost"] * cost)
    # the same draws, moved the same way, so the difference has no noise of its own
    assert np.allclose(changed.draws["payment"], base.draws["payment"] * (volume * rate[None, :])[None])
    delta = level_forecast(difference(changed, base), "hospital")
    expected = base.point["payment"].sum(axis=0) * 0.05 * np.array([0, 1, 1])
    expected += (base.point["payment"][fm1] * 0.10 * rate[None, :]).sum(axis=0)
    assert delta["payment"].to_numpy() == pytest.approx(expected)


def test_scenario_rate_change_alone_lifts_payment_five_percent(hm) -> None:
    cases = hm.make_cases(seed=1)
    scenario = Scenario(base_rate=[{"effective_from": date(2026, 1, 1), "yuan": 11_025.0}])
    base, changed = forecast_surplus(cases, hm.reprice, hm.SCHEDULE, 2, scenario=scenario, n_draws=50)
    ratio = level_forecast(changed, "hospital")["payment"] / level_forecast(base, "hospital")["payment"]
    assert ratio.to_numpy() == pytest.approx([1.05, 1.05], rel=1e-12)
    assert np.allclose(changed.point["cost"], base.point["cost"])


def test_level_table_holds_history_then_forecast(forecasts) -> None:
    base, _ = forecasts
    table = level_table(base, "department")
    assert set(table["kind"]) == {"actual", "forecast"}
    assert table.groupby("key")["quarter"].apply(lambda q: q.is_monotonic_increasing).all()
    actual = table[(table["kind"] == "actual") & (table["quarter"] == pd.Period("2025Q4"))]
    assert actual["surplus"].to_numpy() == pytest.approx((actual["payment"] - actual["cost"]).to_numpy())


def test_backtest_origins_never_see_the_future(hm, cases: pd.DataFrame) -> None:
    """Change everything discharged from 2025Q3 on: the 2025Q3 origin's forecast must not move."""
    scores = backtest(cases, hm.reprice, hm.SCHEDULE, 2, origins=2, n_draws=100)
    later = cases["discharge_date"] >= pd.Timestamp("2025-07-01")
    perturbed = pd.concat(
        [cases.assign(cost=cases["cost"].where(~later, cases["cost"] * 3)), cases[later]], ignore_index=True
    )
    again = backtest(perturbed, hm.reprice, hm.SCHEDULE, 2, origins=2, n_draws=100)
    columns = ["forecast", "lo80", "hi80", "lo95", "hi95"]
    before = scores[scores["origin"] == "2025Q3"].reset_index(drop=True)
    after = again[again["origin"] == "2025Q3"].reset_index(drop=True)
    pd.testing.assert_frame_equal(before[columns], after[columns])
    assert not np.allclose(before["actual"], after["actual"])  # the perturbation is real...
    moved = again[again["origin"] == "2025Q4"]["forecast"].to_numpy()
    assert not np.allclose(scores[scores["origin"] == "2025Q4"]["forecast"], moved)  # ...and seen once past


def surplus_in(cases: pd.DataFrame, quarter: str, department: str | None = None) -> float:
    """The hospital's (or a department's) actual surplus in a quarter, summed from its cases."""
    inside = cases["discharge_date"].dt.to_period("Q") == pd.Period(quarter)
    if department is not None:
        inside &= cases["department"] == department
    return float((cases.loc[inside, "payment"] - cases.loc[inside, "cost"]).sum())


def test_backtest_scores_against_both_baselines(hm, cases: pd.DataFrame) -> None:
    scores = backtest(cases, hm.reprice, hm.SCHEDULE, 2, origins=4, n_draws=100)
    assert set(scores["level"]) == {"hospital", "department", "drg"}
    from_2025q2 = scores[scores["origin"] == "2025Q2"].set_index(["level", "key", "quarter"])
    for level, key, department in (
        ("hospital", "hospital", None),
        ("department", "cardiology", "cardiology"),
    ):
        first, second = from_2025q2.loc[(level, key, "2025Q2")], from_2025q2.loc[(level, key, "2025Q3")]
        assert first["actual"] == pytest.approx(surplus_in(cases, "2025Q2", department))
        assert second["actual"] == pytest.approx(surplus_in(cases, "2025Q3", department))
        assert first["seasonal_naive"] == pytest.approx(surplus_in(cases, "2024Q2", department))
        assert second["seasonal_naive"] == pytest.approx(surplus_in(cases, "2024Q3", department))
        # naive is the last quarter known at the origin, for every quarter it forecasts
        assert first["naive"] == second["naive"] == pytest.approx(surplus_in(cases, "2025Q1", department))
    summary = backtest_summary(scores)
    assert list(summary.index) == ["hospital", "department", "drg"]
    assert summary.loc["hospital", "n"] == 4 + 4 + 4 - 2 - 2 - 1  # h ≤ 2 and inside the history
    assert summary[["coverage80", "coverage95"]].le(1).all().all()
    assert (summary["coverage95"] >= summary["coverage80"]).all()


def test_bad_input_names_the_row_and_field(hm, cases: pd.DataFrame) -> None:
    broken = cases.copy()
    broken.loc[5, "department"] = None
    with pytest.raises(ValueError, match="row 5: department is missing"):
        forecast_surplus(broken, hm.reprice, hm.SCHEDULE, 1)
    with pytest.raises(ValueError, match="lacks column"):
        forecast_surplus(cases.drop(columns="cost"), hm.reprice, hm.SCHEDULE, 1)


def test_calibration_widens_bands_to_cover_the_backtest(hm, cases: pd.DataFrame) -> None:
    from models.forecast import widen
    from models.forecast.backtest import interval_scales

    scores = backtest(cases, hm.reprice, hm.SCHEDULE, 2, origins=4, n_draws=100)
    scales = interval_scales(scores)
    assert (scales >= 1.0).all().all()
    hospital = scores[scores["level"] == "hospital"]
    moved = widen(hospital, scales.loc["hospital"], "forecast", "")
    covered = moved["actual"].between(moved["lo80"], moved["hi80"]).mean()
    assert covered >= 0.8 - 1e-9
    assert (moved["lo95"] <= moved["lo80"]).all() and (moved["hi95"] >= moved["hi80"]).all()
    assert ((moved["hi80"] - moved["lo80"]) >= (hospital["hi80"] - hospital["lo80"]) - 1e-6).all()
    summary = backtest_summary(scores)
    assert {"coverage80_calibrated", "scale80", "scale95"} <= set(summary.columns)


def test_calibrated_coverage_learns_only_from_what_was_known_at_the_origin(hm, cases: pd.DataFrame) -> None:
    """Ruin the last origin's forecasts: no earlier origin's calibrated band may move, and the first
    origin, with nothing before it, keeps the simulation's band."""
    scores = backtest(cases, hm.reprice, hm.SCHEDULE, 2, origins=4, n_draws=100)
    last = scores["origin"] == scores["origin"].max()
    ruined = scores.copy()
    for column in ("forecast", "lo80", "hi80", "lo95", "hi95"):
        ruined.loc[last, column] = scores.loc[last, column] + 10 * scores["actual"].abs().max()
    columns = ["coverage80_calibrated", "coverage95_calibrated"]
    before, after = coverage(scores, ["origin"]), coverage(ruined, ["origin"])
    earlier = before.index[before.index < scores["origin"].max()]
    pd.testing.assert_frame_equal(before.loc[earlier, columns], after.loc[earlier, columns])
    assert after.loc[scores["origin"].max(), "coverage80"] == 0.0  # the ruin is real
    first = before.loc[scores["origin"].min()]
    assert first["coverage80_calibrated"] == first["coverage80"]
    assert first["coverage95_calibrated"] == first["coverage95"]
    # an origin's scale comes only from earlier origins' forecasts of quarters already ended
    known = known_at(scores, "2025Q4")
    assert set(known["origin"]) == {"2025Q1", "2025Q2", "2025Q3"}
    assert (known["quarter"] < "2025Q4").all() and len(known[known["level"] == "hospital"]) == 5
