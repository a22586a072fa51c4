"""Quarterly DRG surplus forecast, end to end: store → group → price → forecast → tables, charts, MLflow.

History is paid at the base rate in force on each case's discharge date, but the forecast never
uses those payments directly: every forecast quarter re-prices the history with the casemix payment
rules at the rate in force in *that* quarter (``reprice`` below), so a policy change such as the
demo city's 2025-01-01 rise from ¥10,000 to ¥10,500 reaches exactly the quarters it applies to,
and quarters before it are neither under- nor over-stated. Relative weights are a tariff: they are
calibrated once on the whole history (or read from the insurer's table) and held fixed, also in the
backtest. Surplus is payment minus charges (the abstract's total cost), as hospitals judge it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from casemix.engine import CasemixEngine
from casemix.payment import PaymentRules
from casemix.rw_table import weights_source
from casemix.settlement import expected_point_values
from casemix.tables import CasemixTables
from contract.settings import Settings, get_settings
from models.forecast import (
    LEVELS,
    RateSchedule,
    Scenario,
    backtest,
    backtest_summary,
    forecast_surplus,
    level_table,
    widen,
)
from models.forecast.charts import plot_level, plot_loss_risk
from models.forecast.levels import difference, level_forecast, top_drgs
from models.forecast.loss_risk import LossBacktest, LossCalibration, loss_risk, loss_summary, reliability
from models.forecast.settlement import settlement_forecast
from models.forecast.simulate import Reprice, SurplusForecast

EXPERIMENT = "caselens-forecast"
POINT_YEARS_AHEAD = 3  # future years the point method expects a point value for (beyond any horizon used)
LEVEL_TITLES: dict[str, tuple[str, str]] = {
    "hospital": ("全院", "hospital"),
    "department": ("科室", "departments"),
    "drg": ("重点DRG", "top DRGs"),
}


@dataclass(frozen=True)
class PricedHistory:
    """Grouped and priced cases, with what it takes to re-price them at another base rate."""

    cases: pd.DataFrame  # the contract's columns plus grouper and payment columns, payment and cost
    engine: CasemixEngine
    weights: pd.DataFrame
    schedule: RateSchedule
    names: dict[str, str]  # DRG code → name

    @property
    def rules(self) -> PaymentRules:
        return self.engine.rules

    @property
    def reprice(self) -> Reprice:
        return lambda cases, rate: self.engine.at_rate(cases, rate, self.weights)["drg_payment"]


@dataclass
class ForecastRun:
    """What a run produced; ``tables`` and ``scenario_tables`` are keyed by level."""

    tables: dict[str, pd.DataFrame]
    scenario_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    difference_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    scores: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    settlement: pd.DataFrame | None = None  # per year: the insurer's clearing (models.forecast.settlement)
    settlement_note: str | None = None  # why there is no settlement forecast
    files: list[Path] = field(default_factory=list)
    run_id: str | None = None
    loss_risk: pd.DataFrame | None = None  # per department × DRG × quarter (models.forecast.loss_risk)
    loss_calibration: LossCalibration | None = None  # from the backtest; None: as simulated
    loss_scores: pd.DataFrame | None = None  # the loss probabilities' backtest, row by row
    loss_summary: pd.DataFrame | None = None  # its Brier scores beside the naive rules


def rate_schedule(rules: PaymentRules, priced: pd.DataFrame) -> RateSchedule:
    """Yuan per RW by date: the dated base rates, or under the point method points per RW × each
    year's point value; the next ``POINT_YEARS_AHEAD`` years expect the budget over the points expected
    then (``settlement.expected_point_values``): more points, a cheaper point, not last year's carried."""
    if rules.method == "rate":
        return RateSchedule.from_pairs([(r.effective_from, r.yuan) for r in rules.base_rates])
    by_year = priced.groupby(priced["discharge_date"].dt.year)["point_value"].first().dropna()
    last = int(by_year.index.max())
    ahead = expected_point_values(priced, rules, list(range(last + 1, last + 1 + POINT_YEARS_AHEAD)))
    return RateSchedule.from_pairs(
        [(date(int(y), 1, 1), v * rules.points_per_rw) for y, v in {**by_year, **ahead}.items()]
    )


def price_history(
    cases: pd.DataFrame,
    rules: PaymentRules | None = None,
    weights: pd.DataFrame | Path | None = None,
    tables: CasemixTables | None = None,
) -> PricedHistory:
    """Group and price canonical cases; weights are the rules' RW table or calibrated from them unless
    given."""
    engine = CasemixEngine.from_settings(rules=rules, weights=weights, tables=tables)
    grouped = engine.grouped(cases)
    weights = engine.weights(grouped)
    return priced_history(with_surplus_columns(engine.price(grouped, weights)), engine, weights)


def with_surplus_columns(priced: pd.DataFrame) -> pd.DataFrame:
    """Priced cases with the forecast's ``payment`` (the DRG payment) and ``cost`` (the charges)."""
    return priced.assign(payment=priced["drg_payment"], cost=priced["total_cost"].astype(float))


def priced_history(priced: pd.DataFrame, engine: CasemixEngine, weights: pd.DataFrame) -> PricedHistory:
    """The history the forecast reads from priced cases (``with_surplus_columns``), however they were
    priced: in this process or per partition of a Dask cluster (``pipelines.cluster_forecast``)."""
    names = {drg: engine.tables.drg_name(drg) or drg for drg in priced["drg"].dropna().unique()}
    return PricedHistory(priced, engine, weights, rate_schedule(engine.rules, priced), names)


def run_surplus_forecast(
    history: PricedHistory,
    horizon: int,
    out_dir: Path,
    *,
    scenario: Scenario | None = None,
    n_draws: int = 500,
    seed: int = 0,
    origins: int = 6,
    top: int = 10,
    step: Callable[[str], None] = lambda _: None,
) -> ForecastRun:
    """Forecast every level, run the scenario and the backtest, and write tables and charts to ``out_dir``.

    ``step`` is called with a short description before each long step (for a progress display).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cases, reprice, schedule = history.cases, history.reprice, history.schedule
    step("forecast")
    base, changed = forecast_surplus(
        cases, reprice, schedule, horizon, scenario=scenario, n_draws=n_draws, seed=seed
    )
    keys = {"drg": top_drgs(base.history, top)}
    run = ForecastRun(
        tables={
            level: _labelled(level_table(base, level, keys.get(level)), level, history.names)
            for level in LEVELS
        }
    )
    try:
        run.settlement = forecast_settlement(history, base)
    except ValueError as error:
        run.settlement_note = str(error)
    if changed is not None:
        delta = difference(changed, base)
        run.scenario_tables = {
            lv: _labelled(level_table(changed, lv, keys.get(lv)), lv, history.names) for lv in LEVELS
        }
        run.difference_tables = {
            lv: _labelled(level_forecast(delta, lv, keys.get(lv)), lv, history.names) for lv in LEVELS
        }
    step("backtest")
    if origins:
        scorer = LossBacktest(cases)
        run.scores = backtest(
            cases,
            reprice,
            schedule,
            horizon,
            origins=origins,
            n_draws=n_draws,
            seed=seed,
            top=top,
            on_forecast=scorer,
        )
        run.summary = backtest_summary(run.scores)
        run.tables = _calibrated(run.tables, run.summary)
        run.scenario_tables = _calibrated(run.scenario_tables, run.summary)
        run.loss_scores = scorer.scores
        run.loss_summary = loss_summary(run.loss_scores)
        run.loss_calibration = LossCalibration.fit(run.loss_scores)
    run.loss_risk = _labelled(loss_risk(base, run.loss_calibration), "leaf", history.names)
    step("write tables and charts")
    run.files = _write(run, out_dir, base.quarters, scenario)
    (out_dir / "run.json").write_text(
        json.dumps(
            {
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "horizon": horizon,
                "history": [
                    str(base.history.index.get_level_values("quarter").min()),
                    str(base.history.index.get_level_values("quarter").max()),
                ],
                "forecast": [str(q) for q in base.quarters],
                "rate_by_quarter": {str(q): float(r) for q, r in base.rate.items()},
                "scenario": scenario.model_dump(mode="json") if scenario is not None else None,
                "n_draws": n_draws,
                "seed": seed,
                "top_drgs": keys["drg"],
                "history_pricing": "re-priced at the base rate in force in each forecast quarter",
                "weights_source": weights_source(history.weights),
                "settlement": None
                if run.settlement is None
                else json.loads(run.settlement.to_json(orient="records")),
                "settlement_note": run.settlement_note,
                "surplus_interval_scale": None
                if run.summary is None
                else run.summary[["scale80", "scale95"]].to_dict(orient="index"),
                "loss_risk": _loss_meta(run),
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    run.files.append(out_dir / "run.json")
    return run


def forecast_settlement(history: PricedHistory, forecast: SurplusForecast) -> pd.DataFrame:
    """The insurer's year-end settlement of each year the forecast reaches, the whole hospital's
    quarters summed over its leaves (point and every draw; see ``models.forecast.settlement``)."""
    quarters = pd.PeriodIndex(forecast.history.index.get_level_values("quarter").unique().sort_values())
    measures = ("volume", "payment", "cost")
    return settlement_forecast(
        history.cases,
        quarters,
        forecast.quarters,
        {m: forecast.point[m].sum(axis=0) for m in measures},
        {m: forecast.draws[m].sum(axis=1) for m in measures},
        history.rules,
    )


def track_run(
    run: ForecastRun, out_dir: Path, params: dict[str, object], settings: Settings | None = None
) -> str:
    """Log the run to MLflow (experiment ``caselens-forecast``): parameters, backtest metrics, every file."""
    import mlflow

    from models.tracking import use_tracking

    settings = settings or get_settings()
    experiment = use_tracking(settings.mlflow_uri, settings.mlflow_artifacts, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment, run_name=f"surplus h={params.get('horizon')}") as active:
        mlflow.log_params(params)
        if run.summary is not None:
            for level, row in run.summary.iterrows():
                mlflow.log_metrics({f"{level}_{name}": float(v) for name, v in row.items() if pd.notna(v)})
        if run.loss_summary is not None:
            row = run.loss_summary.iloc[0]  # all cells
            mlflow.log_metrics({f"loss_{name}": float(v) for name, v in row.items() if pd.notna(v)})
        mlflow.log_artifacts(str(out_dir))
        return active.info.run_id


def _calibrated(tables: dict[str, pd.DataFrame], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Surplus bands widened by the factors the backtest found per level (models.forecast.backtest)."""
    return {level: widen(table, summary.loc[level], "surplus", "surplus_") for level, table in tables.items()}


def _labelled(table: pd.DataFrame, level: str, names: dict[str, str]) -> pd.DataFrame:
    """Quarters as text and DRG names beside their codes, ready for a CSV or a web page."""
    table = table.assign(quarter=table["quarter"].astype(str))
    if level == "drg":
        table.insert(table.columns.get_loc("key") + 1, "name", table["key"].map(names))
    if level == "leaf":
        table.insert(table.columns.get_loc("drg") + 1, "name", table["drg"].map(names))
    return table


def _loss_meta(run: ForecastRun) -> dict[str, object]:
    """How the published loss probabilities were made and how they scored in the backtest."""
    calibration = run.loss_calibration
    return {
        "probability": "simulated" if calibration is None else "calibrated",
        "calibration": None if calibration is None else dataclasses.asdict(calibration),
        "backtest": None
        if run.loss_summary is None
        else json.loads(run.loss_summary.to_json(orient="index", force_ascii=False)),
    }


def _write(
    run: ForecastRun, out_dir: Path, quarters: pd.PeriodIndex, scenario: Scenario | None
) -> list[Path]:
    files = []
    span = f"{quarters[0]}–{quarters[-1]}"
    for level, table in run.tables.items():
        en = LEVEL_TITLES[level][1]
        files.append(_csv(table, out_dir / f"surplus-{level}.csv"))
        files.append(plot_level(table, out_dir / f"surplus-{level}.png", f"{en} surplus forecast {span}"))
        if level in run.scenario_tables:
            name = scenario.name if scenario is not None else "scenario"
            files.append(_csv(run.scenario_tables[level], out_dir / f"scenario-{level}.csv"))
            files.append(_csv(run.difference_tables[level], out_dir / f"scenario-difference-{level}.csv"))
            files.append(
                plot_level(
                    run.scenario_tables[level],
                    out_dir / f"scenario-{level}.png",
                    f"{en} surplus under {name} {span}",
                )
            )
    if run.settlement is not None:
        files.append(_csv(run.settlement, out_dir / "settlement.csv"))
    if run.scores is not None and run.summary is not None:
        files.append(_csv(run.scores, out_dir / "backtest.csv"))
        files.append(_csv(run.summary.reset_index(), out_dir / "backtest-summary.csv"))
    table = None
    if run.loss_scores is not None and run.loss_summary is not None:
        files.append(_csv(run.loss_scores, out_dir / "loss-risk-backtest.csv"))
        files.append(
            _csv(
                run.loss_summary.rename_axis("cells").reset_index(),
                out_dir / "loss-risk-backtest-summary.csv",
            )
        )
        table = reliability(run.loss_scores["p_loss_calibrated"], run.loss_scores["lost"])
        files.append(
            _csv(table.rename_axis("probability").reset_index(), out_dir / "loss-risk-reliability.csv")
        )
    if run.loss_risk is not None:
        files.append(_csv(run.loss_risk, out_dir / "loss-risk.csv"))
        title = f"DRG × department loss risk {span}" + ("" if table is None else "; backtest reliability")
        files.append(plot_loss_risk(run.loss_risk, table, out_dir / "loss-risk.png", title))
    return files


def _csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False, encoding="utf-8-sig")  # with a BOM so Excel shows the Chinese right
    return path
