"""The code dictionaries of a table set (ICD-10 diagnoses, ICD-9-CM-3 procedures): which codes exist.

Ingestion warns about codes outside them and the API names them in a case's answer, from one definition.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import pyarrow

from contract.fields import DIAGNOSIS_FIELDS, PROCEDURE_FIELDS

CODE_DICTIONARIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (DIAGNOSIS_FIELDS, "diagnoses.tsv"),
    (PROCEDURE_FIELDS, "procedures.tsv"),
)


@cache
def code_dictionary(path: Path) -> pyarrow.Array:
    return pyarrow.array(
        pd.read_csv(path, sep="\t", usecols=["code"], dtype=str)["code"], type=pyarrow.large_string()
    )


@cache
def known_codes(path: Path) -> frozenset[str]:
    """The dictionary as a Python set: for the few codes of a request, Arrow's fixed cost per call
    (milliseconds) is far more than the look-ups."""
    return frozenset(code_dictionary(path).to_pylist())
