from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import store
from pipelines.demo import generate_demo
from pipelines.store import StoreError, read_cases, read_manifest


def test_missing_store_says_how_to_make_one(settings) -> None:
    with pytest.raises(StoreError, match="caselens ingest"):
        read_cases()
    with pytest.raises(StoreError, match="caselens ingest"):
        read_manifest()


def test_unknown_column_is_named(settings, tmp_path, cases) -> None:
    from pipelines.ingest import ingest_file

    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    ingest_file(path)
    with pytest.raises(StoreError, match="no_such_column"):
        read_cases(columns=["case_id", "no_such_column"])


ROWS = 50  # a toy row group: the year below holds several


@pytest.fixture
def year_of_cases() -> pd.DataFrame:
    """Canonical cases of a single year, several row groups of ``ROWS``."""
    cases = generate_demo(900, 1, seed=5).cases
    return cases[cases["admission_date"].dt.year == 2023].reset_index(drop=True)


@pytest.fixture
def sizes(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Rows of every table the store writes, and of every stored table it reads whole (all columns)."""
    seen: dict[str, list[int]] = {"written": [], "read": [], "files": []}
    write, read_group = pq.write_table, pq.ParquetFile.read_row_group

    def spy_write(table: pa.Table, where: Path, **kwargs: object) -> None:
        seen["written"].append(table.num_rows)
        seen["files"].append(Path(where).name)
        write(table, where, **kwargs)

    def spy_read_group(self: pq.ParquetFile, i: int, columns: list[str] | None = None, **kw: object):
        table = read_group(self, i, columns=columns, **kw)
        if columns is None:
            seen["read"].append(table.num_rows)
        return table

    monkeypatch.setattr(store, "ROW_GROUP_ROWS", ROWS)
    monkeypatch.setattr(pq, "write_table", spy_write)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy_read_group)
    monkeypatch.setattr(pq, "read_table", _refuse_whole_files(pq.read_table))
    return seen


def _refuse_whole_files(read):  # type: ignore[no-untyped-def]
    def only_ids(source: object, columns: list[str] | None = None, **kwargs: object) -> pa.Table:
        if Path(str(source)).is_file():  # one part file (the store's readers read the folder)
            assert columns == ["case_id"], "a stored file was read whole"
        return read(source, columns=columns, **kwargs)

    return only_ids


def test_a_year_is_rewritten_one_row_group_at_a_time(
    tmp_path: Path, year_of_cases: pd.DataFrame, sizes: dict[str, list[int]]
) -> None:
    first, later = year_of_cases.iloc[::2], year_of_cases.iloc[1::2]
    assert len(first) > 4 * ROWS
    store.write_cases(first, tmp_path / "store")
    sizes["written"].clear()
    # an update touching the year's first part (so every part is merged again) and new cases between
    changed = first.iloc[[0, 7, 100]].assign(department="外科")
    update = store.write_cases(pd.concat([changed, later.iloc[:60]]), tmp_path / "store")
    assert (update.new, update.updated) == (60, 3)
    assert len(sizes["read"]) >= 4 and max(sizes["read"]) <= ROWS
    assert len(sizes["written"]) > 4 and max(sizes["written"]) <= ROWS
    # the same bytes as the whole year written at once
    whole = pd.concat([first.drop(changed.index), changed, later.iloc[:60]])
    store.write_cases(whole, tmp_path / "fresh")
    assert store.fingerprint(tmp_path / "store")["sha256"] == store.fingerprint(tmp_path / "fresh")["sha256"]
    stored = store.read_cases(tmp_path / "store").set_index("case_id")
    assert (stored.loc[changed["case_id"], "department"] == "外科").all()
    assert stored.index.is_monotonic_increasing and len(stored) == len(whole)


def test_cases_after_the_stored_ones_rewrite_only_the_last_part(
    tmp_path: Path, year_of_cases: pd.DataFrame, sizes: dict[str, list[int]]
) -> None:
    ordered = year_of_cases.sort_values("case_id")
    store.write_cases(ordered.iloc[:-70], tmp_path / "store")
    parts = store.part_files(tmp_path / "store")
    kept = {p.name: p.read_bytes() for p in parts[:-1]}
    sizes["files"].clear()
    store.write_cases(ordered.iloc[-70:], tmp_path / "store")
    assert sizes["files"] and all(f >= parts[-1].name for f in sizes["files"])
    assert {p.name: p.read_bytes() for p in store.part_files(tmp_path / "store")[: len(kept)]} == kept
    assert store.read_cases(tmp_path / "store")["case_id"].tolist() == ordered["case_id"].tolist()


def test_cases_leaving_a_year_shrink_its_parts(tmp_path: Path, sizes: dict[str, list[int]]) -> None:
    cases = generate_demo(600, 2, seed=6).cases
    store.write_cases(cases, tmp_path / "store")
    moved = cases[cases["admission_date"].dt.year == 2023].iloc[: ROWS + 5]
    moved = moved.assign(admission_date=moved["admission_date"] + pd.DateOffset(years=1))
    moved = moved.assign(discharge_date=moved["discharge_date"] + pd.DateOffset(years=1))
    store.write_cases(moved, tmp_path / "store")
    expected = pd.concat([cases.drop(moved.index), moved])
    store.write_cases(expected, tmp_path / "fresh")
    assert store.fingerprint(tmp_path / "store")["sha256"] == store.fingerprint(tmp_path / "fresh")["sha256"]


def test_a_year_swap_cut_short_is_finished_by_the_next_write(
    tmp_path: Path, year_of_cases: pd.DataFrame
) -> None:
    first, later = year_of_cases.iloc[:-5], year_of_cases.iloc[-5:]
    later = later.assign(  # the next write is of another year: the store-wide check must still see it
        admission_date=later["admission_date"] + pd.DateOffset(years=1),
        discharge_date=later["discharge_date"] + pd.DateOffset(years=1),
    )
    store.write_cases(first, tmp_path / "store")
    (year,) = {p.parent for p in store.part_files(tmp_path / "store")}
    year.rename(year.with_name(f".{year.name}.old"))  # a crash after the old year was moved aside
    assert not store.part_files(tmp_path / "store")  # hidden folders are not the store's
    store.write_cases(later, tmp_path / "store")
    stored = store.read_cases(tmp_path / "store")
    assert sorted(stored["case_id"]) == sorted(year_of_cases["case_id"])
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [year.name, "admission_year=2024"]
