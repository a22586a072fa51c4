"""``generate_demo``: the synthetic demo hospital, as canonical cases plus an oracle kept apart.

Steps (see docs/demo-hospital.md): stays and patients (episodes.py), true and as-coded codes with
the coding audit (coding.py), charges (costs.py), insurer settlement (settlement.py), and optionally
deliberately corrupted records (dirty.py). One seed drives one numpy Generator, so the same
arguments give identical frames and byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from casemix.engine import CasemixEngine
from casemix.payment import PaymentRules
from contract.errors import InputError
from contract.fields import CODE_SEPARATOR, COLUMNS, STORE_COLUMNS, canonical_frame, los_days
from contract.settings import get_settings
from pipelines.demo import coding, costs, daily, settlement, trauma_ward
from pipelines.demo import dirty as dirty_module
from pipelines.demo.catalog import Catalog, code_text, load_catalog
from pipelines.demo.episodes import KINDS, WARM_UP_DAYS, simulate_stays
from pipelines.demo.export import write_zh_csv
from pipelines.demo.patients import age_at

Format = Literal["parquet", "csv", "zh-csv"]
HOSPITAL_ID = "DEMO0001"
ORACLE_COLUMNS = (
    "case_id",
    "true_readmission_prob",
    "true_coding_error_prob",
    "expected_cost",
    "case_type",
    "stay_kind",
    "true_principal_diagnosis",
    "true_other_diagnoses",
    "true_principal_procedure",
    "true_other_procedures",
    "true_error_type",
    "true_cc_level",
    "true_drg",
)


@dataclass
class DemoHospital:
    """Generated cases (canonical contract columns plus ``los_days``), the oracle and, when dirty, the
    manifest of corrupted rows (row, case_id, check, field).

    ``charges`` and ``inpatients`` are the daily tables (contract.charges, contract.instay) of every
    stay, up to the demo's last day; ``in_hospital`` holds the final abstracts of the stays still in
    hospital at its end (their outcome, kept apart like the oracle)."""

    cases: pd.DataFrame
    oracle: pd.DataFrame
    manifest: pd.DataFrame = field(default_factory=pd.DataFrame)
    charges: pd.DataFrame = field(default_factory=pd.DataFrame)
    inpatients: pd.DataFrame = field(default_factory=pd.DataFrame)
    in_hospital: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, out_dir: Path | str, fmt: Format = "parquet") -> list[Path]:
        """Write cases, oracle.parquet and (dirty) manifest.parquet into ``out_dir``; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        cases = self.cases.drop(columns="los_days")
        if fmt == "parquet":
            paths = [out / "cases.parquet"]
            cases.to_parquet(paths[0], index=False)
        elif fmt == "csv":
            paths = [out / "cases.csv"]
            cases.to_csv(paths[0], index=False, encoding="utf-8")
        elif fmt == "zh-csv":
            paths = [write_zh_csv(cases, out / "cases.zh.csv")]
        else:
            raise InputError(f"unknown format {fmt!r}: use parquet, csv or zh-csv")
        paths.append(out / "oracle.parquet")
        self.oracle.to_parquet(paths[-1], index=False)
        if len(self.manifest):
            paths.append(out / "manifest.parquet")
            self.manifest.to_parquet(paths[-1], index=False)
        tables = {"charges": self.charges, "inpatients": self.inpatients}
        return paths + daily.write_daily(tables, self.in_hospital, out, fmt)


def generate_demo(
    n_cases: int,
    years: int,
    seed: int,
    dirty: bool = False,
    start: date = date(2023, 1, 1),
    rules: PaymentRules | None = None,
) -> DemoHospital:
    """A hospital of exactly ``n_cases`` stays discharged in ``years`` years from ``start``, settled
    by ``rules`` (default: the embedded payment rules, the demo city's)."""
    if n_cases < 1 or years < 1:
        raise InputError(f"need at least one case and one year, got n_cases={n_cases}, years={years}")
    catalog = load_catalog(get_settings().casemix_tables)
    end = (pd.Timestamp(start) + pd.DateOffset(years=years)).date()
    rng = np.random.default_rng(seed)
    stays, patients, staying = _enough_stays(catalog, n_cases, start, end, rng)
    period = np.datetime64(start, "D"), np.datetime64(end, "D")
    ids = _patient_ids(np.concatenate([stays["patient"].to_numpy(), staying["patient"].to_numpy()]))
    cases, oracle = _abstracts(stays, patients, catalog, *period, rng, rules, patient_ids=ids)
    hospital = DemoHospital(cases, oracle)
    if dirty:
        corrupted, manifest = dirty_module.corrupt(cases, rng)
        hospital = DemoHospital(corrupted, oracle, manifest)
    # The stays under way at the end, coded and charged as if discharged, then cut at the last day.
    final = (
        _abstracts(staying, patients, catalog, *period, rng, rules, n_cases + 1, ids, settle=False)[0]
        if len(staying)
        else cases.iloc[:0]
    )
    charges, inpatients = daily.daily_records(cases, final, period[1] - 1, rng)
    return replace(hospital, charges=charges, inpatients=inpatients, in_hospital=final)


def _enough_stays(
    catalog: Catalog, n_cases: int, start: date, end: date, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate, then keep whole patients in random order until exactly ``n_cases`` stays (the last
    patient's later stays are cut); and the kept patients' stays under way at the end."""
    span = (end - start).days
    n_index = max(int(n_cases * 0.85 * (span + WARM_UP_DAYS) / span), 50)
    while True:
        stays, patients, staying = simulate_stays(catalog, n_index, start, end, rng)
        if len(stays) >= n_cases:
            break
        n_index = int(n_index * n_cases / max(len(stays), 1) * 1.05) + 10
    order = rng.permutation(len(patients))
    rank = np.empty(len(patients), dtype=np.int64)
    rank[order] = np.arange(len(patients))
    stays = stays.assign(rank=rank[stays["patient"].to_numpy()]).sort_values(
        ["rank", "admitted"], kind="stable"
    )
    cut = stays["rank"].iloc[n_cases - 1] if len(stays) > n_cases else len(patients)
    stays = stays.iloc[:n_cases].drop(columns="rank")
    # Stays under way at the end belong to the patients kept whole.
    staying = staying[rank[staying["patient"].to_numpy()] < cut].sort_values(["admitted", "patient"])
    return (
        stays.sort_values(["discharged", "admitted", "patient"], kind="stable").reset_index(drop=True),
        patients,
        staying.reset_index(drop=True),
    )


def _abstracts(
    stays: pd.DataFrame,
    patients: pd.DataFrame,
    catalog: Catalog,
    start: np.datetime64,
    end: np.datetime64,
    rng: np.random.Generator,
    rules: PaymentRules | None,
    first_id: int = 1,
    patient_ids: dict[int, str] | None = None,
    settle: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The canonical abstracts of the stays (codes, charges, audit, settlement) and the oracle; case ids
    count from ``first_id``, patient ids come from ``patient_ids`` (default: numbered here)."""
    t = catalog.types
    n = len(stays)
    types = stays["type"].to_numpy()
    patient = stays["patient"].to_numpy()
    admitted = stays["admitted"].to_numpy().astype("datetime64[D]")
    discharged = stays["discharged"].to_numpy().astype("datetime64[D]")
    years, days = age_at(patients["birth_date"].to_numpy().astype("datetime64[D]")[patient], admitted)
    newborn = (years == 0) & (days <= 28)
    low, high = t["birth_weight_min"].to_numpy()[types], t["birth_weight_below"].to_numpy()[types]
    weight = np.round(low + rng.random(n) * (high - 1 - low), -1)

    truth = coding.true_codes(stays, patients, catalog, rng)
    admission, truth = coding.admit(stays, truth, catalog, rng)
    coded, facts = coding.code_abstracts(stays, truth, admission, catalog, rng)
    dx, px = catalog.diagnoses, catalog.procedure_codes
    true_text = {
        "principal": code_text(truth.principal, dx.codes),
        "other": coding.join_codes(truth.secondary, dx.codes),
        "procedure": code_text(truth.procedure, px),
        "other_procedures": code_text(truth.other_procedure, px),
    }
    has_other = pd.notna(true_text["other"])
    true_text["diagnoses"] = np.where(
        has_other,
        true_text["principal"] + CODE_SEPARATOR + np.where(has_other, true_text["other"], ""),
        true_text["principal"],
    )
    true_text["procedures"] = coding.join_codes(np.column_stack([truth.procedure, truth.other_procedure]), px)
    audit = coding.audit(facts, true_text, discharged, end, rng)
    expected = costs.expected_cost(stays, facts["true_cc_level"].to_numpy(), catalog, start) * np.where(
        admission.cancelled, coding.CANCELLED_CHARGE_SHARE, 1.0
    )
    charges = costs.charges(stays, expected, catalog, rng)
    department, charges, expected = trauma_ward.plant(
        t["key"].to_numpy()[types],
        t["department"].to_numpy()[types],
        charges,
        expected,
        t["consumables"].to_numpy()[types],
        rng.spawn(1)[0],  # a child generator: the draws after this are as without the ward
    )

    columns = {
        "case_id": np.array([f"Z{i:09d}" for i in range(first_id, first_id + n)], dtype=object),
        "patient_id": pd.Series(patient).map(patient_ids or _patient_ids(patient)).to_numpy(),
        "hospital_id": np.full(n, HOSPITAL_ID, dtype=object),
        "department": department,
        "admission_date": admitted.astype("datetime64[ns]"),
        "admission_source": stays["admission_source"].to_numpy().astype(np.int64),
        "admission_type": stays["admission_type"].to_numpy().astype(np.int64),
        "sex": patients["sex"].to_numpy()[patient].astype(np.int64),
        "age_years": years,
        "age_days": pd.array(np.where(years == 0, days, pd.NA), dtype="Int64"),
        "birth_weight_g": np.where(newborn, weight, np.nan),
        "insurance_type": patients["insurance_type"].to_numpy()[patient].astype(np.int64),
        "admission_diagnosis": code_text(admission.diagnosis, dx.codes),
        "planned_procedure": code_text(admission.planned_procedure, px),
        "discharge_date": discharged.astype("datetime64[ns]"),
        "discharge_department": department,
        "principal_diagnosis": code_text(coded.principal, dx.codes),
        "other_diagnoses": coding.join_codes(coded.secondary, dx.codes),
        "principal_procedure": code_text(coded.procedure, px),
        "other_procedures": code_text(coded.other_procedure, px),
        "discharge_disposition": stays["disposition"].to_numpy().astype(np.int64),
        "readmission_plan_31d": pd.array(stays["planned_next"].to_numpy(), dtype="boolean"),
        "coder_id": facts["coder_id"].to_numpy(),
        **{c: charges[c].to_numpy() for c in charges.columns},
        **{c: audit[c].array for c in audit.columns},
        "los_days": los_days(admitted, discharged).to_numpy(),
    }
    engine = CasemixEngine(rules=rules or PaymentRules.load())
    billing = pd.DataFrame({c: columns[c] for c in settlement.INPUT_COLUMNS})
    # A stay still in hospital is not settled (and too few to estimate weights from): grouped only.
    settled = settlement.settle(billing, engine, end, rng) if settle else engine.group(billing)[["drg"]]
    columns.update({c: settled[c].array for c in settled.columns if c in COLUMNS})
    # Optional fields the simulator does not produce (特病单议, 审核扣款…) stay empty.
    columns.update({c: np.full(len(billing), None, dtype=object) for c in COLUMNS if c not in columns})
    cases = canonical_frame(pd.DataFrame({c: columns[c] for c in STORE_COLUMNS}))

    # Only abstracts with a coding error group differently from their true codes.
    wrong = facts["true_error_type"].notna().to_numpy()
    true_frame = cases.loc[wrong, ["sex", "age_years", "age_days", "birth_weight_g"]].assign(
        principal_diagnosis=true_text["principal"][wrong],
        other_diagnoses=true_text["other"][wrong],
        principal_procedure=true_text["procedure"][wrong],
        other_procedures=true_text["other_procedures"][wrong],
    )
    true_drg = settled["drg"].to_numpy().copy()
    true_drg[wrong] = engine.group(true_frame)["drg"].to_numpy()
    oracle = pd.DataFrame(
        {
            "case_id": cases["case_id"],
            "true_readmission_prob": stays["readmission_prob"].to_numpy(),
            "true_coding_error_prob": facts["true_coding_error_prob"].to_numpy(),
            "expected_cost": np.round(expected, 2),
            "case_type": t["key"].to_numpy()[types],
            "stay_kind": np.array(KINDS, dtype=object)[stays["kind"].to_numpy().astype(np.int64)],
            "true_principal_diagnosis": true_text["principal"],
            "true_other_diagnoses": true_text["other"],
            "true_principal_procedure": true_text["procedure"],
            "true_other_procedures": true_text["other_procedures"],
            "true_error_type": facts["true_error_type"].to_numpy(),
            "true_cc_level": facts["true_cc_level"].to_numpy(),
            "true_drg": true_drg,
        }
    )
    return cases, oracle[list(ORACLE_COLUMNS)]


def _patient_ids(patient: np.ndarray) -> dict[int, str]:
    """Patient ids numbered by first appearance, so they say nothing about the simulation."""
    first = pd.unique(patient)
    return {p: f"P{i:08d}" for i, p in enumerate(first, start=1)}
