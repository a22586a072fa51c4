"""The canonical case store: a Parquet dataset every part of caselens reads through ``read_cases``.

Layout: ``<store>/admission_year=<YYYY>/part-NNNNN.parquet`` (hive partitioning): a year's cases
sorted by case id and cut into part files of ``ROW_GROUP_ROWS`` rows (one row group each: a Dask
cluster's partitions), so ``pandas.read_parquet`` and ``dask.dataframe.read_parquet`` read the folder as
it is and the bytes depend only on the cases held (re-ingesting the same file leaves the store
byte-identical). Writing replaces cases by id and streams: a year is rewritten from the first part
the new cases touch, one row group at a time, so memory follows the part size, not the year's stays,
and cases whose ids sort after the stored ones (a new hospital, a new month) rewrite only the last part.
A manifest beside the store (``<store>-manifest.json``) records the store's fingerprint and every ingest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
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
PART_FILE = "part-0.parquet"  # the daily tables' one file per year
PART_PATTERN = "part-*.parquet"  # the cases' part files of a year (``part_name``)
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

    A year is rewritten from its first part file the new cases touch (a replaced case, or a case id
    sorting before the part's last one), merging the stored parts one at a time with the new cases,
    so memory follows the part size and the new cases, never the year (``_rewrite_year``). With a Dask
    ``client`` the touched years are rewritten in parallel on its workers (which must see the store's
    folder); the files are the same bytes either way.
    """
    store = store_path(path)
    if cases["case_id"].duplicated().any():
        raise InputError("write_cases: case_id must be unique within the cases written")
    table = pa.Table.from_pandas(
        cases.loc[:, list(STORE_COLUMNS)], schema=arrow_schema(), preserve_index=False
    )
    for backup in store.glob(f".{PARTITION}=*.old"):  # a swap a crash cut short, whatever its year
        _recover(backup.with_name(backup.name[1:].removesuffix(".old")), backup)
    years = pc.year(table["admission_date"])
    ids = table["case_id"].combine_chunks()
    replaced = {year: n for year, n in _replaced_by_year(store, ids).items() if n}
    touched = sorted(set(pc.unique(years).to_pylist()) | set(replaced))
    # the part size goes with the job: a worker process's ROW_GROUP_ROWS may not be the caller's
    jobs = [(store, int(year), table.filter(pc.equal(years, year)), ids, ROW_GROUP_ROWS) for year in touched]
    if client is None:
        for job in jobs:
            _rewrite_year(*job)
    else:
        client.gather([client.submit(_rewrite_year, *job, pure=False) for job in jobs])
    held = sum(pq.ParquetFile(f).metadata.num_rows for f in part_files(store))
    updated = sum(replaced.values())
    return StoreUpdate(new=len(cases) - updated, updated=updated, rows=held)


def _rewrite_year(store: Path, year: int, incoming: pa.Table, incoming_ids: pa.Array, part_rows: int) -> None:
    """Merge a year's new cases into its part files, one stored row group at a time.

    The new year is built in a hidden folder beside the old one: the parts before the first one the
    new cases touch are linked in as they are; from there the stored row groups (less the replaced
    cases) and the new cases, both sorted by case id, are merged into parts of ``part_rows`` rows.
    Then the folders are swapped, so readers and a crash see the old year or the new one, never a mix
    (for the instant between the two renames, no year: the next write puts the old one back if a
    crash leaves it so).
    """
    folder = store / f"{PARTITION}={year}"
    staging, backup = folder.with_name(f".{folder.name}.new"), folder.with_name(f".{folder.name}.old")
    shutil.rmtree(staging, ignore_errors=True)
    _private_dir(staging)
    parts = sorted(folder.glob(PART_PATTERN))
    incoming = incoming.sort_by("case_id")
    first_new = incoming["case_id"][0].as_py() if incoming.num_rows else None
    start = next((k for k, part in enumerate(parts) if _touched(part, incoming_ids, first_new)), len(parts))
    for part in parts[:start]:
        _link(part, staging / part.name)
    stored = (
        _without(batch, incoming_ids)
        for part in parts[start:]
        for batch in _row_groups(part, incoming.schema)
    )
    for k, rows in enumerate(_chunks(_merged(stored, iter([incoming])), part_rows), start=start):
        _write_file(staging / part_name(k), rows, part_rows)
    if folder.exists():
        os.replace(folder, backup)
    if any(staging.iterdir()):
        os.replace(staging, folder)
    else:  # every case of the year moved or was removed
        staging.rmdir()
    shutil.rmtree(backup, ignore_errors=True)


def _recover(folder: Path, backup: Path) -> None:
    """Finish a swap a crash interrupted: the old year back if the new one never arrived."""
    if backup.exists() and not folder.exists():
        os.replace(backup, folder)
    shutil.rmtree(backup, ignore_errors=True)


def _link(part: Path, target: Path) -> None:
    """An unchanged part into the new year: a hard link (no copy), or a copy where links fail."""
    try:
        os.link(part, target)
    except OSError:
        shutil.copyfile(part, target)
        target.chmod(0o600)


def part_name(index: int) -> str:
    """The ``index``-th part file of a year: zero-padded, so name order is case id order."""
    return f"part-{index:05d}.parquet"


def _touched(part: Path, incoming_ids: pa.Array, first_new: str | None) -> bool:
    """Does merging the new cases change this part: does it hold a replaced case, or a case id
    after the year's first new one?"""
    ids = pq.read_table(part, columns=["case_id"])["case_id"]
    if first_new is not None and ids[len(ids) - 1].as_py() >= first_new:
        return True
    return bool(pc.any(pc.is_in(ids, value_set=incoming_ids)).as_py())


def _replaced_by_year(store: Path, incoming_ids: pa.Array) -> dict[int, int]:
    """Stored cases the incoming ids replace, per year, reading only the case id column of the row
    groups whose id range (Parquet statistics) can hold one."""
    low, high = pc.min_max(incoming_ids).values() if len(incoming_ids) else (None, None)
    found: dict[int, int] = {}
    for part in part_files(store):
        file = pq.ParquetFile(part)
        column = file.schema_arrow.get_field_index("case_id")
        for group in range(file.num_row_groups):
            stats = file.metadata.row_group(group).column(column).statistics
            if low is None or (
                stats is not None
                and stats.has_min_max
                and (stats.max < low.as_py() or stats.min > high.as_py())
            ):
                continue
            ids = file.read_row_group(group, columns=["case_id"])["case_id"]
            hits = int(pc.sum(pc.is_in(ids, value_set=incoming_ids).cast(pa.int64())).as_py() or 0)
            found[_year(part)] = found.get(_year(part), 0) + hits
    return found


def _row_groups(part: Path, schema: pa.Schema) -> Iterator[pa.Table]:
    """A stored part, one row group at a time, in the incoming cases' schema."""
    file = pq.ParquetFile(part)
    for group in range(file.num_row_groups):
        yield file.read_row_group(group).select(schema.names).cast(schema)


def _without(rows: pa.Table, ids: pa.Array) -> pa.Table:
    return rows.filter(pc.invert(pc.is_in(rows["case_id"], value_set=ids)))


def _merged(left: Iterator[pa.Table], right: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Two streams of tables, each sorted by (unique) case id, as one sorted stream.

    Holds one table of each stream: every step emits the rows of both up to the smaller of their last
    ids, which uses up at least one of the two tables.
    """
    a, b = next(left, None), next(right, None)
    while a is not None and b is not None:
        if a.num_rows == 0 or b.num_rows == 0:
            a = next(left, None) if a.num_rows == 0 else a
            b = next(right, None) if b.num_rows == 0 else b
            continue
        bound = pa.scalar(min(a["case_id"][-1].as_py(), b["case_id"][-1].as_py()), pa.string())
        i, j = _count_upto(a, bound), _count_upto(b, bound)
        yield pa.concat_tables([a.slice(0, i), b.slice(0, j)]).sort_by("case_id")
        a, b = a.slice(i), b.slice(j)
    for rest, stream in ((a, left), (b, right)):
        if rest is not None:
            yield rest
            yield from stream


def _count_upto(rows: pa.Table, bound: pa.Scalar) -> int:
    """Rows of a table sorted by case id whose id is at most ``bound`` (a prefix of the table)."""
    return int(pc.sum(pc.less_equal(rows["case_id"], bound).cast(pa.int64())).as_py() or 0)


def _chunks(tables: Iterator[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The stream's rows cut into tables of exactly ``rows`` rows (the last one: the rest)."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        while held >= rows:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, rows)
            pending, held = [whole.slice(rows)], held - rows
    if held:
        yield pa.concat_tables(pending)


def _private_dir(folder: Path) -> None:
    """``folder`` and any parents made for it, mode 0700 (mkdir's mode covers the last one only)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for made in reversed(missing):
        made.mkdir(mode=0o700, exist_ok=True)  # another worker may be making it too


def part_files(store: Path) -> list[Path]:
    """The store's data files in year, then case id order."""
    return sorted(store.glob(f"{PARTITION}=*/{PART_PATTERN}"))


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
    partial = target.with_name(f".{target.name}.partial")  # a leading dot hides it from dataset readers
    _write_file(partial, rows, ROW_GROUP_ROWS)
    os.replace(partial, target)


def _write_file(target: Path, rows: pa.Table, group_rows: int) -> None:
    _private_dir(target.parent)
    pq.write_table(rows.combine_chunks(), target, row_group_size=group_rows)
    target.chmod(0o600)  # patient data: the owner's only, whatever the process's umask
