"""The predictions the service answers: which registered model, at which stage, for which roles.

The stage decides the request schema (a pre-admission request carries admission fields only), and the
roles decide who may ask. Keeping this in one table means an endpoint, its docs and its access rule
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.fields import Stage

CHAMPION_ALIAS = "champion"
ROLES = ("clinician", "coder", "finance", "admin")


@dataclass(frozen=True)
class ServedTask:
    name: str
    model_name: str
    stage: Stage
    roles: tuple[str, ...]
    summary: str
    zh: str
    en: str
    unit: str  # "yuan" or "probability": how the value and the reasons read
    value_column: str | None = None  # the model output that is the prediction; None: the first column


SERVED_TASKS: dict[str, ServedTask] = {
    t.name: t
    for t in (
        ServedTask(
            "cost",
            "caselens-cost",
            "admission",
            ("clinician", "finance", "admin"),
            "Expected case cost before admission, with an 80% interval.",
            "预计住院费用",
            "expected cost",
            "yuan",
            "cost",
        ),
        ServedTask(
            "margin",
            "caselens-margin",
            "admission",
            ("clinician", "finance", "admin"),
            "Expected DRG surplus (payment − cost) before admission.",
            "预计DRG结余",
            "expected DRG surplus",
            "yuan",
            "expected_margin",
        ),
        ServedTask(
            "readmission",
            "caselens-readmission",
            "discharge",
            ("clinician", "admin"),
            "Calibrated probability of an unplanned readmission within 30 days of discharge.",
            "30天非计划再入院风险",
            "30-day unplanned readmission risk",
            "probability",
            "readmission_probability",
        ),
        ServedTask(
            "coding",
            "caselens-coding",
            "discharge",
            ("coder", "admin"),
            "Probability that the coded abstract holds a coding error, before claim submission.",
            "编码错误风险",
            "coding error risk",
            "probability",
            "error_probability",
        ),
    )
}

# Who may use the other data endpoints.
GROUP_ROLES = ("coder", "finance", "clinician", "admin")
QUEUE_ROLES = ("coder", "admin")
CASE_PAGE_ROLES = ("clinician", "coder", "finance", "admin")
# Who may be told what a patient's stored earlier stays hold (explanations naming history features);
# the others get the same predictions with those features' share folded into ``rest``.
HISTORY_ROLES = ("clinician", "admin")
