"""What was wrong with the patient (true codes), what the coder wrote (as-coded) and what the audit found.

True codes: the type's principal diagnosis and procedure, the chronic conditions the patient carries
(when they may stand beside that principal) and one complication at the stay's severity (a CC or an
MCC). Each abstract is coded by one of ten coders with their own error rate (2%-15%), higher on
complex cases; an error is a missed CC/MCC, an unsupported CC/MCC, a wrong principal diagnosis or a
missing procedure. Coding quality control audits a sample (more of the high-risk abstracts) and
records the corrected codes.

Codes stay integer indices into the catalog's vocabulary (-1 = none) until ``join_codes`` writes them
as '|'-separated text, so a million abstracts are coded with array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.contract import CODE_SEPARATOR
from pipelines.demo.catalog import Catalog

CODER_ERROR_RATES = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.10, 0.12, 0.15)
CODER_WORKLOAD = (0.14, 0.12, 0.12, 0.11, 0.11, 0.1, 0.09, 0.08, 0.07, 0.06)
HIGH_ERROR_CODERS = ("coder_09", "coder_10")
ERROR_TYPES = ("missed_cc_mcc", "unsupported_cc_mcc", "wrong_principal", "missing_procedure")
ERROR_WEIGHTS = np.array([0.35, 0.25, 0.2, 0.2])
AUDIT_BASE, AUDIT_HIGH_RISK = 0.10, 0.40


@dataclass(frozen=True)
class Codes:
    """One code set per stay: principal diagnosis, principal and other procedure (n,), secondary diagnoses
    (n, k)."""

    principal: np.ndarray
    procedure: np.ndarray
    other_procedure: np.ndarray
    secondary: np.ndarray


def join_codes(matrix: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """'|'-joined codes of each row of an index matrix (-1 = empty); None when a row has none.

    Rows repeat a lot (the same chronic conditions, the same complication), so rows are numbered by
    their content (one factorisation per column) and each distinct row is joined once."""
    matrix = np.where(matrix >= 0, matrix, -1).astype(np.int64)
    key = np.zeros(len(matrix), dtype=np.int64)
    for column in matrix.T:
        key, _ = pd.factorize(key * (len(vocabulary) + 1) + column + 1)
    _, first = np.unique(key, return_index=True)
    text = np.array(
        [CODE_SEPARATOR.join(vocabulary[row[row >= 0]]) or None for row in matrix[first]], dtype=object
    )
    return text[key]


def true_codes(
    stays: pd.DataFrame, patients: pd.DataFrame, catalog: Catalog, rng: np.random.Generator
) -> Codes:
    """The codes of what the patient had and had done."""
    types = stays["type"].to_numpy()
    n = len(types)
    principal = catalog.principal.draw(types, rng)
    procedure = catalog.procedures.draw(types, rng)
    # A minor procedure that does not decide the group often goes unlisted.
    minor = ~catalog.types["procedure_groups"].to_numpy()[types]
    procedure = np.where(minor & (rng.random(n) < 0.3), -1, procedure)
    other = catalog.other_procedures.draw(types, rng)
    other = np.where((procedure >= 0) & (other != procedure) & (rng.random(n) < 0.7), other, -1)
    chronic = patients.filter(like="chronic_").to_numpy()[stays["patient"].to_numpy()]
    chronic &= catalog.chronic_allowed[types]
    columns = [np.where(chronic, catalog.chronic_codes[None, :], -1)]
    severity = stays["severity"].to_numpy()
    for level, kind in ((1, "cc"), (2, "mcc")):
        pool = catalog.complications[kind]
        pick = rng.integers(0, len(pool), n)
        fits = catalog.complication_allowed[kind][types, pick]
        columns.append(np.where((severity == level) & fits, pool[pick], -1)[:, None])
    return Codes(principal, procedure, other.astype(np.int32), np.hstack(columns).astype(np.int32))


def cc_level(codes: Codes, catalog: Catalog) -> np.ndarray:
    """0 none, 1 CC, 2 MCC: the strongest secondary diagnosis that counts beside the principal."""
    vocab = catalog.diagnoses
    secondary = codes.secondary
    present = secondary >= 0
    safe = np.maximum(secondary, 0)
    excluded = vocab.secondary_table[safe] == vocab.principal_table[np.maximum(codes.principal, 0)][:, None]
    counted = np.where(present & ~excluded, vocab.level[safe], 0)
    return counted.max(axis=1).astype(np.int64)


def code_abstracts(
    stays: pd.DataFrame, truth: Codes, catalog: Catalog, rng: np.random.Generator
) -> tuple[Codes, pd.DataFrame]:
    """As-coded codes and, per stay, the coder, the true error probability and the injected error."""
    n = len(stays)
    types = stays["type"].to_numpy()
    rows = np.arange(n)
    coder = rng.choice(len(CODER_ERROR_RATES), n, p=np.array(CODER_WORKLOAD) / sum(CODER_WORKLOAD))
    present = truth.secondary >= 0
    n_secondary = present.sum(axis=1)
    true_level = cc_level(truth, catalog)
    surgical = catalog.types["surgical"].to_numpy()[types]
    complexity = 0.6 + 0.15 * n_secondary + 0.3 * surgical + 0.3 * (true_level > 0)
    p_error = np.clip(np.array(CODER_ERROR_RATES)[coder] * complexity, 0, 0.5)
    error = rng.random(n) < p_error

    possible = np.column_stack([true_level > 0, np.ones(n, bool), n_secondary > 0, truth.procedure >= 0])
    cum = np.cumsum(possible * ERROR_WEIGHTS, axis=1)
    kind = np.where(error, (rng.random(n)[:, None] * cum[:, -1:] > cum).sum(axis=1), -1)

    secondary = truth.secondary.copy()
    leveled = present & (catalog.diagnoses.level[np.maximum(secondary, 0)] > 0)
    last = secondary.shape[1] - 1 - np.argmax(leveled[:, ::-1], axis=1)
    missed = kind == 0
    secondary[rows[missed], last[missed]] = -1

    mcc = catalog.complications["mcc"]
    added = mcc[rng.integers(0, len(mcc), n)]
    unsupported = (kind == 1) & ~(secondary == added[:, None]).any(axis=1)
    secondary = np.hstack([secondary, np.where(unsupported, added, -1)[:, None]])

    principal = truth.principal.copy()
    swap = kind == 2
    first = np.argmax(secondary >= 0, axis=1)
    principal[swap] = secondary[rows[swap], first[swap]]
    secondary[rows[swap], first[swap]] = truth.principal[swap]
    # A missing procedure: the principal one is left out (an other procedure moves up in its place).
    dropped = kind == 3
    procedure = np.where(dropped, truth.other_procedure, truth.procedure)
    other = np.where(dropped, -1, truth.other_procedure)

    coded = Codes(principal, procedure, other, secondary)
    facts = pd.DataFrame(
        {
            "coder_id": np.array([f"coder_{i + 1:02d}" for i in range(len(CODER_ERROR_RATES))])[coder],
            "true_coding_error_prob": p_error,
            "true_error_type": np.where(kind >= 0, np.array(ERROR_TYPES, dtype=object)[kind.clip(0)], None),
            "true_cc_level": true_level,
            "coded_cc_level": cc_level(coded, catalog),
        }
    )
    return coded, facts


def audit(
    facts: pd.DataFrame,
    truth_text: dict[str, np.ndarray],
    discharged: np.ndarray,
    end: np.datetime64,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Coding QC: audit about 15% of abstracts, more of those with an MCC or a high-error coder.

    An audit finds the error if there is one and records the corrected codes (``truth_text``: the true
    ``diagnoses`` and ``procedures`` as text, principal first); audits that would fall after ``end``
    have not happened yet."""
    n = len(facts)
    high_risk = (facts["coded_cc_level"].to_numpy() == 2) | facts["coder_id"].isin(
        HIGH_ERROR_CODERS
    ).to_numpy()
    sampled = rng.random(n) < np.where(high_risk, AUDIT_HIGH_RISK, AUDIT_BASE)
    when = discharged + rng.integers(7, 46, n).astype("timedelta64[D]")
    audited = sampled & (when < end)
    found = audited & facts["true_error_type"].notna().to_numpy()
    return pd.DataFrame(
        {
            "audited": pd.array(audited, dtype="boolean"),
            "audit_date": pd.Series(np.where(audited, when, np.datetime64("NaT"))).astype("datetime64[ns]"),
            "audit_error": pd.array(np.where(audited, found, pd.NA), dtype="boolean"),
            "audit_error_type": np.where(found, facts["true_error_type"], None),
            "corrected_diagnoses": np.where(found, truth_text["diagnoses"], None),
            "corrected_procedures": np.where(found, truth_text["procedures"], None),
        }
    )
