"""``caselens casemix``: relative weights, DRG payment and the casemix report (CMI, CCI, TCI, surplus)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from casemix.engine import CasemixEngine
from casemix.indicators import casemix_indicators
from casemix.rw_table import ESTIMATED, TEMPLATE, weights_source, write_weights
from casemix.settlement import monthly_prepayment, settle_year
from cli.progress import progress_bar
from contract.errors import InputError, NotFound
from contract.fields import FIELD_BY_NAME, los_days
from contract.settings import get_settings
from pipelines.scheduler import SCHEDULER_HELP, in_process_note, scheduler_address
from pipelines.store import read_cases

app = typer.Typer(
    help="Relative weights, DRG payment and casemix indicators over the case store.",
    no_args_is_help=True,
)
console = Console()


class By(StrEnum):
    department = "department"
    drg = "drg"
    hospital = "hospital"


class PeriodOption(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


GROUP_KEYS: dict[By, tuple[str, ...]] = {
    By.department: ("hospital_id", "department"),
    By.drg: ("hospital_id", "drg"),
    By.hospital: ("hospital_id",),
}
SHOWN_ROWS = 40
SHOWN_COLUMNS = {
    "cases": "cases",
    "grouping_rate": "grouped",
    "cmi": "CMI",
    "cci": "CCI",
    "tci": "TCI",
    "payment": "payment",
    "surplus": "surplus",
    "surplus_rate": "surplus %",
    "high_share": "high",
    "low_share": "low",
    "overrun_share": "overrun",
}
SETTLEMENT_SHOWN = {
    "charges": "charges",
    "drg_due": "DRG payment due",
    "balance_rate": "结算差额率",
    "patient_share": "patients' share",
    "fund_due": "fund due",
    "surplus_kept": "surplus kept 结余留用",
    "surplus_withheld": "surplus not paid",
    "overrun_shared": "overrun shared 超支分担",
    "quality_withheld": "quality reserve withheld",
    "quality_returned": "quality reserve returned",
    "review_deductions": "review deductions",
    "fund_final": "fund final",
    "prepaid": "prepaid 预拨",
    "cleared": "cleared 清算",
    "settled_margin": "margin after settlement",
}
SETTLEMENT_SHOWN_YEARS = 4
SOURCE_LABELS = {
    "drg": "on their own cases",
    "adrg": "from their ADRG (非稳定组)",
    "shrunk": "shrunk towards the mean",
}

StoreOption = typer.Option(
    None, "--store", help="canonical case store folder (default: the configured store)"
)
InputOption = typer.Option(
    None, "--input", help="a canonical cases file (Parquet or CSV) instead of the store"
)
PaymentOption = typer.Option(
    None, "--payment", help="payment rules TOML (default: configured, else embedded)"
)
RwTableOption = typer.Option(
    None,
    "--rw-table",
    "--weights",
    help="the insurer's RW table CSV (default: the payment rules' rw_table, else estimated from the cases)",
)


@app.command("report")
def report(
    store: Path | None = StoreOption,
    input_file: Path | None = InputOption,
    by: By = typer.Option(By.department, "--by", help="one row per department, DRG or hospital"),
    period: PeriodOption = typer.Option(PeriodOption.quarter, "--period", help="discharge period of a row"),
    rw_table: Path | None = RwTableOption,
    payment: Path | None = PaymentOption,
    output: Path | None = typer.Option(
        None, "-o", "--output", help="report CSV (default: <data_dir>/reports/)"
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Group, price and report cases: CMI, CCI, TCI, payment, surplus, outlier shares.

    One row per department, DRG or hospital and discharge month, quarter or year, with case count,
    grouping rate, CMI, cost and time consumption indices, payment, cost, surplus and surplus rate,
    high/low outlier and overrun shares, and ``weights_source``: "insurer table" or "estimated from own
    history". Weights are the insurer's RW table (--rw-table, else the rules' rw_table); without one
    they are estimated from the cases themselves and written next to the report.

    On a Dask cluster (--scheduler; the store only) every partition is grouped, priced and summed
    there and only the per-group sums come back (docs/dask.md).
    """
    output = output or get_settings().data_dir / "reports" / f"casemix-{by.value}-{period.value}.csv"
    address = scheduler_address(scheduler)
    if address is not None:
        if input_file is not None:
            raise InputError("--input is read in this process: on a Dask cluster the report reads the store")
        _report_on_cluster(address, store, by, period, rw_table, payment, output)
        return
    with progress_bar() as bar:
        task = bar.add_task("casemix report", total=5)
        engine, grouped = _grouped(payment, rw_table, store, input_file, lambda: bar.advance(task))
        rules = engine.rules
        table = engine.weights(grouped)
        source = weights_source(table)
        if engine.rw_table is None:
            rw_table = write_weights(table, output.with_name(f"{output.stem}-weights.csv"))
        bar.advance(task)
        priced = engine.price(grouped, table)
        bar.advance(task)
        indicators = casemix_indicators(priced, by=GROUP_KEYS[by], period=period.value)
        indicators["weights_source"] = source
        output.parent.mkdir(parents=True, exist_ok=True)
        indicators.to_csv(output, index=False, encoding="utf-8")
        bar.advance(task)
    _print_indicators(indicators, f"Casemix by {by.value} and {period.value} ({rules.name})")
    shown = rw_table or rules.calibration.rw_table
    label = _weights_label(source)
    console.print(f"{len(priced):,} cases · weights: {label} [bold]{shown}[/] · report [bold]{output}[/]")


class DriverLevel(StrEnum):
    department = "department"
    hospital = "hospital"


class Language(StrEnum):
    en = "en"
    zh = "zh"


@app.command("drivers")
def drivers(
    store: Path | None = StoreOption,
    input_file: Path | None = InputOption,
    by: DriverLevel = typer.Option(
        DriverLevel.department,
        "--by",
        help="cells of DRG × department, or DRG × hospital (then against a --reference)",
    ),
    period: PeriodOption = typer.Option(PeriodOption.quarter, "--period", help="discharge period of a cell"),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="regional reference CSV: mean cost per case by charge group per drg [and period] "
        "(default: the DRG's mean across the hospital)",
    ),
    rw_table: Path | None = RwTableOption,
    payment: Path | None = PaymentOption,
    top: int = typer.Option(10, "--top", min=1, max=100, help="cells ranked, sentenced and charted"),
    min_cases: int = typer.Option(5, "--min-cases", min=1, help="fewest cases a ranked cell has"),
    lang: Language = typer.Option(Language.en, "--lang", help="language of the printed sentences"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="folder for the CSVs and charts (default: <data_dir>/drivers)"
    ),
    track: bool = typer.Option(True, "--track/--no-track", help="log the run and its files to MLflow"),
) -> None:
    """Where the money goes: each DRG cell's cost gap to its benchmark, by charge group and case feature.

    For every DRG × department (or hospital) × period: cases, payment, cost, surplus and the gap to the
    DRG's benchmark (its mean across the hospital in the period, or --reference), decomposed by charge
    group and by the SHAP values of a discharge-stage cost model; both add up to the gap. The cells
    whose gap costs most are ranked, each with a sentence and a chart; the service serves the latest run.
    """
    from pipelines.drivers import read_reference, run_drivers, track_run

    output = output or get_settings().data_dir / "drivers"
    with progress_bar() as bar:
        task = bar.add_task("cost drivers", total=7)
        engine, grouped = _grouped(payment, rw_table, store, input_file, lambda: bar.advance(task))
        regional = read_reference(reference) if reference is not None else None
        priced = engine.price(grouped, engine.weights(grouped))
        bar.advance(task)

        def step(what: str) -> None:
            bar.update(task, description=f"cost drivers: {what}")
            bar.advance(task)

        run = run_drivers(
            priced,
            output,
            level=by.value,
            period=period.value,
            reference=regional,
            min_cases=min_cases,
            top=top,
            names=engine.tables.drg_name,
            step=step,
        )
        if track:
            params = {"by": by.value, "period": period.value, "reference": str(reference), "top": top}
            run.meta["mlflow_run_id"] = track_run(run, output, {**params, "min_cases": min_cases})
        bar.advance(task)
    shown = Table(title=f"Cost drivers by DRG × {by.value} × {period.value}: cells over their benchmark")
    for column in ("#", "DRG", *(["department"] if by == DriverLevel.department else []), "period"):
        shown.add_column(column)
    for column in ("cases", "cost/case", "benchmark", "gap"):
        shown.add_column(column, justify="right")
    for row in run.cells.to_dict("records"):
        place = [row["department"]] if by == DriverLevel.department else []
        shown.add_row(
            str(row["rank"]),
            row["drg"],
            *place,
            row["period"],
            f"{row['cases']:,}",
            _money(row["cost_per_case"]),
            _money(row["benchmark_per_case"]),
            _money(row["gap_total"]),
        )
    console.print(shown)
    for text in run.cells[f"sentence_{lang.value}"]:
        console.print(f"• {text}")
    tracked = f" · MLflow run {run.meta['mlflow_run_id']}" if track else ""
    console.print(
        f"{run.meta['cells']:,} cells, {run.meta['cells_over']:,} over their benchmark by "
        f"{_money(float(run.meta['gap_over_total']))} · files [bold]{output}[/]{tracked}"
    )


@app.command("settlement")
def settlement(
    store: Path | None = StoreOption,
    input_file: Path | None = InputOption,
    rw_table: Path | None = RwTableOption,
    payment: Path | None = PaymentOption,
    quality_score: list[str] = typer.Option(
        [], "--quality-score", help="HOSPITAL=SCORE: the year's quality score out of 100 (default 100)"
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="settlement CSV (default: <data_dir>/reports/)"
    ),
) -> None:
    """The hospital's settlement as the insurer computes it, per hospital and discharge year.

    DRG payment due vs charges (结算差额率), the fund's and the patients' shares, surplus kept and
    withheld (结余留用), overrun shared (超支分担), quality reserve withheld and returned (质量保证金),
    review deductions, the fund's final payment, what the months prepaid (预拨) and what the year
    clears (清算). The monthly prepayments are written next to it (``-months.csv``).

    Runs in this process, not on a Dask cluster (docs/dask.md).
    """
    _note_in_process("casemix settlement")
    output = output or get_settings().data_dir / "reports" / "casemix-settlement.csv"
    with progress_bar() as bar:
        task = bar.add_task("settlement", total=5)
        scores = _scores(quality_score)
        engine, grouped = _grouped(payment, rw_table, store, input_file, lambda: bar.advance(task))
        rules = engine.rules
        table = engine.weights(grouped)
        bar.advance(task)
        priced = engine.price(grouped, table)
        bar.advance(task)
        year = settle_year(priced, rules, scores)
        months = monthly_prepayment(priced, rules)
        output.parent.mkdir(parents=True, exist_ok=True)
        year.to_csv(output, index=False, encoding="utf-8")
        months.to_csv(output.with_name(f"{output.stem}-months.csv"), index=False, encoding="utf-8")
        bar.advance(task)
    shown = Table(title=f"Settlement by hospital and year ({rules.name})")
    shown.add_column("")
    rows = year.tail(SETTLEMENT_SHOWN_YEARS).to_dict("records")  # one column each: fits a terminal
    for row in rows:
        shown.add_column(f"{row['hospital_id'] or ''} {row['year']}".strip(), justify="right")
    for column, label in SETTLEMENT_SHOWN.items():
        shown.add_row(
            label,
            *[_cell(r[column], column) if column == "balance_rate" else _money(r[column]) for r in rows],
        )
    console.print(shown)
    label = _weights_label(weights_source(table))
    console.print(f"{len(priced):,} cases · weights: {label} · settlement [bold]{output}[/]")


@app.command("weights")
def weights_command(
    store: Path | None = StoreOption,
    input_file: Path | None = InputOption,
    payment: Path | None = PaymentOption,
    output: Path | None = typer.Option(
        None, "-o", "--output", help="RW table CSV (default: <data_dir>/weights.csv)"
    ),
) -> None:
    """Estimate relative weights (RW) per DRG from the cases' own history and write an editable CSV.

    The fallback when the insurer's RW table is not at hand (its format: the template printed by
    ``caselens casemix rw-template``). Also the standard cost and length of stay per DRG, which the
    consumption indices compare with. Trimming, 非稳定组 and the adjustment step come from the
    calibration section of the payment rules; the rules' rw_table is not read here.

    Runs in this process, not on a Dask cluster (docs/dask.md).
    """
    _note_in_process("casemix weights")
    output = output or get_settings().data_dir / "weights.csv"
    with progress_bar() as bar:
        task = bar.add_task("calibrate weights", total=3)
        engine, grouped = _grouped(payment, None, store, input_file, lambda: bar.advance(task))
        table = engine.calibrate(grouped)
        write_weights(table, output)
        bar.advance(task)
    sources = table["source"].value_counts().to_dict()
    counts = ", ".join(f"{sources.get(k, 0)} {label}" for k, label in SOURCE_LABELS.items())
    unweighted = grouped.loc[grouped["status"].eq("grouped"), "drg"].nunique() - len(table)
    console.print(
        f"{len(table)} DRGs {ESTIMATED} from {int(table['n_cases'].sum()):,} kept cases ({counts}; "
        f"{unweighted} unstable without weight, paid by item) → [bold]{output}[/]"
    )


@app.command("rw-template")
def rw_template(
    output: Path = typer.Option(Path("rw_table.csv"), "-o", "--output", help="where to copy the template"),
) -> None:
    """Write the documented RW table template: the format of the insurer's table caselens reads."""
    if output.exists():
        raise InputError(f"{output} exists: not overwritten")
    output.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    console.print(f"RW table template → [bold]{output}[/] (name it in [calibration] rw_table or --rw-table)")


def _report_on_cluster(
    address: str,
    store: Path | None,
    by: By,
    period: PeriodOption,
    rw_table: Path | None,
    payment: Path | None,
    output: Path,
) -> None:
    from pipelines.cluster import connect
    from pipelines.cluster_casemix import report_store

    engine = CasemixEngine.from_settings(rules=payment)
    rules = engine.rules
    if rw_table is not None:
        rules = rules.model_copy(
            update={"calibration": rules.calibration.model_copy(update={"rw_table": rw_table})}
        )
    with connect(address) as client, progress_bar() as bar:
        task = bar.add_task("casemix report on the Dask cluster", total=1)
        indicators, table = report_store(client, rules, GROUP_KEYS[by], period.value, store_dir=store)
        bar.advance(task)
    source = weights_source(table)
    indicators["weights_source"] = source
    if rules.calibration.rw_table is None:
        named = table.assign(name=[engine.tables.drg_name(drg) for drg in table.index])
        rw_table = write_weights(named, output.with_name(f"{output.stem}-weights.csv"))
    output.parent.mkdir(parents=True, exist_ok=True)
    indicators.to_csv(output, index=False, encoding="utf-8")
    _print_indicators(indicators, f"Casemix by {by.value} and {period.value} ({rules.name})")
    shown = rw_table or rules.calibration.rw_table
    cases = int(indicators["cases"].sum())
    label = _weights_label(source)
    console.print(f"{cases:,} cases · weights: {label} [bold]{shown}[/] · report [bold]{output}[/]")


def _grouped(
    payment: Path | None,
    rw_table: Path | None,
    store: Path | None,
    input_file: Path | None,
    advance: Callable[[], None],
) -> tuple[CasemixEngine, pd.DataFrame]:
    """The casemix engine of the payment rules (and the RW table given) and the cases grouped by it:
    what every casemix command starts from."""
    engine = CasemixEngine.from_settings(rules=payment, weights=rw_table)
    cases = _load_cases(store, input_file)
    advance()
    grouped = engine.grouped(cases)
    if "hospital_id" not in grouped.columns:
        grouped["hospital_id"] = None
    advance()
    return engine, grouped


def _note_in_process(step: str) -> None:
    note = in_process_note(step)
    if note:
        console.print(f"[yellow]{note}[/]")


def _weights_label(source: str) -> str:
    """The weights' source as the commands print it: an estimate stands out and says what to do."""
    if source == ESTIMATED:
        return f"[yellow]{source}[/] (an estimate: give the insurer's RW table)"
    return source


def _scores(pairs: list[str]) -> dict[str, float]:
    """--quality-score HOSPITAL=SCORE options as a mapping."""
    scores = {}
    for pair in pairs:
        hospital, _, score = pair.partition("=")
        try:
            scores[hospital] = float(score)
        except ValueError:
            raise InputError(f"--quality-score {pair!r}: expected HOSPITAL=SCORE, e.g. H1=92") from None
    return scores


def _money(value: float) -> str:
    return f"{'-' if value < 0 else ''}¥{abs(value):,.0f}"


def _load_cases(store: Path | None, input_file: Path | None) -> pd.DataFrame:
    """Canonical cases from a file given with --input, else from the store."""
    if store is not None and input_file is not None:
        raise InputError("give --store or --input, not both")
    if input_file is not None:
        return _read_input(input_file)
    return read_cases(store)


def _read_input(path: Path) -> pd.DataFrame:
    """A canonical cases file: Parquet as stored, or CSV with the contract's dates parsed; ``los_days``
    is derived as ingestion does when the file lacks it."""
    if not path.exists():
        raise NotFound(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            header = pd.read_csv(path, nrows=0, encoding="utf-8").columns
            dates = [c for c in header if c in FIELD_BY_NAME and FIELD_BY_NAME[c].kind == "date"]
            text = [c for c in header if c in FIELD_BY_NAME and FIELD_BY_NAME[c].kind in ("str", "codes")]
            frame = pd.read_csv(path, parse_dates=dates, dtype=dict.fromkeys(text, str), encoding="utf-8")
            frame[text] = frame[text].astype(object).where(frame[text].notna(), None)
    except (ValueError, OSError) as error:  # not Parquet, not UTF-8 CSV, unreadable
        raise InputError(f"{path}: cannot read the cases: {error}") from None
    if "los_days" not in frame.columns and {"admission_date", "discharge_date"} <= set(frame.columns):
        frame["los_days"] = los_days(frame["admission_date"], frame["discharge_date"])
    return frame


def _print_indicators(indicators: pd.DataFrame, title: str) -> None:
    keys = [c for c in ("hospital_id", "department", "drg", "period") if c in indicators.columns]
    if "hospital_id" in keys and len(keys) > 1 and indicators["hospital_id"].nunique(dropna=False) == 1:
        keys.remove("hospital_id")
    table = Table(title=title)
    for column in keys:
        table.add_column(column.removesuffix("_id"))
    for header in SHOWN_COLUMNS.values():
        table.add_column(header, justify="right")
    for row in indicators.head(SHOWN_ROWS).to_dict("records"):
        table.add_row(*[_cell(row[c], c) for c in [*keys, *SHOWN_COLUMNS]])
    console.print(table)
    if len(indicators) > SHOWN_ROWS:
        console.print(f"… {len(indicators) - SHOWN_ROWS:,} more rows in the CSV")


def _cell(value: object, column: str) -> str:
    if pd.isna(value):
        return "—"
    if column in ("payment", "surplus"):
        return _money(value)
    if column.endswith(("_rate", "_share")):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
