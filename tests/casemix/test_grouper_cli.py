"""``caselens group`` on small files: output columns, summary, clear errors, no case contents printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from casemix.engine import GROUPER_INPUT_COLUMNS, CasemixEngine
from casemix.grouper import REFERENCE_STATUS, Grouper
from casemix.payment import (
    DEFAULT_RULES,
    POINT_CITY_RULES,
    PRICED_COLUMNS,
    PRICING_INPUT_COLUMNS,
    PaymentRules,
    price_cases,
)
from casemix.tables import load_tables
from cli import group as group_command
from cli.app import app
from contract.fields import COST_CATEGORIES, los_days
from pipelines.casefile import (
    CODED_MAX_DICTIONARY_BYTES,
    _small_dictionaries,
    read_case_columns,
    write_beside,
)
from pipelines.readers import read_parquet_typed

REFERENCE_CASES = Path(__file__).parents[1] / "data" / "chs_drg_11_test_cases.tsv"
runner = CliRunner()


@pytest.fixture
def small_tsv(tmp_path: Path) -> Path:
    cases = pd.read_csv(REFERENCE_CASES, sep="\t", dtype=str, keep_default_na=False).head(120)
    path = tmp_path / "cases.tsv"
    cases.to_csv(path, sep="\t", index=False)
    return path


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".parquet"])
def test_group_writes_input_columns_plus_the_grouping(small_tsv: Path, tmp_path: Path, suffix: str) -> None:
    output = tmp_path / f"grouped{suffix}"
    result = runner.invoke(app, ["group", str(small_tsv), "-o", str(output)])
    assert result.exit_code == 0, result.output
    if suffix == ".parquet":
        grouped = pd.read_parquet(output)
    else:
        grouped = pd.read_csv(output, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    source = pd.read_csv(small_tsv, sep="\t", dtype=str, keep_default_na=False)
    assert list(grouped.columns[: len(source.columns)]) == list(source.columns)
    assert {"status", "reason", "mdc", "adrg", "drg"} <= set(grouped.columns)
    assert (grouped["status"].map(REFERENCE_STATUS) == source["expected_status"]).all()
    assert (grouped["drg"] == source["expected_drg"]).all()
    counts = grouped["status"].value_counts()
    assert "grouping rate" in result.output and f"{counts['grouped'] / len(grouped):.1%}" in result.output
    assert "C1-000000" not in result.output and "C02.100x001" not in result.output


def test_group_with_a_local_table_set(small_tsv: Path, tmp_path: Path) -> None:
    city = Path(shutil.copytree(load_tables().path, tmp_path / "city"))
    grouping = json.loads((city / "grouping.json").read_text(encoding="utf-8"))
    grouping["drgs"]["DR10"] = grouping["drgs"].pop("DR19")
    grouping["adrgs"]["DR1"]["drgs"] = [
        "DR10" if d == "DR19" else d for d in grouping["adrgs"]["DR1"]["drgs"]
    ]
    (city / "grouping.json").write_text(json.dumps(grouping, ensure_ascii=False), encoding="utf-8")
    output = tmp_path / "out.csv"
    result = runner.invoke(app, ["group", str(small_tsv), "-o", str(output), "--tables", str(city)])
    assert result.exit_code == 0, result.output
    grouped = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert grouped.loc[0, "expected_drg"] == "DR19" and grouped.loc[0, "drg"] == "DR10"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tsv", "-o", "out.csv"], "no such file"),
        (["{input}", "-o", "out.xlsx"], "must end in .csv, .tsv or .parquet"),
        (["{input}", "-o", "out.csv", "--tables", "nowhere"], "casemix tables folder not found"),
        (["{folder}", "-o", "out.csv"], "no case store at"),
    ],
)
def test_group_errors_are_one_red_line(
    small_tsv: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    argv = [a.format(input=small_tsv, folder=tmp_path) for a in args]
    argv = [
        str(tmp_path / a) if a.endswith((".csv", ".xlsx", ".tsv")) and a != str(small_tsv) else a
        for a in argv
    ]
    result = runner.invoke(app, ["group", *argv])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_group_rejects_a_file_without_case_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(path, index=False)
    result = runner.invoke(app, ["group", str(path), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 2 and "cases need the columns sex and age_years" in " ".join(
        result.output.split()
    )


def test_group_with_payment_adds_the_payment_columns(tmp_path: Path) -> None:
    cases = pd.read_csv(REFERENCE_CASES, sep="\t", dtype=str, keep_default_na=False).head(300)
    diagnoses, procedures = cases["diagnoses"].str.split("|", n=1), cases["procedures"].str.split("|", n=1)
    total = np.random.default_rng(0).uniform(2_000, 50_000, len(cases)).round(2)
    admitted = pd.Timestamp("2024-03-01")
    canonical = pd.DataFrame(
        {
            "department": "内科",
            "sex": cases["sex"],
            "age_years": cases["age_years"],
            "age_days": cases["age_days"],
            "birth_weight_g": cases["birth_weight_g"],
            "principal_diagnosis": diagnoses.str[0],
            "other_diagnoses": diagnoses.str[1],
            "principal_procedure": procedures.str[0],
            "other_procedures": procedures.str[1],
            "admission_date": admitted.strftime("%Y-%m-%d"),
            "discharge_date": (
                admitted + pd.to_timedelta(cases["los_days"].astype(int), unit="D")
            ).dt.strftime("%Y-%m-%d"),
            "total_cost": total,
            **{c: (total / len(COST_CATEGORIES)).round(2) for c in COST_CATEGORIES},
            "cost_negotiated_drugs": 0.0,
        }
    )
    source, output = tmp_path / "canonical.csv", tmp_path / "priced.parquet"
    canonical.to_csv(source, index=False)
    result = runner.invoke(app, ["group", str(source), "-o", str(output), "--payment", str(DEFAULT_RULES)])
    assert result.exit_code == 0, result.output
    priced = pd.read_parquet(output)
    # The default rules group with 歧义组 on: the reference's answer, but an OR procedure outside its
    # MDC's procedure ADRGs puts a case in the MDC's QY group instead of a medical ADRG.
    ambiguous = priced["drg"].str.endswith("QY")
    assert (priced.loc[~ambiguous, "drg"] == cases.loc[~ambiguous, "expected_drg"]).all()
    was = cases.loc[ambiguous]
    medical = (was["expected_mdc"] == priced.loc[ambiguous, "mdc"]) & was["expected_drg"].str[1].isin(
        list("RSTUVWXYZ")
    )
    assert (medical | (was["expected_drg"] == "0000")).all()  # a medical ADRG or ungroupable before
    assert (priced.loc[ambiguous, "payment_method"] == "by_item").all()
    assert {"rw", "drg_payment", "margin", "payment_method"} <= set(priced.columns)
    assert (priced.loc[priced["status"] != "grouped", "payment_method"] == "by_item").all()
    assert "DRG payment" in " ".join(result.output.split())
    assert (priced["weights_source"] == "insurer table").all()  # the default rules name the city's table
    assert "weights: insurer table" in " ".join(result.output.split())
    own = tmp_path / "own-history.toml"
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    lines = [x.replace('unstable = "adrg"', 'unstable = "shrink"') for x in text.splitlines()]
    own.write_text("\n".join(x for x in lines if not x.startswith("rw_table")), encoding="utf-8")
    result = runner.invoke(app, ["group", str(source), "-o", str(output), "--payment", str(own)])
    assert result.exit_code == 0, result.output
    assert (pd.read_parquet(output)["weights_source"] == "estimated from own history").all()
    assert "payment and margin are estimates" in " ".join(result.output.split())


def test_priced_readmissions_are_the_same_from_parquet_csv_and_in_process(
    demo_hospital, tmp_path: Path
) -> None:
    """Parquet is read in its own types and yes/no text is parsed: "false" once read as text counted as
    true, so no readmission was ever caught (a planned one is never caught)."""
    cases = demo_hospital.cases.drop(columns=["los_days"])
    rules = PaymentRules.load(DEFAULT_RULES)
    grouped = cases.assign(**Grouper.for_rules(rules).group_frame(cases))
    grouped["los_days"] = los_days(grouped["admission_date"], grouped["discharge_date"])
    expected = price_cases(grouped, rules, CasemixEngine(rules=rules).weights(grouped))["readmitted"]
    assert expected.sum() > 0
    parquet, csv = tmp_path / "cases.parquet", tmp_path / "cases.csv"
    cases.to_parquet(parquet, index=False)
    cases.to_csv(csv, index=False)
    for source in (parquet, csv):
        output = tmp_path / f"priced-{source.suffix[1:]}.parquet"
        result = runner.invoke(
            app, ["group", str(source), "-o", str(output), "--payment", str(DEFAULT_RULES)]
        )
        assert result.exit_code == 0, result.output
        priced = pd.read_parquet(output)
        assert priced["readmitted"].tolist() == expected.tolist(), source.suffix
    assert priced["drg"].tolist() == grouped["drg"].tolist()
    from_parquet = pd.read_parquet(tmp_path / "priced-parquet.parquet")
    assert pd.api.types.is_bool_dtype(from_parquet["readmission_plan_31d"])  # the input's own types
    assert from_parquet["admission_date"].dtype == "datetime64[ns]"


def test_a_bad_yes_no_value_names_row_and_column(demo_hospital, tmp_path: Path) -> None:
    cases = demo_hospital.cases.head(50).astype({"readmission_plan_31d": object})
    cases.loc[7, "readmission_plan_31d"] = "perhaps"
    source = tmp_path / "cases.csv"
    cases.to_csv(source, index=False)
    result = runner.invoke(
        app, ["group", str(source), "-o", str(tmp_path / "o.csv"), "--payment", str(DEFAULT_RULES)]
    )
    assert result.exit_code == 2
    assert "row 7: readmission_plan_31d 'perhaps' is not a yes/no value (1 rows)" in " ".join(
        result.output.split()
    )


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("age_years", "old", "row 4: age_years 'old' is not a number (1 rows)"),
        ("discharge_date", "2024-02-30", "row 4: discharge_date '2024-02-30' is not a date (1 rows)"),
    ],
)
def test_a_bad_number_or_date_names_row_and_column(
    demo_hospital, tmp_path: Path, column, value, message
) -> None:
    cases = demo_hospital.cases.head(50).astype({column: object})
    cases.loc[4, column] = value
    source = tmp_path / "cases.csv"
    cases.to_csv(source, index=False)
    result = runner.invoke(
        app, ["group", str(source), "-o", str(tmp_path / "o.csv"), "--payment", str(DEFAULT_RULES)]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "o.csv").exists()


def test_the_command_line_starts_without_the_machine_learning_stack() -> None:
    """Start-up is part of every `caselens group` run: scikit-learn alone took a second of CPU to import,
    Dask's dataframe 0.4 s (loaded only by a command that goes to a cluster)."""
    heavy = "{'sklearn', 'lightgbm', 'shap', 'dask.dataframe'}"
    code = f"import sys, cli.app; print(sorted({heavy} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_caselens_group_imports_no_other_command() -> None:
    """Each command's module is imported when it runs: `caselens group` paid a second of CPU for
    importing every command (training, serving, forecasting) before the lazy command table."""
    code = (
        "import sys, typer, cli.app; "
        "typer.main.get_command(cli.app.app).get_command(None, 'group'); "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('cli.', 'serving', 'models', 'fastapi', 'mlflow'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(["cli.app", "cli.failures", "cli.group", "cli.progress"])


def _all_pandas(source: Path, rules: Path, path: Path) -> pa.Table:
    """What the all-pandas path (read every column to pandas, group, price, ``to_parquet``) writes to
    ``path`` for ``source`` priced under ``rules``, as read back."""
    engine = CasemixEngine(load_tables(), PaymentRules.load(rules), remember=False)
    with pd.option_context("mode.copy_on_write", True):
        expected = group_command._price(engine.grouped(read_parquet_typed(source)), engine)
    expected.to_parquet(path, index=False)
    return pq.read_table(path)


def _written_as_all_pandas(source: Path, tmp_path: Path) -> pa.Table:
    """``caselens group --payment`` of ``source`` through Arrow, checked equal to the all-pandas write
    (table, types, metadata)."""
    output = tmp_path / "arrow.parquet"
    result = runner.invoke(app, ["group", str(source), "-o", str(output), "--payment", str(DEFAULT_RULES)])
    assert result.exit_code == 0, result.output
    written, wanted = pq.read_table(output), _all_pandas(source, DEFAULT_RULES, tmp_path / "pandas.parquet")
    assert written.schema.equals(wanted.schema, check_metadata=True)
    assert written.equals(wanted)
    return written


@pytest.mark.parametrize("rules", [DEFAULT_RULES, POINT_CITY_RULES], ids=["rw-table", "calibrated"])
def test_parquet_to_parquet_through_arrow_writes_what_the_all_pandas_path_writes(
    demo_hospital, tmp_path: Path, rules: Path
) -> None:
    """Parquet in and out, only the columns grouping and pricing read go through pandas; the file is
    the one the all-pandas path writes, row for row, with the same types, column order and metadata:
    on several row groups, invalid and ungroupable cases, an input column the grouper replaces, an
    integer column with missing values and a column no step reads; weights from the insurer's table
    and calibrated on the cases (grouped by DRG: the labels go to the writer as categories)."""
    cases = demo_hospital.cases.drop(columns=["los_days"]).copy()
    cases.loc[:9, "principal_diagnosis"] = ""  # invalid: no principal diagnosis
    cases.loc[10:19, "principal_diagnosis"] = "Z99.999"  # not a code of the tables
    cases["sex"] = cases["sex"].astype("Int64")
    cases.loc[20:24, "sex"] = pd.NA  # pandas holds it as float: written back as double
    cases["drg"] = "old"  # the grouper's column: replaced, and moved to the end
    cases["note"] = "kept"  # read by no step: written straight from Arrow
    source = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_pandas(cases, preserve_index=False), source, row_group_size=900)
    assert pq.ParquetFile(source).num_row_groups > 1

    output = tmp_path / "arrow.parquet"
    result = runner.invoke(app, ["group", str(source), "-o", str(output), "--payment", str(rules)])
    assert result.exit_code == 0, result.output

    expected_path = tmp_path / "pandas.parquet"
    written, wanted = pq.read_table(output), _all_pandas(source, rules, expected_path)
    assert written.schema.equals(wanted.schema, check_metadata=True)
    assert written.equals(wanted)
    assert {"grouped", "ungroupable", "invalid"} <= set(written.column("status").to_pylist())
    assert written.column_names[-len(PRICED_COLUMNS) - 1 :] == [*PRICED_COLUMNS, "weights_source"]
    casefile, read = read_case_columns(source, (*GROUPER_INPUT_COLUMNS, *PRICING_INPUT_COLUMNS))
    assert "note" not in read.columns and "drg" not in read.columns and "sex" in read.columns
    # The text columns of few values went through as dictionaries (passed) and categories (read).
    assert {"note", "coder_id", "principal_diagnosis", "department"} <= set(casefile.coded)
    assert isinstance(read["principal_diagnosis"].dtype, pd.CategoricalDtype)
    # Written over its own input (the untouched columns are streamed from it while writing).
    result = runner.invoke(app, ["group", str(source), "-o", str(source), "--payment", str(rules)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(source).equals(wanted)
    assert {f.name for f in tmp_path.iterdir()} == {p.name for p in (source, output, expected_path)}


def test_parquet_to_parquet_with_text_for_dates_numbers_and_flags(demo_hospital, tmp_path: Path) -> None:
    """A file whose dates, numbers and yes/no values are text of few values (read as categories):
    converted as the all-pandas path converts them, and the same file written."""
    cases = demo_hospital.cases.drop(columns=["los_days"])
    text = ["admission_date", "discharge_date", "sex", "age_years", "readmission_plan_31d", "admission_type"]
    cases = cases.assign(**{c: cases[c].astype(str).replace({"NaT": None, "nan": None}) for c in text})
    cases["readmission_plan_31d"] = cases["readmission_plan_31d"].str.lower()
    source = tmp_path / "cases.parquet"
    cases.to_parquet(source, index=False)
    casefile, read = read_case_columns(source, (*GROUPER_INPUT_COLUMNS, *PRICING_INPUT_COLUMNS))
    assert set(text) <= set(casefile.coded)
    assert all(isinstance(read[c].dtype, pd.CategoricalDtype) for c in text)

    written = _written_as_all_pandas(source, tmp_path)
    assert pa.types.is_timestamp(written.schema.field("discharge_date").type)


def test_parquet_to_parquet_with_categories_of_its_own(demo_hospital, tmp_path: Path) -> None:
    """A file pandas wrote from categories (dictionaries in its Arrow schema): those columns go back
    as categories, as the all-pandas path writes them, but an input column the grouper replaces (a
    ``drg`` of categories) comes out as the grouper's text."""
    cases = demo_hospital.cases.drop(columns=["los_days"]).astype(
        {"department": "category", "principal_diagnosis": "category", "coder_id": "category"}
    )
    cases["drg"] = pd.Categorical(["old"] * len(cases))
    source = tmp_path / "cases.parquet"
    cases.to_parquet(source, index=False)
    written = _written_as_all_pandas(source, tmp_path)
    assert pa.types.is_dictionary(written.schema.field("department").type)
    assert not pa.types.is_dictionary(written.schema.field("drg").type)


def test_all_missing_text_categories_are_written_as_text(tmp_path: Path) -> None:
    """A category column with no category at all (every value missing: an input column read as
    categories, or a step's label none of whose labels is used) is still text in the file."""
    source, output = tmp_path / "cases.parquet", tmp_path / "out.parquet"
    pd.DataFrame({"n": [1, 2, 3], "ward": pd.Series([None] * 3, dtype="string")}).to_parquet(source)
    casefile, read = read_case_columns(source, ["n", "ward"])
    assert isinstance(read["ward"].dtype, pd.CategoricalDtype) and read["ward"].cat.categories.empty
    none = pd.Categorical.from_codes([-1, -1, -1], categories=pd.Index([], dtype=object))
    write_beside(casefile, read, read.assign(label=none), output)
    written = pq.read_table(output)
    assert written.schema.field("ward").type == written.schema.field("label").type == pa.large_string()
    assert written.column("label").null_count == written.column("ward").null_count == 3


def test_text_goes_as_a_dictionary_where_the_file_stores_a_small_one(tmp_path: Path) -> None:
    """A text column is carried as its dictionary only where every row group stores one of at most
    ``CODED_MAX_DICTIONARY_BYTES``: not ids (a dictionary past the limit, or no dictionary at all), and
    not when one row group's dictionary is too large."""
    rows = 40_000
    ids = [f"P{i:09d}" for i in range(rows)]
    late = ["x"] * (rows // 2) + ids[::2]
    frame = pd.DataFrame({"ward": ["A", "B"] * (rows // 2), "id": ids, "late": late})
    path = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=rows // 2)
    assert _small_dictionaries(pq.ParquetFile(path), ["ward", "id", "late"]) == ["ward"]
    assert len("".join(ids[::2])) > CODED_MAX_DICTIONARY_BYTES  # (the second row group's is too large)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, use_dictionary=["id"])
    assert _small_dictionaries(pq.ParquetFile(path), ["ward", "id", "late"]) == []


def test_parquet_to_parquet_when_every_column_is_read(tmp_path: Path) -> None:
    """No column left to copy from the input (grouping only, on its own columns): the rows still come
    out in the output's row groups, as the all-pandas path writes them."""
    cases = pd.read_csv(REFERENCE_CASES, sep="\t", dtype=str, keep_default_na=False).head(300)
    source, output = tmp_path / "cases.parquet", tmp_path / "grouped.parquet"
    cases[["sex", "age_years", "age_days", "birth_weight_g", "diagnoses", "procedures"]].to_parquet(source)
    result = runner.invoke(app, ["group", str(source), "-o", str(output)])
    assert result.exit_code == 0, result.output
    engine = CasemixEngine(load_tables(), remember=False)
    expected = tmp_path / "pandas.parquet"
    engine.grouped(read_parquet_typed(source)).to_parquet(expected, index=False)
    written, wanted = pq.read_table(output), pq.read_table(expected)
    assert written.schema.equals(wanted.schema, check_metadata=True)
    assert written.equals(wanted)
    assert {"grouped", "invalid"} <= set(written.column("status").to_pylist())


def test_parquet_output_encoding_per_column(demo_hospital, tmp_path: Path) -> None:
    """The write's per-column choices (see ``pipelines.casefile``): floats uncompressed, the rest snappy;
    no dictionary for a text column of mostly distinct values (the case id); numbers keep their
    statistics, null counts included (the next read's pass-through test needs them), text drops them.
    The input stores its case ids without a dictionary, as a large file's writer ends up doing."""
    source, output = tmp_path / "cases.parquet", tmp_path / "priced.parquet"
    cases = demo_hospital.cases
    cases.to_parquet(source, index=False, use_dictionary=[c for c in cases.columns if c != "case_id"])
    result = runner.invoke(app, ["group", str(source), "-o", str(output), "--payment", str(DEFAULT_RULES)])
    assert result.exit_code == 0, result.output
    group = pq.ParquetFile(output).metadata.row_group(0)
    chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert chunks["total_cost"].compression == "UNCOMPRESSED"
    assert chunks["drg"].compression == chunks["age_years"].compression == "SNAPPY"
    assert chunks["drg"].has_dictionary_page and not chunks["case_id"].has_dictionary_page
    assert chunks["age_years"].statistics.has_null_count and chunks["drg"].statistics is None
