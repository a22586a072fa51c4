"""The insurer's RW table: template, loading, validation errors by line and field, and where rules find it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from casemix.engine import CasemixEngine
from casemix.payment import DEFAULT_RULES, PaymentRules
from casemix.rw_table import (
    ESTIMATED,
    INSURER,
    TEMPLATE,
    read_weights,
    weight_schema,
    weights_source,
    write_weights,
)
from casemix.weights import Calibration, calibrate_weights


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "rw.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_the_template_reads_as_an_insurer_table() -> None:
    table = read_weights(TEMPLATE)
    assert weights_source(table) == INSURER
    assert table.loc["FM19", "rw"] == pytest.approx(2.35)
    assert table.loc["FM19", "mean_cost"] == pytest.approx(25850.0)
    assert table.loc["FM19", "mean_los"] == pytest.approx(7.2)
    assert table["stable"].tolist() == [True, True, True, True, False]
    assert table.loc["IC29", "name"] == "髋、肩、膝、肘和踝关节置换术"


@pytest.mark.parametrize(
    "text", ["drg,rw\nGZ13,0.85\n", "drg,rw,stable,n_cases\nGZ13,0.85,否,\nFM19,2,,12\n"]
)
def test_a_read_table_meets_the_weight_schema(text: str, tmp_path: Path) -> None:
    """``read_weights`` checks each cell itself and no longer runs pandera on the result: what it
    returns must still pass the schema every calibrated table is validated against."""
    for path in (TEMPLATE, TEMPLATE.with_name("rw_table.demo-region.csv"), write(tmp_path, text)):
        table = read_weights(path)
        pd.testing.assert_frame_equal(weight_schema().validate(table), table)


def test_reading_the_insurer_table_does_not_import_pandera() -> None:
    """pandera's import and first validation cost 0.5 s of CPU on every `caselens group --payment`."""
    code = (
        "import sys; from casemix.rw_table import TEMPLATE, read_weights; read_weights(TEMPLATE); "
        "print('pandera' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_minimal_insurer_table_reads(tmp_path: Path) -> None:
    table = read_weights(write(tmp_path, 'drg,rw\nGZ13,0.85\nFM19,"1,500.5"\n'))
    assert table["rw"].to_dict() == {"GZ13": 0.85, "FM19": 1500.5}
    assert table["source"].tolist() == ["insurer", "insurer"]
    assert table["mean_cost"].isna().all() and table["name"].tolist() == [None, None]


def test_chinese_headers_and_gb18030(tmp_path: Path) -> None:
    text = "DRG编码,DRG名称,权重,次均费用,平均住院日,是否稳定组\nFM19,经皮冠状动脉支架植入,2.3,25000,7,否\n"
    table = read_weights(write(tmp_path, text, encoding="gb18030"))
    row = table.loc["FM19"]
    assert (row["name"], row["rw"], row["mean_cost"], row["mean_los"]) == (
        "经皮冠状动脉支架植入",
        2.3,
        25000.0,
        7.0,
    )
    assert not row["stable"]


def test_every_bad_cell_is_named_by_line_drg_and_field(tmp_path: Path) -> None:
    text = (
        "# the city's 2025 table\n"  # line 1
        "drg,rw,mean_cost,mean_los,stable\n"  # line 2
        "FM19,2.3,25000,7,true\n"  # line 3
        "GZ13,abc,6000,5,yes\n"  # line 4
        "FM19,1.2,-5,7,maybe\n"  # line 5
        ",1.0,100,0,\n"  # line 6
    )
    with pytest.raises(ValueError) as error:
        read_weights(write(tmp_path, text))
    message = str(error.value)
    assert "6 problem(s)" in message
    assert "line 4 (drg GZ13): rw must be a positive number, got 'abc'" in message
    assert "line 5 (drg FM19): mean_cost must be a positive number, got '-5'" in message
    assert "line 5 (drg FM19): stable must be true or false" in message
    assert "line 5 (drg FM19): drg repeats line 3" in message
    assert "line 6 (drg ?): drg must be a DRG code" in message
    assert "line 6 (drg ?): mean_los must be a positive number, got '0'" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drg,weight\nGZ13,1\n", r"needs columns \['rw'\]"),
        ("drg,rw,colour\nGZ13,1,red\n", r"unknown RW table columns \['colour'\]"),
        ("drg,rw\n", "has no rows"),
        ("# only a comment\n", "no header line"),
        ("drg,rw\nGZ13,1,2\n", "line 2 has 3 cells for 2 columns"),
        ("drg,rw,n_cases\nGZ13,1,2.5\n", r"line 2 \(drg GZ13\): n_cases must be a whole number"),
        ("drg,rw\nGZ13,inf\n", r"line 2 \(drg GZ13\): rw must be a positive number"),
        ("drg,rw,source\nGZ13,1,guess\n", r"line 2 \(drg GZ13\): source must be one of"),
    ],
)
def test_bad_tables_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_weights(write(tmp_path, text))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such RW table"):
        read_weights(tmp_path / "absent.csv")


def test_an_estimate_round_trips_and_stays_labelled(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "status": "grouped",
            "drg": ["AA11"] * 40 + ["BB15"] * 5 + ["BB11"] * 40,
            "adrg": ["AA1"] * 40 + ["BB1"] * 45,
            "total_cost": [10000.0 + i for i in range(40)] + [20000.0] * 5 + [30000.0] * 40,
            "los_days": 5,
        }
    )
    table = calibrate_weights(frame)
    table.loc["AA11", "name"] = "颅内手术，伴严重并发症"
    path = write_weights(table, tmp_path / "weights" / "rw.csv")
    back = read_weights(path)
    pd.testing.assert_frame_equal(back, table)
    assert weights_source(back) == ESTIMATED


def test_rules_name_the_table_relative_to_their_file(tmp_path: Path) -> None:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "rw.csv").write_text(
        "drg,rw,mean_cost,mean_los,stable\nFM19,2.0,20000,7,true\nGZ13,0.5,5000,4,false\n", encoding="utf-8"
    )
    default = DEFAULT_RULES.read_text(encoding="utf-8")
    rules_text = default.replace('rw_table = "rw_table.demo-region.csv"', 'rw_table = "tables/rw.csv"')
    (tmp_path / "city.toml").write_text(rules_text, encoding="utf-8")
    rules = PaymentRules.load(tmp_path / "city.toml")
    assert rules.calibration.rw_table == tmp_path / "tables" / "rw.csv"
    weights = CasemixEngine(rules=rules).weights()  # an insurer's table needs no history
    assert weights["rw"].to_dict() == {"FM19": 2.0, "GZ13": 0.5}
    assert weights_source(weights) == INSURER
    by_item = rules.model_copy(
        update={"calibration": rules.calibration.model_copy(update={"unstable": "by_item"})}
    )
    assert list(CasemixEngine(rules=by_item).weights().index) == ["FM19"]  # 非稳定组 paid by item


def test_the_embedded_rules_use_the_demo_citys_published_table() -> None:
    rules = PaymentRules.load()
    table = read_weights(rules.calibration.rw_table)
    assert weights_source(table) == INSURER
    assert len(table) > 50 and table["mean_cost"].notna().all() and table["mean_los"].notna().all()


def test_an_absolute_table_path_is_kept() -> None:
    assert (
        Calibration.model_validate({"rw_table": str(TEMPLATE)}, context={"rules_dir": "/elsewhere"}).rw_table
        == TEMPLATE
    )
