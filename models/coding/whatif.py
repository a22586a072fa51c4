"""Regrouping what-ifs: how the DRG and the payment would change under each plausible correction.

A coding auditor asks of every abstract: would the DRG change if one secondary diagnosis were dropped
(an unsupported CC/MCC), if the principal were swapped with a secondary (a wrong principal), if the
planned procedure had been coded (a missing procedure), or if the case had the CC/MCC its ADRG splits
on (a missed CC/MCC)? The first three are *regrouped* with the casemix engine, all variants of all cases
in one :meth:`CasemixEngine.group` batch; the last is the next heavier DRG of the same ADRG. Priced with
the payment rules, each gives the money at stake of that correction: payment as coded minus payment
corrected (positive: the hospital would be overpaid, an upcoding risk; negative: it is losing money).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from casemix.engine import CasemixEngine
from contract.fields import exploded_code_lists, join_codes, los_days

KINDS = ("drop", "swap", "procedure", "heavier")
CORRECTION_OF = {
    "unsupported_cc_mcc": "drop",
    "wrong_principal": "swap",
    "missing_procedure": "procedure",
    "missed_cc_mcc": "heavier",
}
_DEMOGRAPHICS = ("sex", "age_years", "age_days", "birth_weight_g")
_PRICING = ("department", "discharge_date", "los_days", "total_cost", "cost_negotiated_drugs")


def with_los_days(cases: pd.DataFrame) -> pd.DataFrame:
    """``cases`` with ``los_days``, derived as ingestion derives it when the frame lacks it."""
    if "los_days" in cases.columns:
        return cases
    admitted, discharged = pd.to_datetime(cases["admission_date"]), pd.to_datetime(cases["discharge_date"])
    return cases.assign(los_days=los_days(admitted, discharged))


def _secondaries(cases: pd.DataFrame) -> pd.DataFrame:
    """One row per secondary diagnosis: ``row`` (position of the case), ``position`` and ``code``."""
    codes = exploded_code_lists(cases["other_diagnoses"])
    long = pd.DataFrame({"row": codes.index.to_numpy(), "code": codes.to_numpy(dtype=object)})
    return long.assign(position=long.groupby("row").cumcount().to_numpy())


def _joined(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    return frame.groupby(keys, sort=False)["code"].agg(join_codes)


def diagnosis_variants(cases: pd.DataFrame, max_variants: int = 8) -> pd.DataFrame:
    """Drop and swap variants of the first ``max_variants`` secondary diagnoses of every case.

    Returns ``row``, ``kind`` ("drop" / "swap"), ``position`` (the secondary acted on), ``code`` (its
    code), ``principal_diagnosis`` and ``other_diagnoses`` of the variant.
    """
    long = _secondaries(cases)
    targets = long[long["position"] < max_variants].rename(columns={"position": "k", "code": "target"})
    pairs = targets.merge(long, on="row")
    keys = ["row", "k"]
    index = pd.MultiIndex.from_frame(targets[keys])
    kept = _joined(pairs[pairs["position"] != pairs["k"]], keys).reindex(index)
    principal = cases["principal_diagnosis"].to_numpy(dtype=object)
    swapped = pairs.assign(
        code=np.where(pairs["position"] == pairs["k"], principal[pairs["row"]], pairs["code"])
    )
    base = {
        "row": targets["row"].to_numpy(),
        "position": targets["k"].to_numpy(),
        "code": targets["target"].to_numpy(),
    }
    drop = pd.DataFrame(
        {
            **base,
            "kind": "drop",
            "principal_diagnosis": principal[targets["row"]],
            "other_diagnoses": kept.to_numpy(dtype=object),
        }
    )
    swap = pd.DataFrame(
        {
            **base,
            "kind": "swap",
            "principal_diagnosis": targets["target"].to_numpy(),
            "other_diagnoses": _joined(swapped, keys).reindex(index).to_numpy(dtype=object),
        }
    )
    variants = pd.concat([drop, swap], ignore_index=True)
    return variants.assign(
        other_diagnoses=variants["other_diagnoses"].where(variants["other_diagnoses"].notna(), None)
    )


def procedure_variants(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases with a planned procedure and no procedure coded, with the planned one coded as principal."""
    planned = (
        cases["planned_procedure"]
        if "planned_procedure" in cases.columns
        else pd.Series(None, index=cases.index)
    )
    rows = np.flatnonzero((planned.notna() & cases["principal_procedure"].isna()).to_numpy())
    return pd.DataFrame(
        {
            "row": rows,
            "position": -1,
            "code": planned.to_numpy(dtype=object)[rows],
            "kind": "procedure",
            "principal_diagnosis": cases["principal_diagnosis"].to_numpy(dtype=object)[rows],
            "other_diagnoses": cases["other_diagnoses"].to_numpy(dtype=object)[rows],
            "principal_procedure": planned.to_numpy(dtype=object)[rows],
        }
    )


def regroup_variants(cases: pd.DataFrame, engine: CasemixEngine, max_variants: int = 8) -> pd.DataFrame:
    """Every drop / swap / procedure variant of ``cases`` grouped in one batch.

    Returns ``row``, ``kind``, ``position``, ``code`` and the grouper's ``status``, ``adrg``, ``drg``.
    """
    variants = pd.concat(
        [diagnosis_variants(cases, max_variants), procedure_variants(cases)], ignore_index=True
    )
    rows = variants["row"].to_numpy()
    frame = pd.DataFrame(
        {c: cases[c].to_numpy()[rows] for c in (*_DEMOGRAPHICS, "principal_procedure", "other_procedures")}
    )
    frame["principal_diagnosis"] = variants["principal_diagnosis"].to_numpy()
    frame["other_diagnoses"] = variants["other_diagnoses"].to_numpy()
    if "principal_procedure" in variants.columns:
        planned = variants["principal_procedure"].notna().to_numpy()
        frame.loc[planned, "principal_procedure"] = variants.loc[planned, "principal_procedure"].to_numpy()
    grouped = engine.group(frame)
    return variants[["row", "kind", "position", "code"]].assign(
        status=grouped["status"].to_numpy(), adrg=grouped["adrg"].to_numpy(), drg=grouped["drg"].to_numpy()
    )


def heavier_drg(drg: pd.Series, tables) -> pd.Series:
    """The next heavier DRG of the same ADRG (the split one more CC/MCC level reaches); None at the top."""
    heavier: dict[str, str] = {}
    for adrg in tables.adrgs.values():
        for lighter, heavy in zip(adrg.children[1:], adrg.children[:-1], strict=True):
            heavier[lighter] = heavy
    return drg.map(heavier).astype(object).where(drg.map(heavier).notna(), None)


def price_drgs(
    cases: pd.DataFrame,
    rows: np.ndarray,
    status: pd.Series,
    drg: pd.Series,
    engine: CasemixEngine,
    weights: pd.DataFrame,
) -> np.ndarray:
    """Payment of cases (by position ``rows``) had they grouped into ``drg`` with ``status``."""
    frame = pd.DataFrame({c: cases[c].to_numpy()[rows] for c in _PRICING if c in cases.columns})
    frame["status"] = np.asarray(status, dtype=object)
    frame["drg"] = np.asarray(drg, dtype=object)
    return engine.price(frame, weights)["drg_payment"].to_numpy(np.float64)


def corrections(
    cases: pd.DataFrame, engine: CasemixEngine, weights: pd.DataFrame, max_variants: int = 8
) -> pd.DataFrame:
    """Per case and error type: the most likely correction's DRG and money at stake.

    One row per case (same index): ``coded_drg``, ``coded_payment`` and, for each error type in
    ``CORRECTION_OF``, ``<type>_drg``, ``<type>_money`` (coded − corrected payment; 0 when the type has
    no correction to try) and ``<type>_code`` (the code dropped, swapped in or added). The correction
    chosen per type: drop the secondary whose removal lowers payment most; swap in the first-listed
    secondary (where coders put the competing principal); code the planned procedure; move to the
    heavier split of the ADRG.
    """
    n = len(cases)
    cases = with_los_days(cases)
    coded = engine.group(cases)
    positions = np.arange(n)
    coded_payment = price_drgs(cases, positions, coded["status"], coded["drg"], engine, weights)
    out = pd.DataFrame(
        {"coded_drg": coded["drg"].to_numpy(), "coded_payment": coded_payment}, index=cases.index
    )

    variants = regroup_variants(cases, engine, max_variants)
    variants["payment"] = price_drgs(
        cases, variants["row"].to_numpy(), variants["status"], variants["drg"], engine, weights
    )
    variants["money"] = coded_payment[variants["row"].to_numpy()] - variants["payment"]
    chosen = {
        "drop": variants[variants["kind"] == "drop"].sort_values("money", ascending=False, kind="stable"),
        "swap": variants[(variants["kind"] == "swap") & (variants["position"] == 0)],
        "procedure": variants[variants["kind"] == "procedure"],
    }
    heavy = heavier_drg(coded["drg"], engine.tables)
    has_heavy = heavy.notna().to_numpy()
    heavy_rows = positions[has_heavy]
    chosen["heavier"] = pd.DataFrame(
        {
            "row": heavy_rows,
            "drg": heavy.to_numpy()[has_heavy],
            "code": None,
            "money": coded_payment[heavy_rows]
            - price_drgs(
                cases,
                heavy_rows,
                np.full(len(heavy_rows), "grouped"),
                heavy.to_numpy()[has_heavy],
                engine,
                weights,
            ),
        }
    )
    for error_type, kind in CORRECTION_OF.items():
        best = chosen[kind].drop_duplicates("row")
        drg = np.full(n, None, dtype=object)
        money = np.zeros(n)
        code = np.full(n, None, dtype=object)
        drg[best["row"].to_numpy()] = best["drg"].to_numpy()
        money[best["row"].to_numpy()] = np.nan_to_num(best["money"].to_numpy(np.float64))
        code[best["row"].to_numpy()] = best["code"].to_numpy()
        out[f"{error_type}_drg"], out[f"{error_type}_money"], out[f"{error_type}_code"] = drg, money, code
    return out
