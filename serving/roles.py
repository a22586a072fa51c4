"""Who may ask for what: the roles and, per task and data endpoint, the roles allowed.

Plain data with no imports, so the command line (keys, `caselens serve`) reads the roles without
loading the models; :mod:`serving.tasks` joins ``TASK_ROLES`` to the task registry.
"""

ROLES = ("clinician", "coder", "finance", "admin")

# Who may ask for each task's predictions.
TASK_ROLES: dict[str, tuple[str, ...]] = {
    "cost": ("clinician", "finance", "admin"),
    "margin": ("clinician", "finance", "admin"),
    "readmission": ("clinician", "admin"),
    "coding": ("coder", "admin"),
    "instay": ("clinician", "admin"),
}

# Who may use the other data endpoints.
GROUP_ROLES = ("coder", "finance", "clinician", "admin")
QUEUE_ROLES = ("coder", "admin")
CASE_PAGE_ROLES = ("clinician", "coder", "finance", "admin")
FORECAST_ROLES = ("finance", "admin")  # the surplus forecast and loss risk
DRIVERS_ROLES = ("finance", "admin")  # cost drivers
WATCH_ROLES = ("clinician", "admin")  # the ward watch list
OPERATIONS_ROLES = ("admin",)  # /readyz details and /metrics
# Who may be told what a patient's stored earlier stays hold (explanations naming history features);
# the others get the same predictions with those features' share folded into ``rest``.
HISTORY_ROLES = ("clinician", "admin")
