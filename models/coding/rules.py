"""The checks a coding team runs by hand: the baseline the coding-error model has to beat.

Each rule is a boolean per case; ``rule_pattern`` names the rules a case trips ("none" when it trips
none). The framework's group-mean baseline over ``rule_pattern`` then gives each pattern its error
rate among earlier audits, which is how a team ranks its worklist from these rules.

:class:`RulesBaseline` is the stronger yardstick: the flags a QC coder trusts most (an MCC coded, an
admission diagnosis of another category than the principal, a planned procedure not coded, charges
far from the DRG's mean, and the rules above) and the coder's audited error rate before the case,
weighed by a logistic regression fitted on the training period's audits, one per error type when asked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from contract.fields import CODE_SEPARATOR, exploded_code_lists

SHORT_STAY_DAYS = 2  # an MCC on a stay shorter than this is rarely supported
SURGICAL_SHARE = 0.5  # treatment + consumables at least this share of charges is surgery-level
FAR_FROM_MEAN = 2.0  # charges above this multiple of the DRG's mean, or below its inverse, are "far"
RULES = {
    "mcc_coded": "MCC coded",
    "mcc_short_stay": "MCC coded on a stay under 2 days",
    "admission_category_differs": "admission diagnosis of another ICD category than the principal",
    "symptom_principal_with_specific": "symptom (R) code as principal beside a specific diagnosis",
    "surgical_charges_no_procedure": "surgery-level charges but no procedure coded",
    "planned_procedure_not_coded": "planned procedure not coded",
    "principal_unspecified": "unspecified (.9) principal diagnosis",
}


def _codes(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str).str.strip().str.upper()


def is_unspecified(codes: pd.Series) -> pd.Series:
    """ICD-10 codes whose subcategory is 9 (unspecified, e.g. J18.9 / J18.900): "A00.9..." forms."""
    return _codes(codes).str.match(r"^[A-Z]\d\d\.9")


def unspecified_share(other_diagnoses: pd.Series) -> np.ndarray:
    """Share of each case's secondary diagnoses that are unspecified (NaN without secondaries)."""
    long = exploded_code_lists(_codes(other_diagnoses))
    flags = is_unspecified(long).astype(float).groupby(level=0).mean()
    return flags.reindex(np.arange(len(other_diagnoses))).to_numpy(np.float64)


def rule_flags(cases: pd.DataFrame, mcc_count: pd.Series | np.ndarray) -> pd.DataFrame:
    """Every rule of ``RULES`` per case; ``mcc_count`` comes from the grouper (MCCs that count)."""
    principal = _codes(cases["principal_diagnosis"])
    others = _codes(cases["other_diagnoses"])
    no_procedure = cases["principal_procedure"].isna().to_numpy()
    total = cases["total_cost"].astype(float)
    surgical = (
        cases["cost_treatment"].astype(float) + cases["cost_consumables"].astype(float)
    ) / total.where(total > 0)
    codes = exploded_code_lists(others)
    specific = (
        (~codes.str.startswith("R"))
        .astype(bool)
        .groupby(level=0)
        .any()
        .reindex(range(len(cases)), fill_value=False)
    )
    admission = (
        _codes(cases["admission_diagnosis"])
        if "admission_diagnosis" in cases.columns
        else pd.Series("", index=cases.index)
    )
    mcc = np.asarray(mcc_count) > 0
    return pd.DataFrame(
        {
            "mcc_coded": mcc,
            "mcc_short_stay": mcc & (cases["los_days"].to_numpy() < SHORT_STAY_DAYS),
            "admission_category_differs": (
                (admission != "") & (admission.str[:3] != principal.str[:3])
            ).to_numpy(),
            "symptom_principal_with_specific": principal.str.startswith("R").to_numpy() & specific.to_numpy(),
            "surgical_charges_no_procedure": no_procedure & (surgical >= SURGICAL_SHARE).to_numpy(),
            "planned_procedure_not_coded": planned_procedure_not_coded(cases),
            "principal_unspecified": is_unspecified(cases["principal_diagnosis"]).to_numpy(),
        },
        index=cases.index,
    )


def planned_procedure_not_coded(cases: pd.DataFrame) -> np.ndarray:
    """A planned procedure that is neither the principal nor an other procedure as coded."""
    if "planned_procedure" not in cases.columns:
        return np.zeros(len(cases), dtype=bool)
    planned = _codes(cases["planned_procedure"]).reset_index(drop=True)
    coded = exploded_code_lists(
        _codes(cases["principal_procedure"])
        + CODE_SEPARATOR
        + _codes(cases.get("other_procedures", pd.Series(None, index=cases.index, dtype=object)))
    )
    matches = coded.to_numpy(dtype=object) == planned.to_numpy(dtype=object)[coded.index]
    found = pd.Series(matches, index=coded.index).groupby(level=0).any()
    return ((planned != "") & ~found.reindex(planned.index, fill_value=False)).to_numpy()


def rule_pattern(flags: pd.DataFrame) -> pd.Series:
    """The '+'-joined names of the rules each case trips, "none" when it trips none."""
    text = np.full(len(flags), "", dtype=object)
    for name in flags.columns:
        text = text + np.where(flags[name].to_numpy(bool), "+" + name, "")
    pattern = pd.Series(text, index=flags.index, dtype=object).str.removeprefix("+")
    return pattern.where(pattern != "", "none")


QC_FLAGS = (
    "mcc_coded",
    "admission_category_differs",
    "planned_procedure_not_coded",
    "charges_far_above",
    "charges_far_below",
    "mcc_short_stay",
    "surgical_charges_no_procedure",
    "symptom_principal_with_specific",
    "principal_unspecified",
)


def qc_inputs(X: pd.DataFrame) -> pd.DataFrame:
    """The QC coder's flags and the coder's prior error rate, read off the coding features.

    ``X`` is :class:`models.coding.features.CodingFeatures` output: ``mcc_count`` (as coded, from the
    grouper), the rule flags, ``cost_to_drg_mean`` (DRG means from the training cases) and
    ``coder_prior_error_rate`` (audits dated before each case's discharge only)."""
    ratio = X["cost_to_drg_mean"].astype(float)
    flags = {name: X[name].astype(float) > 0 for name in QC_FLAGS if name in RULES and name != "mcc_coded"}
    return pd.DataFrame(
        {
            "mcc_coded": X["mcc_count"].astype(float).fillna(0) > 0,
            "charges_far_above": ratio > FAR_FROM_MEAN,
            "charges_far_below": ratio < 1 / FAR_FROM_MEAN,
            **flags,
            "coder_prior_error_rate": X["coder_prior_error_rate"].astype(float),
        },
        index=X.index,
    )[[*QC_FLAGS, "coder_prior_error_rate"]].astype(float)


class RulesBaseline:
    """P(error) from the QC flags and the coder's prior error rate: a logistic regression, as a QC team
    would weigh its rules from its own audits (no interactions, no case features)."""

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> RulesBaseline:
        inputs = qc_inputs(X)
        self.fill_ = float(inputs["coder_prior_error_rate"].mean())
        if np.isnan(self.fill_):
            self.fill_ = 0.0
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
            inputs.fillna({"coder_prior_error_rate": self.fill_}), np.asarray(y, dtype=int)
        )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(error) per row of ``X``."""
        inputs = qc_inputs(X).fillna({"coder_prior_error_rate": self.fill_})
        return self.model_.predict_proba(inputs)[:, 1]

    def coefficients(self) -> pd.Series:
        """Each input's weight per standard deviation (log-odds), for the results page."""
        names = [*QC_FLAGS, "coder_prior_error_rate"]
        return pd.Series(self.model_[-1].coef_[0], index=names)
