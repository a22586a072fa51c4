"""What was wrong with the patient (true codes), what the coder wrote (as-coded) and what the audit found.

True codes: the type's principal diagnosis and procedure, the chronic conditions the patient carries
(when they may stand beside that principal) and one complication at the stay's severity (a CC or an
MCC). Each abstract is coded by one of ten coders with their own error rate (2%-15%), higher on
complex cases; an error is a missed CC/MCC, an unsupported CC/MCC, a wrong principal diagnosis or a
missing procedure. Coding quality control audits a sample (more of the high-risk abstracts) and
records the corrected codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.contract import CODE_SEPARATOR
from pipelines.demo.catalog import Catalog

CODER_ERROR_RATES = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.10, 0.12, 0.15)
CODER_WORKLOAD = (0.14, 0.12, 0.12, 0.11, 0.11, 0.1, 0.09, 0.08, 0.07, 0.06)
ERROR_TYPES = ("missed_cc_mcc", "unsupported_cc_mcc", "wrong_principal", "missing_procedure")
ERROR_WEIGHTS = np.array([0.35, 0.25, 0.2, 0.2])
AUDIT_BASE, AUDIT_HIGH_RISK = 0.10, 0.40


def join_codes(columns: list[np.ndarray]) -> np.ndarray:
    """'|'-joined codes of each row from code columns (None = empty), None when a row has none."""
    out = np.full(len(columns[0]), "", dtype=object)
    for col in columns:
        present = pd.notna(col)
        text = np.where(present, col, "").astype(object)
        out = np.where(present & (out != ""), out + CODE_SEPARATOR + text, out + text)
    return np.where(out == "", None, out)


def true_codes(
    stays: pd.DataFrame, patients: pd.DataFrame, catalog: Catalog, rng: np.random.Generator
) -> dict:
    """True principal diagnosis and procedures, and the true secondary diagnoses as code columns."""
    types = stays["type"].to_numpy()
    n = len(types)
    principal = catalog.principal.draw(types, rng)
    has_proc = catalog.procedures.sizes[types] > 0
    medical = ~catalog.types["surgical"].to_numpy()[types]
    proc = np.where(has_proc & ~(medical & (rng.random(n) < 0.3)), catalog.procedures.draw(types, rng), None)
    chronic_flags = patients.filter(like="chronic_").to_numpy()[stays["patient"].to_numpy()]
    chronic_flags &= catalog.chronic_allowed[types]
    secondary = [
        np.where(chronic_flags[:, k], codes[0], None) for k, codes in enumerate(catalog.chronic["codes"])
    ]
    severity = stays["severity"].to_numpy()
    for level, kind in ((1, "cc"), (2, "mcc")):
        pool = catalog.complications[kind]
        allowed = catalog.complication_allowed[kind][types]
        pick = rng.integers(0, len(pool), n)
        ok = allowed[np.arange(n), pick]
        secondary.append(np.where((severity == level) & ok, pool[pick], None))
    return {"principal": principal, "procedure": proc, "secondary": secondary}


def coded_level(principal: np.ndarray, secondary: list[np.ndarray], catalog: Catalog) -> np.ndarray:
    """0 none, 1 CC, 2 MCC: the strongest secondary diagnosis that counts beside the principal."""
    excl = pd.Series(principal).map(catalog.exclusion).to_numpy()
    level = np.zeros(len(principal), dtype=np.int64)
    for col in secondary:
        s = pd.Series(col)
        lv = s.map(catalog.cc_level).fillna(0).astype(np.int64).to_numpy()
        own = s.map(catalog.secondary_table).to_numpy()
        counts = ~(pd.notna(own) & (own == excl))
        level = np.maximum(level, np.where(counts, lv, 0))
    return level


def code_abstracts(
    stays: pd.DataFrame, truth: dict, catalog: Catalog, rng: np.random.Generator
) -> pd.DataFrame:
    """As-coded abstract codes, the coder, the true error probability and the injected error."""
    n = len(stays)
    types = stays["type"].to_numpy()
    coder = rng.choice(len(CODER_ERROR_RATES), n, p=np.array(CODER_WORKLOAD) / sum(CODER_WORKLOAD))
    secondary = [c.copy() for c in truth["secondary"]]
    n_secondary = np.sum([pd.notna(c) for c in secondary], axis=0)
    true_level = coded_level(truth["principal"], secondary, catalog)
    complexity = (
        0.6 + 0.15 * n_secondary + 0.3 * catalog.types["surgical"].to_numpy()[types] + 0.3 * (true_level > 0)
    )
    p_error = np.clip(np.array(CODER_ERROR_RATES)[coder] * complexity, 0, 0.5)
    error = rng.random(n) < p_error

    possible = np.column_stack(
        [true_level > 0, np.ones(n, bool), n_secondary > 0, pd.notna(truth["procedure"])]
    )
    weights = possible * ERROR_WEIGHTS
    cum = np.cumsum(weights, axis=1)
    kind = (rng.random(n)[:, None] * cum[:, -1:] > cum).sum(axis=1)
    kind = np.where(error, kind, -1)

    principal = truth["principal"].copy()
    procedure = truth["procedure"].copy()
    missed = kind == 0
    for k in range(len(secondary) - 1, -1, -1):  # drop the last-listed CC/MCC that counts
        level_k = pd.Series(secondary[k]).map(catalog.cc_level).fillna(0).to_numpy() > 0
        drop = missed & level_k
        secondary[k] = np.where(drop, None, secondary[k])
        missed &= ~drop
    mcc_pool = catalog.complications["mcc"]
    added = mcc_pool[rng.integers(0, len(mcc_pool), n)]
    already = np.any([secondary_k == added for secondary_k in secondary], axis=0)
    secondary.append(np.where((kind == 1) & ~already, added, None))
    swap = kind == 2
    first = np.full(n, None, dtype=object)
    for col in secondary:
        first = np.where(pd.isna(first) & pd.notna(col), col, first)
    for k, col in enumerate(secondary):
        secondary[k] = np.where(swap & (col == first), principal, col)
    principal = np.where(swap, first, principal)
    procedure = np.where(kind == 3, None, procedure)

    return pd.DataFrame(
        {
            "coder_id": np.array([f"coder_{i + 1:02d}" for i in range(len(CODER_ERROR_RATES))])[coder],
            "principal_diagnosis": principal,
            "other_diagnoses": join_codes(secondary),
            "principal_procedure": procedure,
            "true_principal_diagnosis": truth["principal"],
            "true_other_diagnoses": join_codes(truth["secondary"]),
            "true_principal_procedure": truth["procedure"],
            "true_coding_error_prob": p_error,
            "true_error_type": np.where(kind >= 0, np.array(ERROR_TYPES, dtype=object)[kind.clip(0)], None),
            "true_cc_level": true_level,
            "coded_cc_level": coded_level(principal, secondary, catalog),
        }
    )


def audit(
    coded: pd.DataFrame, discharged: np.ndarray, end: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """Coding QC: audit about 15% of abstracts, more of those with an MCC or a high-error coder.

    An audit finds the error if there is one and records the corrected codes; audits that would fall
    after ``end`` have not happened yet."""
    n = len(coded)
    high_risk = (coded["coded_cc_level"].to_numpy() == 2) | coded["coder_id"].isin(
        ["coder_09", "coder_10"]
    ).to_numpy()
    sampled = rng.random(n) < np.where(high_risk, AUDIT_HIGH_RISK, AUDIT_BASE)
    when = discharged + rng.integers(7, 46, n).astype("timedelta64[D]")
    audited = sampled & (when < end)
    found = audited & pd.notna(coded["true_error_type"]).to_numpy()
    diagnoses = join_codes(
        [coded["true_principal_diagnosis"].to_numpy(), coded["true_other_diagnoses"].to_numpy()]
    )
    return pd.DataFrame(
        {
            "audited": pd.array(audited, dtype="boolean"),
            "audit_date": pd.Series(np.where(audited, when, np.datetime64("NaT"))).astype("datetime64[ns]"),
            "audit_error": pd.array(np.where(audited, found, pd.NA), dtype="boolean"),
            "audit_error_type": np.where(found, coded["true_error_type"], None),
            "corrected_diagnoses": np.where(found, diagnoses, None),
            "corrected_procedures": np.where(
                found & pd.notna(coded["true_principal_procedure"]).to_numpy(),
                coded["true_principal_procedure"],
                None,
            ),
        }
    )
