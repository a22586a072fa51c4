"""The coding-review queue: which abstracts a coder should review first, and why.

Each case gets, per error type t, the model's P(error of type t) and the money at stake of that type's
most likely correction (:func:`models.coding.whatif.corrections`: payment as coded minus payment
corrected). Its **expected value** is Σ_t P(t) × |money_t| × w_t + P(error) × error_value: what a
review is expected to put right.

- Upcoding (an unsupported CC/MCC or a principal picked for its price, when the correction pays less:
  money > 0) is a compliance risk, not just money: the insurer deducts it, may fine a multiple of it
  and publishes offenders, so its weight w is ``QueuePolicy.compliance_weight`` (default 3: the amount
  plus a 2× fine); money the hospital loses (a missed CC/MCC or procedure) counts once.
- Finding any error is worth ``QueuePolicy.error_value`` × P(error): a corrected abstract fixes the
  quality indicators and the audit trail even when the DRG does not move (most unsupported CCs in the
  demo sit beside another CC/MCC and move no money), and a type's what-if money is a guess, so ranking
  on money alone buries likely errors behind speculative amounts. The default ¥3,000 was chosen on the
  demo's validation quarter (experiments/results/coding.md).

The case's lead correction is the type with the largest money term; the queue shows it as the error
type, money at stake and what-if DRG, and lists the top reasons in words. :func:`rank_queue` orders
any scored frame (the CLI and the service both use it); :func:`coding_queue` scores cases with a
trained coding model first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract.errors import InputError
from contract.fields import AUDIT_ERROR_TYPES
from models.coding.features import AUDIT_FEATURES
from models.coding.model import ERROR_TYPES
from models.coding.rules import RULES
from models.coding.whatif import corrections

QUEUE_COLUMNS = (
    "rank",
    "case_id",
    "department",
    "error_type",
    "error_probability",
    "money_at_stake",
    "expected_value",
    "compliance_risk",
    "coded_drg",
    "whatif_drg",
    "whatif_payment_change",
    "reasons",
)
AUDIT_COLUMNS = tuple(name for name, *_ in AUDIT_FEATURES)
# Error types whose overpayment is upcoding: an unsupported CC/MCC, a principal picked for its price.
UPCODING_TYPES = ("unsupported_cc_mcc", "wrong_principal")
REASON_FLAGS = (
    "mcc_short_stay",
    "symptom_principal_with_specific",
    "surgical_charges_no_procedure",
    "principal_unspecified",
)


@dataclass(frozen=True)
class QueuePolicy:
    """How the queue weighs money: ``compliance_weight`` multiplies upcoding money at stake and
    ``error_value`` is what finding any error is worth beyond its money."""

    compliance_weight: float = 3.0
    error_value: float = 3_000.0  # yuan-equivalent of correcting any error, money or not (see module doc)
    max_reasons: int = 3
    high_error_rate_ratio: float = 1.3  # a coder or department this many times the batch's rate is a reason


def _yuan(value: float) -> str:
    return f"¥{abs(value):,.0f}"


def _whatif_reason(row: Any) -> str | None:
    money, drg, code, coded = row.money_at_stake, row.whatif_drg, row.whatif_code, row.coded_drg
    if not money or drg is None:
        return None
    paid = f"paid {_yuan(money)} {'more' if money < 0 else 'less'}"
    what = {
        "unsupported_cc_mcc": f"without secondary diagnosis {code}",
        "wrong_principal": f"with {code} as principal",
        "missing_procedure": f"with planned procedure {code} coded",
    }.get(row.error_type, "with the CC/MCC its ADRG splits on")
    return f"{what} the case regroups {coded} → {drg}, {paid}"


def reasons(scored: pd.DataFrame, policy: QueuePolicy = QueuePolicy()) -> pd.Series:
    """Top reasons in words per case: the lead what-if first, then the rules and history it trips."""
    texts = [[r] if r else [] for r in map(_whatif_reason, scored.itertuples(index=False))]
    for flag in REASON_FLAGS:
        if flag in scored.columns:
            for i in np.flatnonzero(scored[flag].fillna(0).to_numpy() > 0):
                texts[i].append(RULES[flag])
    if "cost_to_drg_mean" in scored.columns:
        ratio = scored["cost_to_drg_mean"].to_numpy(float)
        for i in np.flatnonzero(ratio < 0.5):
            texts[i].append(f"charges are only {ratio[i]:.0%} of the DRG's mean: is the CC/MCC supported?")
        for i in np.flatnonzero(ratio > 2.0):
            texts[i].append(f"charges are {ratio[i]:.1f}× the DRG's mean: is a CC/MCC or procedure missing?")
    for entity, word in (("coder", "coder"), ("department", "department")):
        column = f"{entity}_prior_error_rate"
        if column in scored.columns:
            rate = scored[column].to_numpy(float)
            typical = np.nanmean(rate) if np.isfinite(rate).any() else np.nan
            for i in np.flatnonzero(rate > policy.high_error_rate_ratio * typical):
                texts[i].append(
                    f"{word}'s error rate in earlier audits is {rate[i]:.0%} (typical {typical:.0%})"
                )
    fallback = [
        f"the model gives a {p:.0%} chance of a coding error, most likely {AUDIT_ERROR_TYPES[t][1]}"
        for p, t in zip(scored["error_probability"], scored["error_type"], strict=True)
    ]
    return pd.Series(
        [t[: policy.max_reasons] or [f] for t, f in zip(texts, fallback, strict=True)],
        index=scored.index,
        dtype=object,
    )


def rank_queue(
    scored: pd.DataFrame, policy: QueuePolicy = QueuePolicy(), budget: int | None = None
) -> pd.DataFrame:
    """The review queue of scored cases, best first, with ``QUEUE_COLUMNS`` (and the scored columns after).

    ``scored`` has one row per case: ``case_id``, ``department``, ``error_probability``, ``p_<type>``
    for every error type, ``coded_drg`` and, per type, ``<type>_money``, ``<type>_drg`` and
    ``<type>_code`` (as :func:`models.coding.whatif.corrections` gives them); auditor features
    (:mod:`models.coding.features`) present in it become reasons.
    """
    terms = pd.DataFrame(
        {
            t: scored[f"p_{t}"].to_numpy(float)
            * np.abs(scored[f"{t}_money"].to_numpy(float))
            * np.where(
                (scored[f"{t}_money"].to_numpy(float) > 0) & (t in UPCODING_TYPES),
                policy.compliance_weight,
                1.0,
            )
            for t in ERROR_TYPES
        },
        index=scored.index,
    )
    likely = pd.DataFrame({t: scored[f"p_{t}"].to_numpy(float) for t in ERROR_TYPES}, index=scored.index)
    lead = terms.idxmax(axis=1).where(terms.max(axis=1) > 0, likely.idxmax(axis=1))
    pick = {
        name: np.select([lead == t for t in ERROR_TYPES], [scored[f"{t}_{name}"] for t in ERROR_TYPES], None)
        for name in ("money", "drg", "code")
    }
    money = pick["money"].astype(float)
    out = scored.assign(
        error_type=lead.to_numpy(),
        money_at_stake=money,
        expected_value=terms.sum(axis=1).to_numpy()
        + policy.error_value * scored["error_probability"].to_numpy(),
        compliance_risk=(money > 0) & lead.isin(UPCODING_TYPES).to_numpy(),
        whatif_drg=pick["drg"],
        whatif_code=pick["code"],
        whatif_payment_change=-money,
    )
    out["reasons"] = reasons(out, policy)
    out = out.sort_values(["expected_value", "error_probability"], ascending=False, kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out = out.head(budget) if budget is not None else out
    front = list(QUEUE_COLUMNS)
    return out[front + [c for c in out.columns if c not in front]].reset_index(drop=True)


def score_cases(
    cases: pd.DataFrame,
    model: Any,
    history: pd.DataFrame | None = None,
    rules: Any = None,
    weights: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Error probabilities, auditor features and correction what-ifs of ``cases`` under a coding model.

    ``model`` is the registered coding model (``models.pyfunc.CaseModel``: ``features`` then
    ``estimator``); ``history`` the store's stays (the coders' earlier audits and the patients' stays);
    ``rules`` the payment rules (default: the embedded ones) and ``weights`` the DRG weight table
    (default: the one the model calibrated on its training cases). ``weights_source`` says which: the
    insurer's table or an estimate from own history (the money at stake is then an estimate too).
    """
    from casemix.engine import CasemixEngine
    from casemix.payment import PaymentRules
    from casemix.rw_table import weights_source

    features = model.features
    weights = weights if weights is not None else features.weights_
    X = model.features_of(cases, history)
    predicted = model.outputs_of(X)
    predicted.index = cases.index
    engine = CasemixEngine(features.casemix.tables, rules if rules is not None else PaymentRules.load())
    whatif = corrections(cases, engine, weights)
    audit = X[[c for c in AUDIT_COLUMNS if c in X.columns]]
    scored = cases[["case_id", "department"]].join(predicted).join(whatif).join(audit)
    return scored.assign(weights_source=weights_source(weights))


def queue_period(period: str) -> pd.Period:
    """``period`` as a pandas period ("2025Q4", "2025-11", "2025"); anything else is an ``InputError``."""
    try:
        return pd.Period(period)
    except ValueError:
        raise InputError(f"period {period!r} is not a period: use 2025Q4, 2025-11 or 2025") from None


def in_queue(
    cases: pd.DataFrame, span: pd.Period, department: str | None = None, unaudited_only: bool = True
) -> np.ndarray:
    """Which ``cases`` the queue of ``span`` takes: discharged in it, optionally one department, not
    yet audited (row by row: any split of the store gives the same cases)."""
    discharged = cases["discharge_date"]
    keep = (discharged >= span.start_time) & (discharged <= span.end_time)
    if department is not None:
        keep &= cases["department"] == department
    if unaudited_only and "audited" in cases.columns:
        keep &= ~cases["audited"].astype("boolean").fillna(False)
    return keep.to_numpy(dtype=bool)


def no_cases(period: str, department: str | None) -> InputError:
    """The error of a queue with no case to rank."""
    where = f" in department {department!r}" if department else ""
    return InputError(f"no unaudited case discharged in {period}{where}")


def select_cases(
    cases: pd.DataFrame, period: str, department: str | None = None, unaudited_only: bool = True
) -> pd.DataFrame:
    """Cases discharged in ``period`` (a pandas period: "2025Q4", "2025-11", "2025"), optionally one
    department, not yet audited; a period with no cases raises an ``InputError`` naming it."""
    keep = in_queue(cases, queue_period(period), department, unaudited_only)
    if not keep.any():
        raise no_cases(period, department)
    return cases[keep]


def coding_queue(
    cases: pd.DataFrame,
    model: Any,
    period: str,
    department: str | None = None,
    budget: int | None = None,
    policy: QueuePolicy = QueuePolicy(),
    rules: Any = None,
) -> pd.DataFrame:
    """The ranked queue of ``period`` from the whole case store ``cases`` (their own history)."""
    chosen = select_cases(cases, period, department)
    return rank_queue(score_cases(chosen, model, history=cases, rules=rules), policy, budget)
