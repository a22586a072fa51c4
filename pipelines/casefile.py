"""A Parquet case file through a batch step that adds columns (grouping, pricing) without a pandas round trip.

``caselens group`` reads a wide abstract (50 columns) but grouping and pricing read about 30 of them.
Converting every column to pandas and back for the write cost as much CPU as the grouping itself, so
:func:`read_case_columns` reads and gives pandas only the columns the step reads, and
:func:`write_beside` streams the input's other columns from the file, row group by row group, straight
into the output beside the step's result. The file written holds what the all-pandas path writes (same
columns, order, Arrow types and pandas metadata), so readers see no difference.

The step's own columns are read whole, not streamed: the readmission rule, a budget's point value and
weights calibrated on the cases look across all cases, so pricing row group by row group would not
equal pricing the file; those columns of a million cases fit in memory (a few hundred MB).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract.errors import InputError
from contract.fields import TEXT, is_text_categories
from pipelines.readers import text_types

# Parquet write, measured on the 1M-case priced output (81 columns, one core): snappy everywhere 1.9 s
# CPU / 165 MB, lz4 1.8 s / 164 MB, zstd(1) 2.4 s / 122 MB, none 1.4 s / 274 MB. The floats (costs,
# amounts: 35 columns, nearly all values distinct) are two thirds of the bytes and most of the codec's
# time: snappy took 0.81 s on them against 0.27 s uncompressed, for 136 MB against 224 MB. So floats
# are written uncompressed and every other column with snappy, the codec of the input and of pandas;
# a column's codec is per column chunk in Parquet, which every reader reads.
COMPRESSION = "snappy"
FLOAT_COMPRESSION = "none"
# A text column with more distinct values than half the rows of a sample (case and patient ids) is
# written without a dictionary: Arrow would build one only to give it up at its size limit. Counted on
# the first rows: on a whole row group of the 1M priced cases the count cost 0.07 s, and decided alike.
DICTIONARY_MAX_DISTINCT_SHARE = 0.5
DICTIONARY_SAMPLE_ROWS = 16_384
# A text column the file stores as a small dictionary in every row group (at most 64 KiB stored) is
# carried as that dictionary: read as Arrow dictionaries (passed columns) or pandas categories (the
# step's), it is neither decoded to a million strings nor hashed again by the step and the writer. Told
# from the file's metadata, without reading a value. On the 1M demo cases: principal diagnosis (706
# distinct, a 4 KB dictionary) 0.06 s faster through read, group and write; other diagnoses (95,703
# distinct, 358 KB) 0.035 s slower, as its dictionary outgrows the writer's 1 MB dictionary page and
# is decoded again.
CODED_MAX_DICTIONARY_BYTES = 64 * 1024
# Row groups of 128k rows, where pandas writes one of a million: readers can skip and stream by row
# group, and the writer holds less encoded data at once (system time of the command on 1M cases
# 1.8 s → 1.1 s).
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


@dataclass(frozen=True)
class CaseFile:
    """An open Parquet case file: what :func:`write_beside` reads the passed-through columns from."""

    path: Path
    file: pq.ParquetFile
    passed: tuple[str, ...]  # the columns not given to pandas
    coded: tuple[str, ...]  # its text columns of few values: pandas categories, or passed as dictionaries

    @property
    def column_names(self) -> list[str]:
        return self.file.schema_arrow.names


def read_case_columns(path: Path, columns: Iterable[str]) -> tuple[CaseFile, pd.DataFrame]:
    """The open file, and a pandas frame of the ``columns`` it has (in the file's order, as
    ``read_parquet_typed`` would give them) plus any column pandas would not hold in its Arrow type
    (integers with missing values become floats): those must come back from pandas on the write.
    The other columns are not read here: :func:`write_beside` streams them, row group by row group.

    Text columns of few values come as pandas categories (``CaseFile.coded``), not ``TEXT``: the
    steps take either, and :func:`write_beside` writes them back as the text they were."""
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"cannot read {path.name} as Parquet: {error}") from None
    if not file.schema_arrow.names or file.metadata.num_rows == 0:
        raise InputError(f"{path.name} has no data rows")
    wanted = set(columns)
    passed = tuple(n for n in file.schema_arrow.names if n not in wanted and _passes_through(file, n))
    names = [n for n in file.schema_arrow.names if n not in passed]
    coded = _small_dictionaries(file, [f.name for f in file.schema_arrow if _is_text(f.type)])
    read = [n for n in names if n in coded]
    reader = pq.ParquetFile(path, read_dictionary=read) if read else file
    threads = pa.cpu_count() > 1
    table = reader.read(columns=names, use_threads=threads, use_pandas_metadata=False)
    frame = table.to_pandas(
        types_mapper=text_types, use_threads=threads, split_blocks=True, self_destruct=True
    )
    return CaseFile(Path(path), file, passed, tuple(coded)), frame


def write_beside(
    source: CaseFile, read: pd.DataFrame, result: pd.DataFrame, path: Path, replaced: Iterable[str] = ()
) -> None:
    """Write what ``result.to_parquet(path, index=False)`` would write had the step run on the whole
    file: ``source``'s columns with ``result``'s over them, where ``result`` is the step's output on
    ``read`` (the frame :func:`read_case_columns` gave). Input columns keep their place but those in
    ``replaced`` (the step drops and appends them, as the grouping does its own columns) and those the
    step dropped; the step's new columns follow in ``result``'s order. The columns no step read are
    copied from the source a row group at a time, so they are never all in memory; the output is
    written beside and moved over ``path`` at the end (``path`` may be the source)."""
    if not isinstance(result.index, pd.RangeIndex) or len(result) != source.file.metadata.num_rows:
        raise InputError("the grouped cases must keep the file's rows, in order")
    replaced = set(replaced)
    columns = source.column_names
    names = [c for c in columns if c not in replaced and (c in result.columns or c not in read.columns)]
    names += [c for c in result.columns if c in replaced or c not in columns]
    from_pandas = [c for c in names if c in result.columns]
    computed = pa.Table.from_pandas(result[from_pandas], preserve_index=False)
    passed = [c for c in names if c not in result.columns]
    own = {c for c in columns if c not in replaced}  # (the input's columns the output keeps)
    stored = {f.name: f.type for f in source.file.schema_arrow}
    # Text categories (the input's text read so, a step's labels made so) are written as dictionaries,
    # typed as text, as the all-pandas path writes them; but an input column the file itself holds as
    # a dictionary (pandas categories written) goes back as one, as pandas writes it.
    categories = [
        c
        for c in from_pandas
        if is_text_categories(result[c]) and not (c in own and pa.types.is_dictionary(stored[c]))
    ]
    for c in categories:  # (no category at all: Arrow types an empty dictionary as null, not text)
        if pa.types.is_null(computed.schema.field(c).type.value_type):
            none = pa.nulls(len(computed), pa.dictionary(pa.int8(), pa.string()))
            computed = computed.set_column(computed.schema.get_field_index(c), c, none)
    # The pandas metadata and Arrow types the all-pandas write gives the passed columns and the
    # categories: from an empty frame of their pandas dtypes (pass-through columns are those whose
    # dtype does not hang on values; the categories' is ``TEXT``).
    typed = [c for c in names if c in categories or c in passed]
    inside = [c for c in typed if c in own]  # (the file's pandas metadata says their dtypes)
    empty = source.file.schema_arrow.empty_table().select(inside).to_pandas(types_mapper=text_types)
    empty = empty.assign(**{c: pd.Series(dtype=TEXT) for c in typed if c not in inside})
    passed_schema = pa.Table.from_pandas(empty, preserve_index=False).schema
    fields = [passed_schema.field(c) if c in typed else computed.schema.field(c) for c in names]
    schema = pa.schema(fields, metadata=_pandas_metadata(names, computed.schema, passed_schema))
    coded = [c for c in passed if c in source.coded]
    if coded:  # (the same file, its text columns of few values read as the dictionaries they are)
        source = CaseFile(
            source.path, pq.ParquetFile(source.path, read_dictionary=coded), source.passed, source.coded
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with ExitStack() as stack:
            writer: pq.ParquetWriter | None = None
            for start, batch in _passed_batches(source, passed, len(result)):
                part = computed.slice(start, batch.num_rows)
                arrays = [
                    part.column(c)
                    if c in from_pandas
                    else batch.column(c)
                    if c in coded
                    else batch.column(c).cast(schema.field(c).type)
                    for c in names
                ]
                table = pa.Table.from_arrays(arrays, names=names)
                if writer is None:
                    writer = stack.enter_context(_writer(partial, schema, table))
                writer.write_table(table.cast(writer.schema))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _small_dictionaries(file: pq.ParquetFile, text: list[str]) -> list[str]:
    """The ``text`` columns stored as a dictionary of at most ``CODED_MAX_DICTIONARY_BYTES`` in every
    row group (a dictionary page, no fallback to plain values: the writer falls back past 1 MB)."""
    meta = file.metadata

    def small(name: str) -> bool:
        index = file.schema_arrow.get_field_index(name)
        for group in range(meta.num_row_groups):
            column = meta.row_group(group).column(index)
            if column.path_in_schema != name or not column.has_dictionary_page:
                return False
            if column.data_page_offset - column.dictionary_page_offset > CODED_MAX_DICTIONARY_BYTES:
                return False
        return True

    return [c for c in text if small(c)]


def _writer(path: Path, schema: pa.Schema, first: pa.Table) -> pq.ParquetWriter:
    """A writer of ``first``'s types (dictionary columns written as they are) whose file says ``schema``:
    Arrow's readers take a column's type from the stored Arrow schema (``ARROW:schema``), so the file
    reads back exactly as the all-pandas write's (text, not dictionaries; same metadata byte for byte)."""
    written = pa.schema([first.schema.field(f.name) if _is_text(f.type) else f for f in schema])
    writer = pq.ParquetWriter(path, written, store_schema=False, **_encoding(first))
    stored = base64.b64encode(schema.serialize().to_pybytes())  # what store_schema=True stores
    writer.add_key_value_metadata({**schema.metadata, b"ARROW:schema": stored})
    return writer


def _is_text(kind: pa.DataType) -> bool:
    """Text, or a dictionary of text (as a column of few values is read)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _encoding(first: pa.Table) -> dict[str, Any]:
    """The writer's codec, dictionary and statistics per column, chosen on the first row group.

    No dictionary pages for floats (costs and amounts are nearly all distinct: Arrow built each
    dictionary only to give it up, 0.25 s of 1.9 s on 1M cases) nor for text columns of mostly distinct
    values in the first rows. No min/max statistics for text columns: row groups are in case order, not
    sorted by any text column, so every row group spans nearly every value and the statistics would
    prune nothing; they cost 0.22 s of the write on 1M cases (numbers, dates and flags keep theirs, null
    counts included).
    """
    floats = {f.name for f in first.schema if pa.types.is_floating(f.type)}
    text = {f.name for f in first.schema if _is_text(f.type)}
    sample = first.slice(0, DICTIONARY_SAMPLE_ROWS)
    limit = DICTIONARY_MAX_DISTINCT_SHARE * sample.num_rows
    plain = [c for c in text if not pa.types.is_dictionary(first.schema.field(c).type)]  # (few values)
    distinct = {c for c in plain if pc.count_distinct(sample.column(c)).as_py() > limit}
    return {
        "compression": {c: FLOAT_COMPRESSION if c in floats else COMPRESSION for c in first.column_names},
        "use_dictionary": [c for c in first.column_names if c not in floats and c not in distinct],
        "write_statistics": [c for c in first.column_names if c not in text],
    }


def _passed_batches(source: CaseFile, passed: list[str], rows: int) -> Iterator[tuple[int, pa.Table]]:
    """(first row, the ``passed`` columns of the rows from there) in ``ROW_GROUP_ROWS`` steps."""
    if not passed:  # nothing to read: tables of no column that only count the rows
        for start in range(0, rows, ROW_GROUP_ROWS):
            yield start, pa.table({"rows": pa.nulls(min(ROW_GROUP_ROWS, rows - start))}).select([])
        return
    start = 0
    for batch in source.file.iter_batches(batch_size=ROW_GROUP_ROWS, columns=passed, use_threads=False):
        yield start, pa.Table.from_batches([batch])
        start += batch.num_rows


def _passes_through(file: pq.ParquetFile, name: str) -> bool:
    """Whether a column's pandas dtype, hence its written type, depends on its type alone (integers
    and yes/no columns only when the file's statistics show no missing value)."""
    kind = file.schema_arrow.field(name).type
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return _no_nulls(file, name)  # with missing values pandas makes them float / object
    return (
        pa.types.is_floating(kind)
        or kind in (pa.string(), pa.large_string())
        or (pa.types.is_timestamp(kind) and kind.tz is None)
    )


def _no_nulls(file: pq.ParquetFile, name: str) -> bool:
    """True when every row group's statistics say the column has no missing value (False when unsure)."""
    index = file.schema_arrow.get_field_index(name)
    meta = file.metadata
    for group in range(meta.num_row_groups):
        column = meta.row_group(group).column(index)
        stats = column.statistics
        if column.path_in_schema != name or stats is None or not stats.has_null_count or stats.null_count:
            return False
    return True


def _pandas_metadata(names: list[str], *schemas: pa.Schema) -> dict[bytes, bytes]:
    """One frame's pandas metadata from the metadata of frames holding its columns."""
    metas = [json.loads(s.metadata[b"pandas"]) for s in schemas]
    entries = {e["name"]: e for meta in metas for e in meta["columns"]}
    merged = {**metas[0], "columns": [entries[n] for n in names]}
    return {b"pandas": json.dumps(merged).encode()}
