"""Loading a table set: helpers, a city's modified copy with no code change, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from casemix.grouper import Grouper
from casemix.tables import CasemixTables, TablesError, load_tables
from contract import settings as settings_module


@pytest.fixture
def local_copy(tmp_path: Path, tables: CasemixTables) -> Path:
    """A city's table set: the national one copied to a new folder."""
    return Path(shutil.copytree(tables.path, tmp_path / "city-1.1"))


def _edit_grouping(folder: Path, edit) -> None:
    path = folder / "grouping.json"
    grouping = json.loads(path.read_text(encoding="utf-8"))
    edit(grouping)
    path.write_text(json.dumps(grouping, ensure_ascii=False), encoding="utf-8")


def test_helpers(tables: CasemixTables) -> None:
    assert tables.scheme == "CHS-DRG 1.1"
    assert len(tables.mdc_order) == 26 and len(tables.adrgs) == 376 and len(tables.drgs) == 628
    assert tables.diagnosis_name("A00.000x001") == "古典生物型霍乱"
    assert tables.procedure_name("00.0100") == "头和颈部血管治疗性超声"
    assert tables.diagnosis_name("nope") is None
    assert tables.drg_name("AA19") == "心脏移植"
    assert tables.mdc_of("FB1") == "MDCF"
    assert tables.is_mcc("A01.100", None) and not tables.is_cc("A01.100", None)
    assert tables.is_cc("A00.100", None)
    assert not tables.is_cc("A00.100", "A00.100x001")  # same exclusion table 1


def test_adrg_codes_for_realistic_cases(tables: CasemixTables) -> None:
    surgical = tables.adrg_codes("FB1")
    assert "37.5100" not in surgical.procedures and len(surgical.procedures) > 0
    assert set(surgical.diagnoses) == set(tables.mdcs["MDCF"].lists["diagnoses"])  # MDC list as fallback
    medical = tables.adrg_codes("ER3")
    assert "J68.101" in medical.diagnoses and medical.procedures == ()
    breast = tables.adrg_codes("JA1")
    assert set().union(*tables.adrgs["JA1"].rule[1].groups.values()) == set(breast.procedures)


def test_default_tables_are_cached_and_follow_settings(settings, tables: CasemixTables) -> None:
    assert load_tables() is load_tables()
    assert load_tables().path == settings_module.get_settings().casemix_tables.resolve()


def test_local_table_set_with_a_renamed_drg(local_copy: Path, grouper: Grouper) -> None:
    def rename(grouping: dict) -> None:
        spec = grouping["drgs"].pop("AA19")
        grouping["drgs"]["AA10"] = {**spec, "name": "城市版心脏移植"}
        grouping["adrgs"]["AA1"]["drgs"] = ["AA10"]

    _edit_grouping(local_copy, rename)
    city = Grouper(load_tables(local_copy))
    case = {"sex": 1, "age_years": 50, "diagnoses": ["J68.101"], "procedures": ["37.5100"]}
    assert grouper.group_case(**case).drg == "AA19"
    result = city.group_case(**case)
    assert (result.drg, result.drg_name) == ("AA10", "城市版心脏移植")
    assert "城市版心脏移植" in result.trace[-1]


def test_missing_file_is_named(local_copy: Path) -> None:
    (local_copy / "mcc.tsv").unlink()
    with pytest.raises(TablesError, match=r"mcc\.tsv is missing"):
        load_tables(local_copy)


def test_missing_column_is_named(local_copy: Path) -> None:
    (local_copy / "cc.tsv").write_text("code\tgroup\nA00.100\t1\n", encoding="utf-8")
    with pytest.raises(TablesError, match=r"cc\.tsv: columns \['exclusion_table'\] are missing"):
        load_tables(local_copy)


def test_code_lists_are_read_as_trimmed_text(local_copy: Path) -> None:
    """Codes stay text (no number or missing-value guessing), padded cells are trimmed, extra columns
    are ignored, and an empty code names its row."""
    (local_copy / "mcc.tsv").write_text(
        "code\texclusion_table\tnote\n 001 \t  7\tx\nNA\t\t\n", encoding="utf-8"
    )
    assert load_tables(local_copy).mcc == {"001": "7", "NA": ""}
    (local_copy / "mcc.tsv").write_text("code\texclusion_table\nA00.100\t1\n  \t2\n", encoding="utf-8")
    with pytest.raises(TablesError, match=r"mcc\.tsv: row 3 has an empty code"):
        load_tables(local_copy)


def test_optional_maps_may_be_absent(local_copy: Path) -> None:
    (local_copy / "diagnosis_map.tsv").unlink()
    assert load_tables(local_copy).diagnosis_map == {}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda g: g["adrgs"]["FB1"]["rule"].append({"age_months": 3}),
            r"adrgs\.FB1\.rule\[\d\]: unknown condition 'age_months'",
        ),
        (lambda g: g["drgs"]["AA19"].update(adrg="QQ9"), r"drgs\.AA19: ADRG 'QQ9' is not in adrgs"),
        (lambda g: g["drgs"]["AA19"].update(split="maybe"), r"drgs\.AA19: split 'maybe'"),
        (lambda g: g["adrgs"]["AA1"].update(drgs=["AA18"]), r"adrgs\.AA1: drgs \['AA18'\] are not defined"),
        (lambda g: g["mdc_order"].append("MDCQQ"), r"mdc_order names MDCs \['MDCQQ'\]"),
        (
            lambda g: g["adrgs"]["AA1"]["rule"].append({"principal_diagnosis_in": "diagnoses_9"}),
            r"adrgs\.AA1\.rule\[1\]: principal_diagnosis_in names list 'diagnoses_9'",
        ),
        (
            lambda g: g["mdcs"]["MDCF"].update(ambiguous_group_on_unmatched_or_procedure=True),
            r"mdcs\.MDCF: a per-MDC ambiguous-group \(QY\) flag is not read",
        ),
        (lambda g: g.pop("drgs"), r"key 'drgs' is missing"),
    ],
)
def test_broken_grouping_names_file_and_key(local_copy: Path, edit, message: str) -> None:
    _edit_grouping(local_copy, edit)
    with pytest.raises(TablesError, match=f"grouping.json: {message}"):
        load_tables(local_copy)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(TablesError, match="casemix tables folder not found"):
        load_tables(tmp_path / "nowhere")


def test_a_batch_run_never_builds_the_code_dicts(local_copy: Path) -> None:
    """Grouping a batch reads the code tables as Arrow columns: making their 250,000 cells Python
    strings is start-up every command paid for names only a trace or a single case shows."""
    tables = load_tables(local_copy)
    cases = pd.DataFrame(
        {
            "sex": [1, 2],
            "age_years": [60, 30],
            "diagnoses": ["J18.900|E87.200", "A01.100"],
            "procedures": ["", ""],
        }
    )
    result = Grouper(tables).group_frame(cases)
    assert list(result["status"]) == ["grouped", "grouped"]
    code_tables = (tables.diagnoses, tables.procedures, tables.mcc, tables.cc, tables.principal_exclusions)
    assert not any("_dict" in vars(table) for table in code_tables)
    assert tables.diagnosis_name("A00.000x001") == "古典生物型霍乱"  # on demand, then kept
    assert "_dict" in vars(tables.diagnoses)
