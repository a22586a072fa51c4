"""``caselens watch``: the ward watch list of a day (在院预警), as CSV."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from contract.settings import get_settings

console = Console()
SHOWN_ROWS = 25


def watch(
    as_of: datetime = typer.Option(..., "--as-of", formats=["%Y-%m-%d"], help="the day whose end to watch"),
    department: str | None = typer.Option(None, "--department", help="only this department"),
    out: Path | None = typer.Option(None, "-o", "--out", help="CSV path (default: <data_dir>/reports/...)"),
    watch_ratio: float | None = typer.Option(
        None, help="watch: charges to date at this share of the standard [default: rules' overrun.watch]..."
    ),
    watch_probability: float = typer.Option(0.5, help="...or an overrun probability at least this"),
    overrun_ratio: float | None = typer.Option(
        None,
        help="overrun: charges to date, or the predicted final cost, at this share of the standard "
        "[default: rules' overrun.threshold]",
    ),
) -> None:
    """Every stay in hospital at the end of --as-of, ranked by expected overrun (probability × amount
    above the pre-grouped DRG's payment standard), with its warning level and top reasons. The ratios
    default to the payment rules' [overrun] section (watch 0.90, threshold 1.10).

    Uses the `champion` of caselens-instay and the store's charges and in-stay records
    (`caselens ingest FILE --kind charges|inpatients`).
    """
    from casemix.payment import PaymentRules
    from models.watch_list import WarningPolicy
    from pipelines.watch import champion, watch_day, write_watch

    settings = get_settings()
    rules = WarningPolicy.from_rules(PaymentRules.load(settings.payment_config), watch_probability)
    policy = WarningPolicy(
        watch_ratio or rules.watch_ratio, overrun_ratio or rules.overrun_ratio, watch_probability
    )
    day = pd.Timestamp(as_of).normalize()
    with progress_bar() as bar:
        step = bar.add_task("scoring the stays in hospital", total=2)
        model = champion(settings.mlflow_uri)
        bar.advance(step)
        found = watch_day(model, day, department, policy)
        bar.advance(step)
    target = write_watch(found, day, department, settings.data_dir / "reports", out)
    _show(found, day)
    console.print(f"wrote {len(found):,} stays to {target}")


def _show(found: pd.DataFrame, day: pd.Timestamp) -> None:
    counts = found["warning_level"].value_counts()
    title = (
        f"watch list {day:%Y-%m-%d}: {len(found):,} in hospital, "
        f"{counts.get('overrun', 0)} overrun, {counts.get('watch', 0)} watch"
    )
    table = Table(title=title)
    for name in ("#", "case", "department", "day", "to date", "DRG", "ratio", "final (80%)", "P", "level"):
        table.add_column(name, justify="left" if name in ("case", "department", "DRG", "level") else "right")
    colour = {"overrun": "red", "watch": "yellow", "none": "green"}
    for row in found.head(SHOWN_ROWS).itertuples(index=False):
        table.add_row(
            str(row.rank),
            str(row.case_id),
            str(row.department),
            str(row.day_of_stay),
            f"{row.cost_to_date:,.0f}",
            str(row.pregrouped_drg),
            f"{row.ratio_to_date:.0%}" if pd.notna(row.ratio_to_date) else "—",
            f"{row.predicted_final_cost:,.0f} ({row.final_cost_lower:,.0f}–{row.final_cost_upper:,.0f})",
            f"{row.overrun_probability:.2f}",
            f"[{colour[row.warning_level]}]{row.warning_level}[/]",
        )
    console.print(table)
