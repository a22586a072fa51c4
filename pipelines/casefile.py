"""A Parquet case file through a batch step that adds columns (grouping, pricing) without a pandas round trip.

``caselens group`` reads a wide abstract (50 columns) but grouping and pricing read about 30 of them.
Converting every column to pandas and back for the write cost as much CPU as the grouping itself, so
:func:`read_case_columns` keeps the file as an Arrow table and gives pandas only the columns the step
reads, and :func:`write_beside` writes the input's other columns straight from Arrow beside the step's
result. The file written is the one the all-pandas path writes (same columns, order, Arrow types and
pandas metadata), so readers see no difference.

Why not stream by row group: the readmission rule, a budget's point value and weights calibrated on
the cases look across all cases, so per-batch pricing would not equal whole-file pricing; the columns
the step reads for a million cases fit in memory (a few hundred MB).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract.errors import InputError
from pipelines.readers import read_parquet_arrow, text_types

# Parquet write: snappy with dictionary pages, Arrow's default. Measured on the 1M-case output (72
# columns, one core): snappy 1.9 s CPU / 151 MB, lz4 1.9 s / 150 MB, zstd 2.3 s / 121 MB, none 1.5 s
# / 221 MB, none without dictionaries 0.7 s / 551 MB. Snappy costs 0.4 s more than none for a third
# of the bytes, and keeps the files other tools read as they were.
COMPRESSION = "snappy"
# Row groups of 128k rows, where pandas writes one of a million: readers can skip and stream by row
# group, and the writer holds less encoded data at once (a tenth of the system time of the write).
ROW_GROUP_ROWS = 131_072


@contextmanager
def system_memory() -> Iterator[None]:
    """Arrow allocating from the system allocator for the block, its default pool after it.

    A batch step allocates and frees a few large buffers once; under Arrow's default mimalloc pool the
    freed pages went back to the kernel and were faulted in again: on 1M cases ``caselens group``
    spent 2.8 s of system time against 0.9 s with the system allocator (read 2.9 s → 1.0 s CPU).
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def read_case_columns(path: Path, columns: Iterable[str]) -> tuple[pa.Table, pd.DataFrame]:
    """The whole file as Arrow, and a pandas frame of the ``columns`` it has (in the file's order, as
    ``read_parquet_typed`` would give them) plus any column pandas would not hold in its Arrow type
    (integers with missing values become floats): those must come back from pandas on the write."""
    table = read_parquet_arrow(path)
    wanted = set(columns)
    names = [n for n in table.column_names if n in wanted or not _passes_through(table.column(n))]
    threads = pa.cpu_count() > 1
    frame = table.select(names).to_pandas(types_mapper=text_types, use_threads=threads)
    return table, frame


def write_beside(
    table: pa.Table, read: pd.DataFrame, result: pd.DataFrame, path: Path, replaced: Iterable[str] = ()
) -> None:
    """Write what ``result.to_parquet(path, index=False)`` would write had the step run on the whole
    file: ``table``'s columns with ``result``'s over them, where ``result`` is the step's output on
    ``read`` (the frame :func:`read_case_columns` gave). Input columns keep their place but those in
    ``replaced`` (the step drops and appends them, as the grouping does its own columns) and those the
    step dropped; the step's new columns follow in ``result``'s order."""
    if not isinstance(result.index, pd.RangeIndex) or len(result) != table.num_rows:
        raise InputError("the grouped cases must keep the file's rows, in order")
    replaced = set(replaced)
    names = [
        c for c in table.column_names if c not in replaced and (c in result.columns or c not in read.columns)
    ]
    names += [c for c in result.columns if c in replaced or c not in table.column_names]
    from_pandas = [c for c in names if c in result.columns]
    computed = pa.Table.from_pandas(result[from_pandas], preserve_index=False)
    passed = [c for c in names if c not in result.columns]
    # The pandas metadata and Arrow types the all-pandas write gives the passed columns: from an empty
    # frame of their pandas dtypes (pass-through columns are those whose dtype does not hang on values).
    empty = table.select(passed).slice(0, 0).to_pandas(types_mapper=text_types)
    passed_schema = pa.Table.from_pandas(empty, preserve_index=False).schema
    arrays = {c: computed.column(c) for c in from_pandas}
    for c in passed:
        arrays[c] = table.column(c).cast(passed_schema.field(c).type)
    fields = [computed.schema.field(c) if c in from_pandas else passed_schema.field(c) for c in names]
    schema = pa.schema(fields, metadata=_pandas_metadata(names, computed.schema, passed_schema))
    out = pa.Table.from_arrays([arrays[c] for c in names], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No dictionary pages for floats: costs and amounts are nearly all distinct, so Arrow builds each
    # column's dictionary only to give it up (0.25 s of 1.9 s on 1M cases, for 10% more bytes).
    dictionary = [f.name for f in schema if not pa.types.is_floating(f.type)]
    pq.write_table(
        out, path, row_group_size=ROW_GROUP_ROWS, compression=COMPRESSION, use_dictionary=dictionary
    )


def _passes_through(column: pa.ChunkedArray) -> bool:
    """Whether a column's pandas dtype, hence its written type, depends on its type alone."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return column.null_count == 0  # with missing values pandas makes them float / object
    return (
        pa.types.is_floating(kind)
        or kind in (pa.string(), pa.large_string())
        or (pa.types.is_timestamp(kind) and kind.tz is None)
    )


def _pandas_metadata(names: list[str], *schemas: pa.Schema) -> dict[bytes, bytes]:
    """One frame's pandas metadata from the metadata of frames holding its columns."""
    metas = [json.loads(s.metadata[b"pandas"]) for s in schemas]
    entries = {e["name"]: e for meta in metas for e in meta["columns"]}
    merged = {**metas[0], "columns": [entries[n] for n in names]}
    return {b"pandas": json.dumps(merged).encode()}
