"""What a coding auditor looks at, as features beside the discharge-stage case features.

:class:`CodingFeatures` is ``CaseFeatures("discharge")`` (demographics, codes rolled up, DRG, MCC/CC
counts, length of stay, the ten charge groups...) plus the ``coding_audit`` view (:data:`CODING_AUDIT`,
registered in :data:`features.catalog.VIEWS` so its stage guard and the catalogue cover it):

- **DRG boundary**: how many secondary diagnoses would change the DRG if dropped, the largest RW lost
  by dropping one, whether swapping the principal with a secondary changes the DRG and by how much
  RW, the RW a missed CC/MCC (the ADRG's next heavier split) or the uncoded planned procedure would
  add (:mod:`models.coding.whatif`, one regrouping batch).
- **Support**: an MCC with a stay under 2 days, the case's cost against its DRG's mean cost (an MCC
  with a cheap stay is unsupported; a heavy stay without one may miss it), surgery-level charges
  without a procedure, a planned procedure never coded.
- **Specificity**: an unspecified (.9) principal, a symptom (R) principal when a specific diagnosis
  is present, the share of unspecified secondary diagnoses.
- **Error history**, point in time: the coder's and the department's audits and errors *dated before
  the case's discharge* (``features.point_in_time.as_of``, rule ``before``), read from the
  ``history`` given to ``transform`` (the store's audited cases), as counts and a smoothed error rate.

Relative weights are the insurer's RW table the payment rules name; without one they are estimated on
the training cases in ``fit`` (weights never see later cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from casemix.engine import CasemixEngine
from features.catalog import VIEWS
from features.history import StayIndex
from features.pipeline import CaseFeatures, feature_catalog
from features.point_in_time import Timeline, as_of, day_numbers
from features.view import Feature, FeatureContext, FeatureView
from models.coding import rules as coding_rules
from models.coding.whatif import heavier_drg, regroup_variants, with_los_days

SMOOTHING_AUDITS = 20.0  # an entity's error rate is shrunk to the overall rate with this many audits' weight

AUDIT_FEATURES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "drop_changes_drg",
        "删除一个其他诊断即改变DRG的个数",
        "secondary diagnoses whose removal changes the DRG",
        ("principal_diagnosis", "other_diagnoses"),
    ),
    (
        "drop_max_rw_loss",
        "删除一个其他诊断的最大权重降幅",
        "largest RW lost by dropping one secondary diagnosis",
        ("principal_diagnosis", "other_diagnoses"),
    ),
    (
        "swap_changes_drg",
        "主次诊断互换即改变DRG的个数",
        "secondary diagnoses whose swap with the principal changes the DRG",
        ("principal_diagnosis", "other_diagnoses"),
    ),
    (
        "swap_max_rw_change",
        "主次诊断互换的最大权重变化",
        "largest RW change from swapping the principal",
        ("principal_diagnosis", "other_diagnoses"),
    ),
    (
        "heavier_rw_gain",
        "加一级并发症/合并症的权重增幅",
        "RW gained by the ADRG's next heavier split (a missed CC/MCC)",
        ("principal_diagnosis", "other_diagnoses"),
    ),
    (
        "planned_procedure_rw_gain",
        "补编拟行手术的权重增幅",
        "RW gained by coding the planned procedure",
        ("planned_procedure", "principal_procedure"),
    ),
    (
        "planned_procedure_not_coded",
        "拟行手术未编码",
        "a planned procedure was not coded",
        ("planned_procedure", "principal_procedure", "other_procedures"),
    ),
    (
        "admission_category_differs",
        "入院诊断与主要诊断类目不同",
        "admission diagnosis of another ICD category than the principal",
        ("admission_diagnosis", "principal_diagnosis"),
    ),
    ("cost_to_drg_mean", "费用/DRG平均费用", "charges over the DRG's mean charges", ("total_cost",)),
    ("mcc_short_stay", "有MCC且住院<2天", "an MCC with a stay under 2 days", ("los_days", "other_diagnoses")),
    (
        "surgical_charges_no_procedure",
        "手术级费用但无手术操作",
        "surgery-level charges without a procedure",
        ("cost_treatment", "cost_consumables", "principal_procedure"),
    ),
    (
        "principal_unspecified",
        "主要诊断为未特指(.9)",
        "principal diagnosis unspecified (.9)",
        ("principal_diagnosis",),
    ),
    (
        "symptom_principal_with_specific",
        "症状编码为主要诊断且有明确诊断",
        "symptom (R) code as principal beside a specific diagnosis",
        ("principal_diagnosis", "other_diagnoses"),
    ),
    (
        "unspecified_secondary_share",
        "未特指其他诊断占比",
        "share of unspecified secondary diagnoses",
        ("other_diagnoses",),
    ),
    ("coder_prior_audits", "编码员既往审核数", "coder's earlier audits", ("coder_id",)),
    (
        "coder_prior_error_rate",
        "编码员既往差错率",
        "coder's earlier audit error rate (smoothed)",
        ("coder_id",),
    ),
    ("department_prior_audits", "科室既往审核数", "department's earlier audits", ("department",)),
    (
        "department_prior_error_rate",
        "科室既往差错率",
        "department's earlier audit error rate (smoothed)",
        ("department",),
    ),
)
AUDIT_SOURCES = ("audit_date", "audit_error")
AUDITED_BY = ("coder_id", "department")  # the entities whose earlier audits are features


def error_history(cases: pd.DataFrame, audits: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Audits and errors of each case's ``entity`` (coder_id, department) dated before its discharge.

    ``audits`` are audited stays (``entity``, ``audit_date``, ``audit_error``), or their counts per
    ``entity`` and day (:func:`audit_counts`: the same numbers from a table of entities × days); the
    rate is smoothed towards the error rate of every audit dated before the discharge.
    """
    audits = audits[audits["audit_date"].notna() & audits[entity].notna()]
    blocks = pd.factorize(pd.concat([audits[entity], cases[entity]], ignore_index=True).astype(object))[0]
    audit_block, case_block = blocks[: len(audits)].astype(np.int64), blocks[len(audits) :].astype(np.int64)
    audit_day, case_day = day_numbers(audits["audit_date"]), day_numbers(cases["discharge_date"])
    if "audits" in audits.columns:  # already counted per entity and day
        counts = audits[["audits", "errors"]].to_numpy(np.float64)
    else:
        error = audits["audit_error"].astype("boolean").fillna(False).to_numpy(np.float64)
        counts = np.column_stack([np.ones(len(audits)), error])

    def before(audit_keys: np.ndarray, case_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Audits (and errors among them) of each case's key dated strictly before its discharge."""
        timeline = Timeline.of(audit_keys, audit_day)
        lo, hi = as_of(timeline, case_keys, case_day, rule="before")
        cumulative = timeline.cumulative(counts)
        found = cumulative[hi] - cumulative[lo]  # integers in float64: exact, whatever the order
        return found[:, 0], found[:, 1]

    count, errors = before(audit_block, case_block)
    all_count, all_errors = before(np.zeros(len(audits), np.int64), np.zeros(len(cases), np.int64))
    overall = np.where(all_count > 0, all_errors / np.maximum(all_count, 1), np.nan)
    rate = (errors + SMOOTHING_AUDITS * overall) / (count + SMOOTHING_AUDITS)
    prefix = entity.removesuffix("_id")
    return pd.DataFrame(
        {f"{prefix}_prior_audits": count, f"{prefix}_prior_error_rate": rate}, index=cases.index
    )


def audit_counts(stays: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Audits and errors of the audited ``stays`` per ``entity`` and audit day: what
    :func:`error_history` reads, added up over any split of the stays (``sum_audit_counts``) and small
    (entities × days) whatever the number of stays."""
    audited = stays[stays["audit_date"].notna() & stays[entity].notna()]
    counts = pd.DataFrame(
        {
            entity: audited[entity].astype(object).to_numpy(),
            "audit_date": audited["audit_date"].to_numpy(),
            "audits": np.ones(len(audited), dtype=np.int64),
            "errors": audited["audit_error"].astype("boolean").fillna(False).to_numpy(np.int64),
        }
    )
    return sum_audit_counts([counts], entity)


def sum_audit_counts(parts: list[pd.DataFrame], entity: str) -> pd.DataFrame:
    """``audit_counts`` of several splits of the stays added up into those of all of them."""
    counts = pd.concat(parts, ignore_index=True)
    return counts.groupby([entity, "audit_date"], sort=True, as_index=False)[["audits", "errors"]].sum()


@dataclass(frozen=True)
class AuditedHistory:
    """History for the coding features when the stays at hand are not all the stays: ``stays`` hold
    the cases' patients whole (their own earlier stays) and ``audits`` every coder's and department's
    audits counted per day (``audit_counts`` by entity: ``coder_id``, ``department``). A Dask partition
    of whole patients with the store's counts gives the features the whole store gives."""

    stays: pd.DataFrame
    audits: dict[str, pd.DataFrame]


def boundary(
    cases: pd.DataFrame, engine: CasemixEngine, weights: pd.DataFrame, max_variants: int
) -> pd.DataFrame:
    """DRG-boundary features from one regrouping batch of drop / swap / procedure variants."""
    coded = engine.group(cases)
    rw = weights["rw"]
    coded_rw = coded["drg"].map(rw).astype(float).to_numpy()
    variants = regroup_variants(cases, engine, max_variants)
    variants["changed"] = variants["drg"].to_numpy() != coded["drg"].to_numpy()[variants["row"]]
    variants["delta"] = variants["drg"].map(rw).astype(float).to_numpy() - coded_rw[variants["row"]]
    n = len(cases)

    def per_case(kind: str, column: str, how: str) -> np.ndarray:
        values = variants.loc[variants["kind"] == kind].groupby("row")[column].agg(how)
        return values.reindex(np.arange(n)).to_numpy(np.float64)

    heavy = heavier_drg(coded["drg"], engine.tables).map(rw).astype(float).to_numpy()
    return pd.DataFrame(
        {
            "drop_changes_drg": np.nan_to_num(per_case("drop", "changed", "sum")),
            "drop_max_rw_loss": -per_case("drop", "delta", "min"),
            "swap_changes_drg": np.nan_to_num(per_case("swap", "changed", "sum")),
            "swap_max_rw_change": _largest_change(variants[variants["kind"] == "swap"], n),
            "heavier_rw_gain": heavy - coded_rw,
            "planned_procedure_rw_gain": per_case("procedure", "delta", "max"),
            "mcc_count_": coded["mcc_count"].to_numpy(np.float64),
            "drg_mean_cost_": coded["drg"].map(weights["mean_cost"]).astype(float).to_numpy(),
        },
        index=cases.index,
    )


def _largest_change(variants: pd.DataFrame, n: int) -> np.ndarray:
    """Per case, the RW change of largest size among its variants, sign kept (NaN without one)."""
    known = variants[variants["delta"].notna()]
    order = np.lexsort((-known["delta"].abs().to_numpy(), known["row"].to_numpy()))
    first = known.iloc[order].drop_duplicates("row")
    out = np.full(n, np.nan)
    out[first["row"].to_numpy()] = first["delta"].to_numpy()
    return out


class CodingFeatures(TransformerMixin, BaseEstimator):
    """Discharge-stage case features plus the auditor's features (``AUDIT_FEATURES``)."""

    def __init__(self, max_variants: int = 8, tables: Any = None, payment_config: Any = None) -> None:
        self.max_variants = max_variants
        self.tables = tables
        self.payment_config = payment_config

    def fit(
        self, cases: pd.DataFrame, y: object = None, history: pd.DataFrame | None = None
    ) -> CodingFeatures:
        """Take the rules' RW table (else estimate weights on the training cases), then fit the case
        features with them."""
        grouped = with_los_days(cases).join(self.casemix.group(cases))
        self.weights_ = self.casemix.weights(grouped)
        self.case_features_ = CaseFeatures(
            "discharge", tables=self.tables, weights=self.weights_.reset_index()
        )
        self.case_features_.fit(cases)
        return self

    def transform(self, cases: pd.DataFrame, history: pd.DataFrame | StayIndex | None = None) -> pd.DataFrame:
        check_is_fitted(self, "weights_")
        stays = history.stays if isinstance(history, AuditedHistory) else history
        base = self.case_features_.transform(cases, history=stays)
        return base.join(self.audit_features(cases, history))

    def audit_features(
        self, cases: pd.DataFrame, history: pd.DataFrame | StayIndex | AuditedHistory | None = None
    ) -> pd.DataFrame:
        """The ``coding_audit`` view alone (raw numbers, same index as ``cases``).

        ``history`` may be the frame of stored stays or a :class:`StayIndex` prepared over them (as
        the service passes it): both give the audits of the coder's and the department's cases; an
        :class:`AuditedHistory` gives them counted.
        """
        check_is_fitted(self, "weights_")
        stays = history.stays if isinstance(history, StayIndex | AuditedHistory) else history
        context = FeatureContext(casemix=self.casemix, weights=self.weights_, stays=stays)
        counted = history.audits if isinstance(history, AuditedHistory) else None
        return audit_frame(cases, context, self.max_variants, counted)

    @property
    def catalog(self) -> pd.DataFrame:
        """The case features' catalog plus one row per auditor feature."""
        check_is_fitted(self, "weights_")
        return pd.concat([self.case_features_.catalog, feature_catalog([CODING_AUDIT])], ignore_index=True)

    @property
    def casemix(self) -> CasemixEngine:
        """The casemix engine of these tables and payment rules (``None``: the settings'), built once
        per process and never pickled (like ``CaseFeatures``')."""
        if getattr(self, "_casemix", None) is None:
            self._casemix = CasemixEngine.from_settings(tables=self.tables, rules=self.payment_config)
        return self._casemix

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_casemix", None)
        return state


def _audits(cases: pd.DataFrame, stays: pd.DataFrame | None) -> pd.DataFrame:
    """Audited stays known to this call: from ``stays`` and from ``cases`` when they carry audits."""
    columns = ["case_id", "coder_id", "department", "audit_date", "audit_error"]
    frames = [f[columns] for f in (stays, cases) if f is not None and set(columns) <= set(f.columns)]
    if not frames:
        return pd.DataFrame(
            {c: pd.Series(dtype="datetime64[ns]" if c == "audit_date" else object) for c in columns}
        )
    return pd.concat(frames, ignore_index=True).drop_duplicates("case_id")


def audit_frame(
    cases: pd.DataFrame,
    context: FeatureContext,
    max_variants: int = 8,
    counted: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The ``coding_audit`` view's compute: ``context`` gives the casemix engine, the DRG weights (``rw``,
    ``mean_cost`` by DRG) and the stored stays whose audits make the error history, unless ``counted``
    gives those audits already counted per entity (:class:`AuditedHistory`)."""
    cases = with_los_days(cases)
    edge = boundary(cases, context.casemix, context.weights, max_variants)
    flags = coding_rules.rule_flags(cases, edge["mcc_count_"])
    audits = _audits(cases, context.stays) if counted is None else None
    out = edge.drop(columns=["mcc_count_", "drg_mean_cost_"]).assign(
        planned_procedure_not_coded=flags["planned_procedure_not_coded"].astype(float),
        admission_category_differs=flags["admission_category_differs"].astype(float),
        cost_to_drg_mean=cases["total_cost"].astype(float).to_numpy() / edge["drg_mean_cost_"].to_numpy(),
        mcc_short_stay=flags["mcc_short_stay"].astype(float),
        surgical_charges_no_procedure=flags["surgical_charges_no_procedure"].astype(float),
        principal_unspecified=flags["principal_unspecified"].astype(float),
        symptom_principal_with_specific=flags["symptom_principal_with_specific"].astype(float),
        unspecified_secondary_share=coding_rules.unspecified_share(cases["other_diagnoses"]),
    )
    for entity in AUDITED_BY:
        out = out.join(error_history(cases, audits if counted is None else counted[entity], entity))
    return out[CODING_AUDIT.names]


CODING_AUDIT = VIEWS.register(
    FeatureView(
        name="coding_audit",
        entity="case",
        stage="discharge",
        description="what a coding auditor looks at: DRG boundary, support, specificity, error history",
        features=tuple(
            Feature(name, zh, en, sources, prior_sources=AUDIT_SOURCES if "_prior_" in name else ())
            for name, zh, en, sources in AUDIT_FEATURES
        ),
        compute=audit_frame,
        timestamp="discharge_date",
        shared=False,
    )
)
