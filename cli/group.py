"""``caselens group``: run the CHS-DRG grouper over a case file or the case store."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from casemix.engine import GROUPER_INPUT_COLUMNS, CasemixEngine
from casemix.grouper import OUTPUT_COLUMNS
from casemix.payment import PRICING_INPUT_COLUMNS, PaymentRules
from casemix.rw_table import ESTIMATED
from casemix.tables import load_tables
from cli.progress import progress_bar
from contract.errors import InputError, NotFound
from contract.fields import FIELD_BY_NAME, labels_as_categories, los_days
from pipelines.casefile import read_case_columns, system_memory, write_beside
from pipelines.readers import read_parquet_typed, read_table
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address
from pipelines.store import read_cases

console = Console()
PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


def group(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="case store folder, Parquet, or CSV/TSV (canonical or test-case columns)"
    ),
    output: Path = typer.Option(..., "-o", "--output", help="output file: .csv, .tsv or .parquet"),
    tables: Path | None = typer.Option(None, "--tables", help="grouping tables folder (default: configured)"),
    translate_codes: bool = typer.Option(
        False, "--translate-codes", help="map other code versions through diagnosis_map/procedure_map first"
    ),
    payment: Path | None = typer.Option(
        None, "--payment", help="payment rules TOML: also price the cases (needs canonical cost columns)"
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="RW table CSV for --payment (default: calibrate from the cases)"
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Group cases into MDC / ADRG / DRG and write them with status, reason, mdc, adrg, drg.

    INPUT holds either the canonical columns (principal_diagnosis, other_diagnoses,
    principal_procedure, other_procedures, sex, age_years, age_days, birth_weight_g) or the reference
    test-case columns (diagnoses and procedures '|'-separated, principal first). The output keeps the
    input columns and adds the grouper's (mcc_count and cc_count included). Invalid and ungroupable
    cases are kept, with the reason. With --payment the payment columns are added as well.

    Parquet to Parquet, only the columns grouping and pricing read go through pandas; the others are
    copied from the input row group by row group (the same file, faster, less memory). The columns
    grouping and pricing read are read whole, not streamed: weights calibrated from the cases (no RW
    table), the readmission rule and a budget's point value look across all cases, so pricing row
    group by row group would not give the same result.

    On a Dask cluster (--scheduler) INPUT must be the case store and OUTPUT is a Parquet folder, one
    file per partition; the rows are those of the in-process run (docs/dask.md).
    """
    address = scheduler_address(scheduler)
    if address is not None:
        _group_on_cluster(address, input_path, output, tables, translate_codes, payment, weights)
        return
    if output.suffix.lower() not in (*PARQUET_SUFFIXES, *TEXT_SUFFIXES):
        raise InputError(f"{output}: the output must end in .csv, .tsv or .parquet")
    # Copy-on-write for the whole command: adding columns to a wide case frame (grouping, then the
    # payment columns) no longer copies every input column, which cost more than the pricing itself.
    # Arrow on the system allocator: see ``system_memory``.
    with pd.option_context("mode.copy_on_write", True), system_memory(), progress_bar() as bar:
        task = bar.add_task("group", total=4 if payment else 3)
        arrow = _parquet_to_parquet(input_path, output)
        if arrow:  # Parquet to Parquet: only the columns grouping and pricing read go through pandas
            casefile, cases = read_case_columns(input_path, (*GROUPER_INPUT_COLUMNS, *PRICING_INPUT_COLUMNS))
        else:
            cases = _read(input_path)
        bar.advance(task)
        rules = PaymentRules.load(payment) if payment is not None else None
        # Priced cases are grouped as the rules say (歧义组 on or off); plain grouping is the reference's.
        engine = CasemixEngine(load_tables(tables), rules, weights, remember=False)  # one pass: no memo
        # To the Parquet writer the grouper's and pricing's labels go as their codes (categories).
        with labels_as_categories() if arrow else nullcontext():
            result = engine.grouped(cases, translate_codes=translate_codes)
            bar.advance(task)
            if rules is not None:
                result = _price(result, engine)
                bar.advance(task)
        if arrow:
            write_beside(casefile, cases, result, output, replaced=OUTPUT_COLUMNS)
        else:
            _write(result, output)
        bar.advance(task)
    _summary(result["status"].value_counts(), output)
    if payment is not None:
        source = result["weights_source"].iloc[0] if len(result) else ""
        console.print(
            f"priced with {payment}: DRG payment [bold]¥{result['drg_payment'].sum():,.0f}[/], "
            f"margin [bold]¥{result['margin'].sum():,.0f}[/]; weights: {source}"
        )
        if source == ESTIMATED:
            console.print(
                "[yellow]weights estimated from own history (no insurer RW table): payment and margin "
                "are estimates[/]"
            )


def _parquet_to_parquet(source: Path, output: Path) -> bool:
    return (
        source.is_file()
        and source.suffix.lower() in PARQUET_SUFFIXES
        and output.suffix.lower() in PARQUET_SUFFIXES
    )


def _group_on_cluster(
    address: str,
    store: Path,
    output: Path,
    tables: Path | None,
    translate_codes: bool,
    payment: Path | None,
    weights: Path | None,
) -> None:
    from pipelines.cluster import connect
    from pipelines.cluster_casemix import group_store

    if not store.is_dir():
        raise InputError(f"{store}: on a Dask cluster INPUT is the case store folder")
    rules = PaymentRules.load(payment) if payment is not None else None
    with connect(address) as client, progress_bar() as bar:
        task = bar.add_task("group on the Dask cluster", total=1)
        found = group_store(
            client,
            output,
            store_dir=store,
            tables=tables,
            rules=rules,
            weights_path=weights,
            translate_codes=translate_codes,
        )
        bar.advance(task)
    _summary(found.status_counts, output)
    if rules is not None:
        console.print(
            f"priced with {payment}: DRG payment [bold]¥{found.drg_payment:,.0f}[/], "
            f"margin [bold]¥{found.margin:,.0f}[/]; weights: {found.weights_source}"
        )
    console.print(f"{found.partitions} partitions on the cluster → {output}/part.*.parquet")


def _read(path: Path) -> pd.DataFrame:
    """Cases from a store folder in canonical dtypes, from Parquet in its own types, from text as text."""
    if path.is_dir():
        return read_cases(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file or store folder")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return read_parquet_typed(path)
    return read_table(path).frame


def _price(cases: pd.DataFrame, engine: CasemixEngine) -> pd.DataFrame:
    """Add the payment columns and ``weights_source`` (the insurer's table or an estimate from the cases'
    own history); text columns of the contract are first given their canonical types."""
    cases = _typed(cases)
    if "los_days" not in cases and {"admission_date", "discharge_date"} <= set(cases.columns):
        cases["los_days"] = los_days(cases["admission_date"], cases["discharge_date"])
    return engine.price_labelled(cases)


def _typed(cases: pd.DataFrame) -> pd.DataFrame:
    """Contract date, number and yes/no columns read as text, converted; a bad value names its row and
    column: "false" must not count as true, as any non-empty text would."""
    converted = {}
    for name in cases.columns:
        field = FIELD_BY_NAME.get(name)
        if field is None or field.kind not in ("date", "float", "int", "bool") or not _is_text(cases[name]):
            continue
        if field.kind == "bool":
            converted[name] = _flags(cases[name])
            continue
        text = cases[name].astype(object).where(cases[name].notna() & (cases[name] != ""), None)
        parse = pd.to_datetime if field.kind == "date" else pd.to_numeric
        parsed = parse(text, errors="coerce")
        bad = parsed.isna().to_numpy() & text.notna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            kind = "date" if field.kind == "date" else "number"
            value, count = text.iloc[first], int(bad.sum())
            raise InputError(f"row {cases.index[first]}: {name} {value!r} is not a {kind} ({count} rows)")
        converted[name] = parsed
    return cases.assign(**converted)


def _flags(column: pd.Series) -> pd.Series:
    """A yes/no column from its text (true/false, 1/0, yes/no, ...); blank is missing."""
    from pipelines.mapping import BOOLEAN_TEXT  # (imports pandera: 0.25 s a Parquet run does not need)

    text = column.astype(object).where(column.notna(), "").astype(str).str.strip().str.lower()
    flags = text.map(BOOLEAN_TEXT)
    bad = flags.isna() & (text != "")
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"row {column.index[first]}: {column.name} {column.iloc[first]!r} is not a yes/no value "
            f"({int(bad.sum())} rows)"
        )
    return flags.astype("boolean")


def _is_text(column: pd.Series) -> bool:
    return column.dtype == object or pd.api.types.is_string_dtype(column)


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", index=False, encoding="utf-8")


def _summary(counts: pd.Series, output: Path) -> None:
    """The cases per status (``counts``, by status name) and the grouping rate."""
    table = Table(title="Grouping")
    table.add_column("status")
    table.add_column("cases", justify="right")
    for name in ("grouped", "ungroupable", "invalid"):
        table.add_row(name, f"{int(counts.get(name, 0)):,}")
    console.print(table)
    total = int(counts.sum())
    rate = counts.get("grouped", 0) / total if total else 0.0
    console.print(f"grouping rate (入组率) [bold]{rate:.1%}[/] of {total:,} cases → [bold]{output}[/]")
