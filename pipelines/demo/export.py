"""Canonical cases written back out in a hospital's export layout (e.g. the Chinese abstract, GB18030).

The layout is an ingestion mapping read backwards, so a file written here ingests with the same mapping
(``caselens ingest cases.zh.csv --mapping cn-abstract``) into the same cases: field names become the
export's column names, code lists spread over numbered columns (其他诊断编码1..n), coded values take
the first label the mapping reads as them, and a charge group made of several export items carries its
amount in the first item.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from contract.fields import FIELDS, exploded_code_lists
from pipelines.mapping import Mapping, load_mapping

ZH_MAPPING = "cn-abstract"
ZH_ENCODING = "gb18030"


def to_export(cases: pd.DataFrame, mapping: Mapping) -> pd.DataFrame:
    """``cases`` (canonical columns) as the text columns of the export ``mapping`` reads."""
    out: dict[str, pd.Series] = {}
    for field in FIELDS:
        column = cases[field.name]
        if field.name in mapping.wide:
            out.update(_numbered(column, mapping.wide[field.name]))
            continue
        text = _text(column, field.kind)
        labels = _labels(mapping.values.get(field.name, {}))
        if labels:
            text = text.map(lambda v, labels=labels: labels.get(v, v))
        sources = mapping.sources(field)
        out[sources[0]] = text
        for extra in sources[1:]:
            out[extra] = pd.Series(np.where(column.notna(), "0.00", None), index=cases.index, dtype=object)
    return pd.DataFrame(out)


def write_zh_csv(cases: pd.DataFrame, path: Path) -> Path:
    """The Chinese discharge-abstract layout (preset ``cn-abstract``) as a GB18030 CSV."""
    to_export(cases, load_mapping(ZH_MAPPING)).to_csv(path, index=False, encoding=ZH_ENCODING)
    return path


def _text(column: pd.Series, kind: str) -> pd.Series:
    if kind == "date":
        return column.dt.strftime("%Y-%m-%d").astype(object).where(column.notna(), None)
    if kind == "float":
        return column.map(lambda v: None if pd.isna(v) else f"{v:.2f}")
    if kind in ("int", "bool"):
        return column.astype(object).map(lambda v: None if pd.isna(v) else str(v).lower())
    return column.astype(object)


def _labels(table: dict[str, object]) -> dict[str, str]:
    """Canonical value (as text) -> the first export label the mapping reads as that value."""
    labels: dict[str, str] = {}
    for label, value in table.items():
        labels.setdefault(str(value).lower() if isinstance(value, bool) else str(value), label)
    return labels


def _numbered(column: pd.Series, prefix: str) -> dict[str, pd.Series]:
    """A code list as numbered columns (``prefix1``, ``prefix2``, …) as wide abstracts hold it."""
    codes = exploded_code_lists(column)
    rows, values = codes.index.to_numpy(), codes.to_numpy(dtype=object)
    rank = codes.groupby(level=0).cumcount().to_numpy()
    out = {}
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        numbered = np.full(len(column), None, dtype=object)
        numbered[rows[rank == k]] = values[rank == k]
        out[f"{prefix}{k + 1}"] = pd.Series(numbered, index=column.index, dtype=object)
    return out
