from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.readers import InputError, read_table

FRAME = pd.DataFrame({"住院号": ["A1", "A2"], "性别": ["男", "女"], "总费用": ["100.5", ""]})


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encoding_is_detected(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "export.csv"
    FRAME.to_csv(path, index=False, encoding=encoding)
    table = read_table(path)
    assert table.encoding == encoding
    assert list(table.frame.columns) == ["住院号", "性别", "总费用"]
    assert table.frame["性别"].tolist() == ["男", "女"]
    assert table.frame["总费用"].tolist() == ["100.5", ""]


def test_tab_separated_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.tsv"
    FRAME.to_csv(path, index=False, sep="\t")
    assert read_table(path).frame["住院号"].tolist() == ["A1", "A2"]


def test_excel_cells_read_as_the_user_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    pd.DataFrame(
        {
            "住院号": [123, 124],
            "入院日期": pd.to_datetime(["2024-01-05", "2024-02-01"]),
            "总费用": [100.5, 200.0],
        }
    ).to_excel(path, index=False)
    frame = read_table(path).frame
    assert frame["住院号"].tolist() == ["123", "124"]
    assert frame["入院日期"].tolist() == ["2024-01-05", "2024-02-01"]
    assert frame["总费用"].tolist() == ["100.5", "200"]


def test_parquet_types_become_text(tmp_path: Path) -> None:
    path = tmp_path / "export.parquet"
    pd.DataFrame(
        {
            "case_id": ["A"],
            "admission_date": pd.to_datetime(["2024-01-05"]),
            "age_years": [40],
            "total_cost": [12.5],
            "audited": [True],
        }
    ).to_parquet(path)
    row = read_table(path).frame.iloc[0].tolist()
    assert row == ["A", "2024-01-05", "40", "12.5", "true"]


def test_fingerprint_is_the_file_sha256(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "export.csv"
    FRAME.to_csv(path, index=False)
    assert read_table(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("export.json", b"{}", "unsupported file type"),
        ("empty.csv", b"", "is empty"),
        ("header.csv", "住院号,性别\n".encode(), "no data rows"),
        (
            "ragged.csv",
            b"a,b\n1,2,3\n",
            r"cannot read ragged.csv as CSV \(utf-8\): CSV parse error: Expected 2 columns, got 3$",
        ),
        ("broken.xlsx", b"not a workbook", "cannot read broken.xlsx as an Excel workbook"),
        ("broken.parquet", b"not parquet", "cannot read broken.parquet as Parquet"),
    ],
)
def test_unreadable_files_give_one_clear_error(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_table(path)
