"""``caselens forecast``: quarterly DRG surplus forecasts with intervals, scenarios and a backtest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from contract.settings import get_settings
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address

if TYPE_CHECKING:
    from pipelines.forecast import ForecastRun

app = typer.Typer(
    help="Quarterly DRG surplus forecasts for the hospital, departments and top DRGs.", no_args_is_help=True
)
console = Console()
STEPS = ("load cases", "group and price", "forecast", "backtest", "write tables and charts", "log to MLflow")


@app.command("surplus")
def surplus(
    horizon: int = typer.Option(4, "--horizon", min=1, max=12, help="quarters to forecast"),
    scenario: Path | None = typer.Option(None, "--scenario", help="scenario TOML (base rate, volume, cost)"),
    store: Path | None = typer.Option(
        None, "--store", help="case store folder (default: the configured store)"
    ),
    payment: Path | None = typer.Option(None, "--payment", help="payment rules TOML (default: configured)"),
    weights: Path | None = typer.Option(
        None, "--weights", help="RW table CSV (default: calibrate on history)"
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="folder (default: <data_dir>/forecast)"),
    draws: int = typer.Option(500, "--draws", min=50, help="simulation draws"),
    seed: int = typer.Option(0, "--seed", help="random seed: same seed, same intervals"),
    origins: int = typer.Option(6, "--origins", min=0, help="backtest origins (last quarters); 0 skips it"),
    top: int = typer.Option(10, "--top", min=1, help="DRGs shown: the N busiest and the N losing most"),
    track: bool = typer.Option(True, "--track/--no-track", help="log the run to MLflow"),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help=SCHEDULER_HELP + "; the store is read, grouped and priced there, the forecast runs here on "
        "the priced cases' pricing columns",
    ),
) -> None:
    """Forecast case volume, DRG payment, cost and surplus (payment − cost) for HORIZON quarters.

    Volume per department × ADRG comes from seasonal models (statsforecast MSTL with an AutoETS
    trend; for sparse or short series, same quarter last year grown by the department's growth);
    payment re-prices recent cases at the base rate in force in each forecast quarter; cost and
    payment per case follow each department's index. 80% and 95% intervals come from simulation,
    widened by the factor the backtest finds. Writes a CSV and a PNG per level (hospital, department, top
    DRGs), the scenario and its difference when --scenario is given, and the rolling-origin backtest
    beside seasonal-naive and last-quarter baselines; logs all of it to MLflow (caselens-forecast).

    On a Dask cluster (--scheduler; docs/dask.md) every stay is read, grouped and priced per partition
    there (weights calibrated once on all of them, the readmission rule after a shuffle by patient).
    Only the priced cases' pricing columns come back (no codes or text: about 1.1 kB a stay held here,
    against about 3 kB in-process) and the forecast runs here on them, giving the in-process tables.
    Re-pricing history at future rates re-applies the rules across cases, so every stay's pricing
    columns must fit this process (there is no sampling: a sample would forecast a smaller hospital).
    A point value closing a budget over the cases' own points is refused there.
    """
    from casemix.payment import PaymentRules
    from contract.errors import InputError
    from models.forecast import load_scenario
    from pipelines import forecast as pipeline
    from pipelines.store import read_cases

    settings = get_settings()
    out_dir = output or settings.data_dir / "forecast"
    chosen = load_scenario(scenario) if scenario is not None else None
    with progress_bar() as bar:
        task = bar.add_task(STEPS[0], total=len(STEPS))

        def step(name: str) -> None:
            bar.update(task, description=name, completed=STEPS.index(name))

        rules = PaymentRules.load(payment or settings.payment_config)
        address = scheduler_address(scheduler)
        if address is None:
            cases = read_cases(store)
            step("group and price")
            history = pipeline.price_history(cases, rules, weights)
        else:
            from pipelines.cluster import connect
            from pipelines.cluster_forecast import price_history_on_cluster

            step("group and price")
            with connect(address) as client:
                history = price_history_on_cluster(client, rules, weights, store_dir=store)
        if chosen is not None and (unknown := chosen.unmatched(history.cases)):
            raise InputError(f"scenario {scenario}: no case has {', '.join(unknown)}")
        run = pipeline.run_surplus_forecast(
            history,
            horizon,
            out_dir,
            scenario=chosen,
            n_draws=draws,
            seed=seed,
            origins=origins,
            top=top,
            step=step,
        )
        if track:
            step("log to MLflow")
            params = {
                "horizon": horizon,
                "draws": draws,
                "seed": seed,
                "origins": origins,
                "top": top,
                "scenario": chosen.name if chosen else "none",
                "cases": len(history.cases),
            }
            run.run_id = pipeline.track_run(run, out_dir, params, settings)
        bar.update(task, completed=len(STEPS), description="done")
    _print(run, out_dir)


def _print(run: ForecastRun, out_dir: Path) -> None:
    hospital = run.tables["hospital"]
    table = Table(title="Hospital surplus forecast 全院结余预测 (yuan)")
    for column in ("quarter", "cases", "payment", "cost", "surplus", "80% interval", "95% interval"):
        table.add_column(column, justify="left" if column == "quarter" else "right")
    for row in hospital[hospital["kind"] == "forecast"].itertuples():
        table.add_row(
            row.quarter,
            f"{row.volume:,.0f}",
            f"{row.payment:,.0f}",
            f"{row.cost:,.0f}",
            f"{row.surplus:,.0f}",
            f"{row.surplus_lo80:,.0f} … {row.surplus_hi80:,.0f}",
            f"{row.surplus_lo95:,.0f} … {row.surplus_hi95:,.0f}",
        )
    console.print(table)
    _print_loss_risk(run)
    _print_settlement(run)
    if run.difference_tables:
        delta = run.difference_tables["hospital"]
        console.print(
            "Scenario − base, hospital surplus: "
            + ", ".join(f"{q} {v:+,.0f}" for q, v in zip(delta["quarter"], delta["surplus"], strict=True))
        )
    if run.summary is not None:
        summary = Table(title="Backtest, quarterly surplus 回测 (coverage: raw, calibrated)")
        columns = {
            "MAPE": "mape",
            "seas. naive": "mape_seasonal_naive",
            "naive": "mape_naive",
            "in 80%": "coverage80",
            "in 95%": "coverage95",
            "cal. 80%": "coverage80_calibrated",
            "cal. 95%": "coverage95_calibrated",
        }
        summary.add_column("level", min_width=10)
        for column in ("n", *columns):
            summary.add_column(column, justify="right")
        for level, row in run.summary.iterrows():
            summary.add_row(
                level,
                f"{row['n']:.0f}",
                *(_pct(row[c], 0 if c.startswith("coverage") else 1) for c in columns.values()),
            )
        console.print(summary)
    console.print(
        f"{len(run.files)} files in [bold]{out_dir}[/]"
        + (f" · MLflow run {run.run_id}" if run.run_id else "")
    )


def _print_loss_risk(run: ForecastRun, top: int = 10) -> None:
    """The cells most likely to cost money: probability of a loss per quarter and expected loss."""
    risk = run.loss_risk
    if risk is None or risk.empty:
        return
    quarters = list(dict.fromkeys(risk["quarter"]))
    how = "calibrated on the backtest" if run.loss_calibration is not None else "as simulated, uncalibrated"
    table = Table(title=f"DRG loss risk 亏损风险 (department × DRG, P(loss) {how})")
    drivers = "surplus change vs a year before (first quarter)"
    for column in ("#", "department", "DRG", *quarters, "expected loss", drivers):
        table.add_column(column, justify="left" if column in ("department", "DRG", drivers) else "right")
    for rank, cell in risk[risk["rank"] <= top].groupby("rank", sort=True):
        first = cell.iloc[0]
        table.add_row(
            str(rank),
            str(first["department"]),
            f"{first['drg']} {first['name'] if isinstance(first['name'], str) else ''}".strip(),
            *(f"{p:.0%}" for p in cell.set_index("quarter").reindex(quarters)["p_loss"]),
            f"{first['expected_loss_total']:,.0f}",
            ", ".join(
                f"{label} {first[column]:+,.0f}"
                for label, column in (
                    ("volume", "driver_volume"),
                    ("payment", "driver_payment_change"),
                    ("cost", "driver_cost_trend"),
                )
            ),
        )
    console.print(table)


def _print_settlement(run: ForecastRun) -> None:
    """Each year the forecast reaches, cleared as the insurer will (insured cases only)."""
    if run.settlement is None:
        console.print(f"[yellow]no settlement forecast:[/] {run.settlement_note}")
        return
    table = Table(title="Year-end settlement forecast 医保年终清算预测 (yuan, insured cases)")
    columns = (
        "year",
        "DRG due",
        "charges",
        "结算差额率",
        "结余留用",
        "超支分担",
        "fund final",
        "prepaid",
        "cleared",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "year" else "right")
    for row in run.settlement.itertuples():
        table.add_row(
            f"{row.year} ({row.quarters_actual}+{row.quarters_forecast}Q)",
            f"{row.drg_due:,.0f}",
            f"{row.charges:,.0f}",
            f"{row.balance_rate:+.1%} ({row.balance_rate_lo80:+.1%} … {row.balance_rate_hi80:+.1%})",
            f"{row.surplus_kept:,.0f}",
            f"{row.overrun_shared:,.0f}",
            f"{row.fund_final:,.0f}",
            f"{row.prepaid:,.0f}",
            f"{row.cleared:,.0f} ({row.cleared_lo80:,.0f} … {row.cleared_hi80:,.0f})",
        )
    console.print(table)


def _pct(value: float, digits: int = 1) -> str:
    return "—" if pd.isna(value) else f"{value:.{digits}%}"
