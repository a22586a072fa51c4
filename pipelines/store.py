"""The canonical case store: a Parquet dataset every part of caselens reads through ``read_cases``.

Layout: ``<store>/admission_year=<YYYY>/part-0.parquet`` (hive partitioning), one file per year sorted by
case id in row groups of ``ROW_GROUP_ROWS`` (a Dask cluster's partitions), so ``pandas.read_parquet``
and ``dask.dataframe.read_parquet`` read the folder as it is and the bytes depend only on the cases
held (re-ingesting the same file leaves the store byte-identical).
Writing replaces cases by id: only the years touched by the new cases are rewritten.
A manifest beside the store (``<store>-manifest.json``) records the store's fingerprint and every ingest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract.errors import InputError, NotFound
from contract.fields import STORE_COLUMNS, arrow_schema, canonical_column, canonical_frame
from contract.instay import CASES_TABLE, TABLE_DATES, TABLE_FIELDS, TABLE_KEYS
from contract.settings import get_settings

PARTITION = "admission_year"
PART_FILE = "part-0.parquet"
# Rows per Parquet row group: the unit a Dask cluster reads as one partition (pipelines.cluster), so
# a worker's memory follows this number, not the size of a year.
ROW_GROUP_ROWS = 131_072


class StoreError(NotFound, RuntimeError):
    """The store is missing or cannot serve the request; the message says what to do."""


def store_path(path: Path | str | None = None) -> Path:
    return Path(path) if path is not None else get_settings().store_dir


def read_cases(
    path: Path | str | None = None,
    columns: Iterable[str] | None = None,
    patients: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Cases from the store (default ``settings.store_dir``) in canonical dtypes, by year then case id;
    ``patients``: only these patients' stays (read filtered, so memory follows the patients kept)."""
    store = store_path(path)
    if not part_files(store):
        raise StoreError(f"no case store at {store}: run `caselens ingest FILE` first")
    wanted = list(STORE_COLUMNS if columns is None else columns)
    unknown = [c for c in wanted if c not in STORE_COLUMNS]
    if unknown:
        raise StoreError(f"unknown store column(s): {', '.join(unknown)}; see docs/data-contract.md")
    kept = None if patients is None else [("patient_id", "in", list(patients))]
    frame = pd.read_parquet(store, columns=wanted, engine="pyarrow", filters=kept)
    return canonical_frame(frame).reset_index(drop=True)


@dataclass(frozen=True)
class StoreUpdate:
    """What a write did: cases new to the store, cases replaced, cases held afterwards."""

    new: int
    updated: int
    rows: int


def write_cases(cases: pd.DataFrame, path: Path | str | None = None, client: Any = None) -> StoreUpdate:
    """Add cases to the store, replacing any stored case with the same case id (re-ingest is an update).

    Works in Arrow (filter, concat, sort), which keeps a million-row rewrite to a few seconds. With a
    Dask ``client`` the touched years are rewritten in parallel on its workers (which must see the
    store's folder); the files are the same bytes either way.
    """
    store = store_path(path)
    if cases["case_id"].duplicated().any():
        raise InputError("write_cases: case_id must be unique within the cases written")
    table = pa.Table.from_pandas(
        cases.loc[:, list(STORE_COLUMNS)], schema=arrow_schema(), preserve_index=False
    )
    years = pc.year(table["admission_date"])
    stored = _stored_ids(store)
    replaced = stored["case_id"].isin(cases["case_id"])
    touched = sorted(set(pc.unique(years).to_pylist()) | set(stored.loc[replaced, PARTITION].tolist()))
    jobs = [(store, int(year), table.filter(pc.equal(years, year)), table["case_id"]) for year in touched]
    if client is None:
        for job in jobs:
            _rewrite_year(*job)
    else:
        client.gather([client.submit(_rewrite_year, *job, pure=False) for job in jobs])
    held = sum(pq.ParquetFile(f).metadata.num_rows for f in part_files(store))
    return StoreUpdate(new=len(cases) - int(replaced.sum()), updated=int(replaced.sum()), rows=held)


def _rewrite_year(store: Path, year: int, incoming: pa.Table, incoming_ids: pa.ChunkedArray) -> None:
    target = store / f"{PARTITION}={year}" / PART_FILE
    tables = [incoming]
    if target.exists():
        old = pq.read_table(target, schema=incoming.schema)
        tables.append(
            old.filter(pc.invert(pc.is_in(old["case_id"], value_set=incoming_ids.combine_chunks())))
        )
    year_cases = pa.concat_tables(tables).sort_by("case_id")
    if year_cases.num_rows == 0:
        target.unlink(missing_ok=True)
        return
    _write_part(target, year_cases)


def _private_dir(folder: Path) -> None:
    """``folder`` and any parents made for it, mode 0700 (mkdir's mode covers the last one only)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for made in reversed(missing):
        made.mkdir(mode=0o700)


def _stored_ids(store: Path) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {"case_id": pq.read_table(f, columns=["case_id"]).column(0).to_pandas(), PARTITION: _year(f)}
        )
        for f in part_files(store)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"case_id": [], PARTITION: []})


def part_files(store: Path) -> list[Path]:
    """The store's data files, one per year, in year order."""
    return sorted(store.glob(f"{PARTITION}=*/{PART_FILE}"))


def _year(part: Path) -> int:
    return int(part.parent.name.split("=", 1)[1])


def manifest_path(path: Path | str | None = None) -> Path:
    """The manifest sits beside the store, outside the dataset folder readers scan."""
    store = store_path(path)
    return store.with_name(f"{store.name}-manifest.json")


def fingerprint(path: Path | str | None = None) -> dict[str, object]:
    """Rows per year and one SHA-256 over the store's files: the data version training logs."""
    store = store_path(path)
    digest = hashlib.sha256()
    years: dict[str, int] = {}
    for part in part_files(store):
        digest.update(part.relative_to(store).as_posix().encode())
        digest.update(hashlib.sha256(part.read_bytes()).digest())
        years[str(_year(part))] = pq.ParquetFile(part).metadata.num_rows
    return {
        "path": str(store.resolve()),
        "rows": sum(years.values()),
        "rows_by_year": years,
        "sha256": digest.hexdigest(),
    }


def read_manifest(path: Path | str | None = None) -> dict[str, object]:
    """The store's manifest: ``store`` (fingerprint), ``last_ingest`` and ``ingests`` (history)."""
    target = manifest_path(path)
    if not target.exists():
        raise StoreError(f"no store manifest at {target}: run `caselens ingest FILE` first")
    return json.loads(target.read_text(encoding="utf-8"))


def write_manifest(ingest: dict[str, object], path: Path | str | None = None) -> dict[str, object]:
    """Record an ingest and the store's new fingerprint."""
    target = manifest_path(path)
    history = json.loads(target.read_text(encoding="utf-8"))["ingests"] if target.exists() else []
    manifest = {"store": fingerprint(path), "last_ingest": ingest, "ingests": [*history, ingest]}
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, target)
    return manifest


def table_path(table: str, path: Path | str | None = None) -> Path:
    """Where a table lives: the abstracts in the store folder, each daily table in a sibling folder
    (``<store>-charges``, ``<store>-inpatients``), so a reader of one never scans another."""
    store = store_path(path)
    return store if table == CASES_TABLE else store.with_name(f"{store.name}-{table}")


def _table_partition(table: str) -> str:
    return f"{TABLE_DATES[table].removesuffix('_date')}_year"


def read_table(
    table: str, path: Path | str | None = None, columns: Iterable[str] | None = None
) -> pd.DataFrame:
    """Rows of a daily table (``charges``, ``inpatients``) in the contract's dtypes, by key."""
    if table == CASES_TABLE:
        return read_cases(path, columns)
    folder = table_path(table, path)
    fields = {f.name: f for f in TABLE_FIELDS[table]}
    wanted = list(fields if columns is None else columns)
    unknown = [c for c in wanted if c not in fields]
    if unknown:
        raise StoreError(f"unknown {table} column(s): {', '.join(unknown)}; see docs/data-contract.md")
    if not sorted(folder.glob(f"{_table_partition(table)}=*/{PART_FILE}")):
        raise StoreError(f"no {table} table at {folder}: run `caselens ingest FILE --kind {table}` first")
    frame = pd.read_parquet(folder, columns=wanted, engine="pyarrow")
    typed = {name: canonical_column(frame[name], fields[name]) for name in wanted}
    return pd.DataFrame(typed).reset_index(drop=True)


def write_table(table: str, rows: pd.DataFrame, path: Path | str | None = None) -> StoreUpdate:
    """Upsert rows of a daily table by its key (a stay's day sent again replaces the day sent before).

    Partitioned by the year of the table's date, so a key's row always sits in the same year's file and
    only the years of the incoming rows are rewritten.
    """
    if table == CASES_TABLE:
        return write_cases(rows, path)
    folder = table_path(table, path)
    fields, key = TABLE_FIELDS[table], list(TABLE_KEYS[table])
    if rows.duplicated(key).any():
        raise InputError(f"write_table({table}): {' + '.join(key)} must be unique within the rows written")
    schema = pa.schema([f.arrow_field for f in fields])
    incoming = pa.Table.from_pandas(rows.loc[:, schema.names], schema=schema, preserve_index=False)
    years = pc.year(incoming[TABLE_DATES[table]])
    partition = _table_partition(table)
    new = replaced = 0
    for year in sorted(pc.unique(years).to_pylist()):
        target = folder / f"{partition}={year}" / PART_FILE
        part = incoming.filter(pc.equal(years, year))
        tables = [part]
        if target.exists():
            old = pq.read_table(target, schema=schema)
            kept = pc.invert(pc.is_in(_row_keys(old, key), value_set=_row_keys(part, key)))
            replaced += old.num_rows - int(pc.sum(kept.cast(pa.int64())).as_py() or 0)
            tables.append(old.filter(kept))
        new += part.num_rows
        _write_part(target, pa.concat_tables(tables).sort_by([(c, "ascending") for c in key]))
    held = sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob(f"{partition}=*/{PART_FILE}"))
    return StoreUpdate(new=new - replaced, updated=replaced, rows=held)


def _row_keys(table: pa.Table, key: list[str]) -> pa.Array:
    """One text per row joining its key columns, for membership tests in Arrow."""
    parts = [pc.cast(table[c], pa.string()) for c in key]
    return pc.binary_join_element_wise(*parts, "\x1f").combine_chunks()


def _write_part(target: Path, rows: pa.Table) -> None:
    _private_dir(target.parent)
    partial = target.with_name(f".{PART_FILE}.partial")  # a leading dot hides it from dataset readers
    pq.write_table(rows, partial, row_group_size=ROW_GROUP_ROWS)
    partial.chmod(0o600)  # patient data: the owner's only, whatever the process's umask
    os.replace(partial, target)
