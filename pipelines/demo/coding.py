"""What was wrong with the patient (true codes), what the coder wrote (as-coded) and what the audit found.

True codes: the type's principal diagnosis and procedure, often a second diagnosis that is itself a
principal of similar stays, the chronic conditions the patient carries (when they may stand beside
that principal) and the complications at the stay's severity (a CC, an MCC, or both). The admission
note holds a working diagnosis and, for planned surgery, the planned procedure (sometimes cancelled or
changed). Each abstract is coded by one of ten coders with their own error rate (2%-15%), higher on
complex cases; an error is a missed CC/MCC, an unsupported CC/MCC, a wrong principal diagnosis or a
missing procedure, made the way coders make it so that it leaves only the traces it would leave on a
real abstract (``fingerprints`` measures the ones a naive simulator leaves). Coding quality control
audits a sample (more of the high-risk abstracts) and records the corrected codes.

Codes stay integer indices into the catalog's vocabulary (-1 = none) until ``join_codes`` writes them
as '|'-separated text, so a million abstracts are coded with array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from contract.fields import join_codes as code_cell
from contract.fields import split_codes
from pipelines.demo.catalog import Catalog

CODER_ERROR_RATES = (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.10, 0.12, 0.15)
CODER_WORKLOAD = (0.14, 0.12, 0.12, 0.11, 0.11, 0.1, 0.09, 0.08, 0.07, 0.06)
HIGH_ERROR_CODERS = ("coder_09", "coder_10")
ERROR_TYPES = ("missed_cc_mcc", "unsupported_cc_mcc", "wrong_principal", "missing_procedure")
ERROR_WEIGHTS = np.array([0.35, 0.25, 0.2, 0.2])  # among the errors possible on a stay
AUDIT_BASE, AUDIT_HIGH_RISK = 0.10, 0.40
P_RELATED = 0.6  # stays with a second diagnosis that is a principal of similar stays
RELATED_OWN_TYPE = 0.8  # ... of the stay's own type (another subcategory), else of its department
P_CC_WITH_MCC = 0.35  # stays with an MCC that carry a CC too
ADMISSION_SHARES = (0.6, 0.85, 0.93)  # cumulative: principal, unspecified code, symptom; rest ruled out
P_ADMITTED_FOR_RELATED = 0.35  # the admission note names the second diagnosis instead
PLANNED_SHARE = 0.9
P_CANCELLED, P_CHANGED = 0.02, 0.03  # planned operations cancelled, or changed for another
CANCELLED_CHARGE_SHARE = 0.4  # a stay whose operation was cancelled charges this share of a surgical one
UPCODING_USUAL_RATE = 0.3  # a type with this CC+MCC rate gets the plain unsupported-CC/MCC weight
ANCHORED_WEIGHT = 3.0  # a wrong principal is this much likelier when the admission names a secondary
ANCHORING = 0.85  # ... and then it is that diagnosis
IMPLAUSIBLE_WEIGHT = 0.2  # ... and this much likelier when no secondary is a principal of similar stays
SECOND_DIAGNOSIS_PICK = 0.75  # otherwise the second diagnosis is promoted this often


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
    text = np.array([code_cell(vocabulary[row[row >= 0]]) for row in matrix[first]], dtype=object)
    return text[key]


def _categories(vocabulary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ICD-10 category (3 characters) and subcategory (e.g. I21.0) of each vocabulary code, as integers."""
    text = pd.Series(vocabulary, dtype=object)
    return pd.factorize(text.str[:3])[0], pd.factorize(text.str[:5])[0]


def true_codes(
    stays: pd.DataFrame, patients: pd.DataFrame, catalog: Catalog, rng: np.random.Generator
) -> Codes:
    """The codes of what the patient had and had done.

    Secondary diagnoses, in the order an abstract lists them: a second diagnosis that is itself a
    principal of similar stays (``P_RELATED``: of the stay's own type, another subcategory, or of a type
    of the same department), the chronic conditions, then the complications: one at the stay's
    severity, and with an MCC sometimes a CC too."""
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
    chronic_columns = np.where(chronic, catalog.chronic_codes[None, :], -1)

    category, subcategory = _categories(catalog.diagnoses.codes)
    # The second diagnosis is drawn as similar stays draw their principal (the stay's own type, else a
    # similar type; common principals are common here too), so a principal moved among the secondary
    # diagnoses by a coding error is no rarer there than on correctly coded stays.
    kin = np.where(rng.random(n) < RELATED_OWN_TYPE, types, catalog.similar.draw(types, rng, skew=1.0))
    related = catalog.principal.draw(kin, rng)
    # A chronic condition of the same category is already listed (e.g. hypertension).
    clash = ((category[related][:, None] == category[np.maximum(chronic_columns, 0)]) & chronic).any(axis=1)
    kept = (
        (rng.random(n) < P_RELATED)
        & (related >= 0)
        & (subcategory[related] != subcategory[principal])
        & ~clash
    )
    related = np.where(kept, related, -1)

    severity = stays["severity"].to_numpy()
    columns = [related[:, None], chronic_columns]
    for level, kind in ((1, "cc"), (2, "mcc")):
        pick = _allowed_complication(types, kind, catalog, rng)
        wanted = (severity == level) | ((kind == "cc") & (severity == 2) & (rng.random(n) < P_CC_WITH_MCC))
        columns.append(np.where(wanted & (pick >= 0), pick, -1)[:, None])
    return Codes(principal, procedure, other.astype(np.int32), np.hstack(columns).astype(np.int32))


def _allowed_complication(
    types: np.ndarray, kind: str, catalog: Catalog, rng: np.random.Generator
) -> np.ndarray:
    """One CC or MCC code per stay, uniformly among those that may stand beside the type's principals."""
    allowed = catalog.complication_allowed[kind][types]
    pick = np.argmax(rng.random(allowed.shape) * allowed, axis=1)
    return np.where(allowed.any(axis=1), catalog.complications[kind][pick], -1)


@dataclass(frozen=True)
class Admission:
    """What the admission note says: the working diagnosis and the planned procedure (-1 = none); and
    whether the planned operation was cancelled during the stay."""

    diagnosis: np.ndarray
    planned_procedure: np.ndarray
    cancelled: np.ndarray


def admit(
    stays: pd.DataFrame, truth: Codes, catalog: Catalog, rng: np.random.Generator
) -> tuple[Admission, Codes]:
    """The admission note of each stay, and the true codes once cancelled operations are taken out.

    The working diagnosis is the stay's second diagnosis when it has one (``P_ADMITTED_FOR_RELATED``:
    admitted for heart failure, found to have an infarction), else the principal, its category's
    unspecified code, the presenting symptom or a working diagnosis of similar stays that was ruled out
    (``ADMISSION_SHARES``). Non-emergency surgical stays plan their procedure (``PLANNED_SHARE``); some
    planned operations are cancelled (``P_CANCELLED``: no procedure is done) or changed for another
    (``P_CHANGED``), so an uncoded planned procedure happens on correctly coded abstracts too."""
    t = catalog.types
    types = stays["type"].to_numpy()
    n = len(types)
    related = truth.secondary[:, 0]
    symptom = catalog.symptoms.draw(types, rng)
    less = catalog.less_specific[truth.principal]
    ruled_out = catalog.related.draw(types, rng, skew=1.0)
    u = rng.random(n)
    cut = ADMISSION_SHARES
    diagnosis = np.select(
        [
            u < cut[0],
            u < cut[1],
            (u < cut[2]) & (symptom >= 0),
            u < cut[2],
            (ruled_out < 0) | (ruled_out == truth.principal),
        ],
        [truth.principal, less, symptom, less, less],
        ruled_out,
    )
    diagnosis = np.where((related >= 0) & (rng.random(n) < P_ADMITTED_FOR_RELATED), related, diagnosis)

    elective_surgery = t["surgical"].to_numpy()[types] & (stays["admission_type"].to_numpy() != 2)
    planned = np.where(
        elective_surgery & (truth.procedure >= 0) & (rng.random(n) < PLANNED_SHARE), truth.procedure, -1
    )
    u = rng.random(n)
    cancelled = (planned >= 0) & (u < P_CANCELLED)
    changed = (planned >= 0) & (u >= P_CANCELLED) & (u < P_CANCELLED + P_CHANGED)
    planned = np.where(changed, catalog.procedures.draw(types, rng), planned)
    truth = Codes(
        truth.principal,
        np.where(cancelled, -1, truth.procedure).astype(np.int32),
        np.where(cancelled, -1, truth.other_procedure).astype(np.int32),
        truth.secondary,
    )
    return Admission(diagnosis.astype(np.int32), planned.astype(np.int32), cancelled), truth


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
    stays: pd.DataFrame, truth: Codes, admission: Admission, catalog: Catalog, rng: np.random.Generator
) -> tuple[Codes, pd.DataFrame]:
    """As-coded codes and, per stay, the coder, the true error probability and the injected error.

    Errors are the ones coders make, each leaving only the traces it would leave in a real abstract:
    a missed CC/MCC drops one of the true CC/MCC codes; an unsupported one adds a CC or MCC that the
    stay's type does carry on other stays, in its usual place; a wrong principal promotes one of the
    stay's own diagnoses (the one the admission note named, when it did, else most often the second
    diagnosis, else one that is a principal of similar stays; rarely when none is) and lists the true
    principal in its place; a missing procedure leaves the principal
    procedure out (an other procedure moves up)."""
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

    named = present & (truth.secondary == admission.diagnosis[:, None])
    anchored = named.any(axis=1)
    # Secondary diagnoses a coder could take for the principal: principals of similar stays.
    plausible = (
        present
        & catalog.related.membership(len(catalog.diagnoses.codes))[
            types[:, None], np.maximum(truth.secondary, 0)
        ]
    )
    swap_weight = np.where(
        anchored, ANCHORED_WEIGHT, np.where(plausible.any(axis=1), 1.0, IMPLAUSIBLE_WEIGHT)
    )
    mcc_slot, cc_slot = truth.secondary.shape[1] - 1, truth.secondary.shape[1] - 2
    # Upcoding follows the type's own mix: to an MCC as often as the type's complicated stays have one.
    t = catalog.types
    complicated = (t["mcc"].to_numpy() + t["cc"].to_numpy())[types]
    mcc_share = t["mcc"].to_numpy()[types] / complicated.clip(1e-9)
    # ... and where complications are common enough for one more to pass (not on a day-case hernia).
    upcode_weight = np.clip(complicated / UPCODING_USUAL_RATE, 0.1, 2.0)
    upcode_to = np.where(
        true_level == 0, np.where(rng.random(n) < mcc_share, 2, 1), np.where(true_level == 1, 2, 0)
    )
    added = np.where(
        upcode_to == 2,
        _allowed_complication(types, "mcc", catalog, rng),
        _allowed_complication(types, "cc", catalog, rng),
    )
    slot = np.where(upcode_to == 2, mcc_slot, cc_slot)
    can_add = (upcode_to > 0) & (added >= 0) & (truth.secondary[rows, slot] < 0)
    weights = ERROR_WEIGHTS * np.column_stack(
        [
            true_level > 0,
            can_add * upcode_weight,
            (n_secondary > 0) * swap_weight,
            truth.procedure >= 0,
        ]
    )
    cum = np.cumsum(weights, axis=1)
    kind = np.where(error & (cum[:, -1] > 0), (rng.random(n)[:, None] * cum[:, -1:] > cum).sum(axis=1), -1)

    secondary = truth.secondary.copy()
    leveled = present & (catalog.diagnoses.level[np.maximum(secondary, 0)] > 0)
    missed = kind == 0
    drop = np.argmax(rng.random(secondary.shape) * leveled, axis=1)
    secondary[rows[missed], drop[missed]] = -1

    unsupported = kind == 1
    secondary[rows[unsupported], slot[unsupported]] = added[unsupported]

    principal = truth.principal.copy()
    swap = kind == 2
    pick = np.argmax(rng.random(secondary.shape) * np.where(plausible, 1.0, 0.05) * present, axis=1)
    pick = np.where(present[:, 0] & (rng.random(n) < SECOND_DIAGNOSIS_PICK), 0, pick)
    pick = np.where(anchored & (rng.random(n) < ANCHORING), np.argmax(named, axis=1), pick)
    principal[swap] = secondary[rows[swap], pick[swap]]
    secondary[rows[swap], pick[swap]] = truth.principal[swap]
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


FINGERPRINT_LIMITS = {
    "wrong_principal_category_differs": ("<=", 0.75),
    "clean_planned_procedure_uncoded": (">=", 0.01),
    "swapped_in_principal_of_own_type": (">=", 0.2),
}


def fingerprints(cases: pd.DataFrame, oracle: pd.DataFrame) -> dict[str, float]:
    """The traces planted coding errors would give away if the simulator were naive, against their limits.

    - ``wrong_principal_category_differs``: share of wrong principals whose ICD category differs from the
      admission diagnosis's (a naive swap always differs; clean stays differ far less often);
    - ``clean_planned_procedure_uncoded``: share of clean stays with a planned procedure that do not code
      it (none would make an uncoded planned procedure proof of a missing procedure);
    - ``swapped_in_principal_of_own_type``: share of wrong principals that some stay of the same case type
      truly has as its principal (none would make the swapped-in code a giveaway);
    - ``clean_admission_category_differs``: the same disagreement on clean stays, for comparison.
    """
    error = oracle["true_error_type"].to_numpy(object)
    clean = pd.isna(error)
    swapped = error == "wrong_principal"
    category = cases["principal_diagnosis"].str[:3].to_numpy(object)
    differs = category != cases["admission_diagnosis"].str[:3].to_numpy(object)
    planned = cases["planned_procedure"]
    coded = (planned == cases["principal_procedure"]).to_numpy(bool) | np.array(
        [
            isinstance(p, str) and isinstance(o, str) and p in split_codes(o)
            for p, o in zip(planned, cases["other_procedures"], strict=True)
        ],
        dtype=bool,
    )
    with_plan = clean & planned.notna().to_numpy()
    legitimate = pd.MultiIndex.from_arrays([oracle["case_type"], oracle["true_principal_diagnosis"]])
    own_type = pd.MultiIndex.from_arrays([oracle["case_type"], cases["principal_diagnosis"]]).isin(legitimate)
    return {
        "wrong_principal_category_differs": float(differs[swapped].mean()) if swapped.any() else float("nan"),
        "clean_planned_procedure_uncoded": float((~coded)[with_plan].mean())
        if with_plan.any()
        else float("nan"),
        "swapped_in_principal_of_own_type": float(own_type[swapped].mean())
        if swapped.any()
        else float("nan"),
        "clean_admission_category_differs": float(differs[clean].mean()),
    }


def fingerprint_failures(figures: dict[str, float]) -> list[str]:
    """The limits of ``FINGERPRINT_LIMITS`` that ``figures`` break, as readable sentences."""
    failures = []
    for name, (sense, limit) in FINGERPRINT_LIMITS.items():
        value = figures[name]
        ok = value <= limit if sense == "<=" else value >= limit
        if not ok:
            failures.append(f"{name} = {value:.3f}, must be {sense} {limit}")
    return failures
