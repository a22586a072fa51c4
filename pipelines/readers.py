"""Read a hospital export (CSV, Excel or Parquet) into an all-text table, exactly as the file holds it.

Every reader returns text (pandas ``string[pyarrow]``: compact, vectorised) so that one parser turns text
into canonical types whatever the format, and a rejected row can be written back in its original form.
CSV is read with pyarrow (multi-threaded, ~1 s per million rows); its encoding is UTF-8 (with or without
BOM) when the bytes decode as UTF-8, else GB18030, the superset of GBK/GB2312 that Chinese hospital
systems export. A strict UTF-8 decode is a certain test, where statistical detectors guess on short
files.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from contract.errors import InputError
from contract.fields import TEXT

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx",)
PARQUET_SUFFIXES = (".parquet", ".pq")
_CHUNK = 1 << 22


@dataclass(frozen=True)
class RawTable:
    """An export as read: every column text, plus what identifies the file."""

    frame: pd.DataFrame
    path: Path
    sha256: str
    size_bytes: int
    format: str
    encoding: str | None


def read_table(path: Path | str) -> RawTable:
    """Read a CSV, Excel (.xlsx) or Parquet export into text columns; bad or empty files raise InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot read {path}: no such file")
    suffix = path.suffix.lower()
    sha256, encoding = _fingerprint(path, text=suffix in CSV_SUFFIXES)
    if suffix in CSV_SUFFIXES:
        frame, fmt = _read_csv(path, encoding), "csv"
    elif suffix in EXCEL_SUFFIXES:
        frame, fmt, encoding = _read_excel(path), "xlsx", None
    elif suffix in PARQUET_SUFFIXES:
        frame, fmt, encoding = _read_parquet(path), "parquet", None
    else:
        known = ", ".join(CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES)
        raise InputError(f"cannot read {path.name}: unsupported file type {suffix!r} (use one of {known})")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise InputError(f"{path.name} has no data rows: nothing to ingest")
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise InputError(f"{path.name} has duplicate column names: {', '.join(map(str, duplicated))}")
    return RawTable(frame, path, sha256, path.stat().st_size, fmt, encoding)


def _fingerprint(path: Path, text: bool) -> tuple[str, str | None]:
    """SHA-256 of the file and, for a text file, its encoding, in one streaming pass."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, first = text, b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            first = first or chunk[:3]
            utf8 = utf8 and _decodes(decoder, chunk, final=False)
    if not text:
        return digest.hexdigest(), None
    if not (utf8 and _decodes(decoder, b"", final=True)):
        return digest.hexdigest(), "gb18030"
    return digest.hexdigest(), "utf-8-sig" if first == codecs.BOM_UTF8 else "utf-8"


def _decodes(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool) -> bool:
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    encoding = encoding or "utf-8"
    with path.open("r", encoding=encoding, newline="") as stream:
        header_line = stream.readline()
    if not header_line.strip():
        raise InputError(f"{path.name} is empty: expected a header row and data rows")
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    names = next(csv.reader([header_line], delimiter=delimiter))
    names = [name.strip() for name in names]
    try:
        table = pacsv.read_csv(
            path,
            # pyarrow skips a UTF-8 BOM itself and decodes UTF-8 natively, far faster than transcoding
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, encoding="utf8" if encoding.startswith("utf-8") else encoding
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        reason = re.sub(r"(got \d+)\s*:.*", r"\1", str(error), flags=re.DOTALL)  # drop the row's content
        raise InputError(f"cannot read {path.name} as CSV ({encoding}): {reason}") from None
    return table.to_pandas(types_mapper=text_types)


def _read_excel(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_excel(path, dtype=object, engine="openpyxl")
    except Exception as error:  # openpyxl raises many types for a damaged workbook
        raise InputError(f"cannot read {path.name} as an Excel workbook: {error}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.apply(lambda column: column.map(_cell_text)).astype(TEXT)


def _cell_text(value: object) -> str | None:
    """An Excel cell as the text a user sees: whole numbers without '.0', dates as 2024-01-05."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.time() != dt.time() else "%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_parquet_typed(path: Path | str) -> pd.DataFrame:
    """A Parquet file in its own column types, text as Arrow-backed strings (no copy, no text round trip).

    For batch steps that write no rejects (grouping, pricing): parsing every column to text and back
    cost more than the grouping itself. Ingestion keeps ``read_table``'s all-text form.
    """
    threads = pa.cpu_count() > 1  # on one core, Arrow's thread pools only add hand-offs (2× the CPU time)
    table = read_parquet_arrow(path)
    return table.to_pandas(types_mapper=text_types, use_threads=threads, self_destruct=True)


def read_parquet_arrow(path: Path | str) -> pa.Table:
    """A Parquet file as an Arrow table, with at least one row and column (else an ``InputError``)."""
    path = Path(path)
    table = _parquet_table(path, use_threads=pa.cpu_count() > 1)
    if table.num_columns == 0 or table.num_rows == 0:
        raise InputError(f"{path.name} has no data rows")
    return table


def _parquet_table(path: Path, use_threads: bool = True) -> pa.Table:
    try:
        return pq.read_table(path, use_threads=use_threads)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"cannot read {path.name} as Parquet: {error}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    table = _parquet_table(path)
    columns = [_column_text(table.column(i)) for i in range(table.num_columns)]
    return pa.table(columns, names=table.column_names).to_pandas(types_mapper=text_types)


def _column_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A typed Parquet column as text: timestamps become dates, whole floats lose '.0'."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.date32())
    elif pa.types.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
    elif pa.types.is_floating(kind):
        whole = pc.equal(column, pc.round(column))
        return pc.if_else(
            whole, pc.cast(pc.cast(column, pa.int64(), safe=False), pa.string()), pc.cast(column, pa.string())
        )
    return pc.cast(column, pa.string())


def text_types(kind: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    return TEXT if kind in (pa.string(), pa.large_string()) else None
