"""The predictions the service answers: every task of the task registry that a role may see.

A task's name, stage, prediction column and wording are the task's own (:mod:`models.tasks`, its
``output``); serving adds only who may ask, in ``TASK_ROLES``. The stage decides the request schema
(a pre-admission request carries admission fields only) and the roles who may ask, so an endpoint,
its docs and its access rule cannot drift apart. A task without a row here is not served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.errors import ConfigError
from contract.fields import Stage
from models.task import Task
from models.tasks import all_tasks
from serving.roles import ROLES, TASK_ROLES
from serving.schemas import CASE_MODELS


@dataclass(frozen=True)
class ServedTask:
    """A registered task and the roles that may ask for it."""

    task: Task
    roles: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def model_name(self) -> str:
        return self.task.model_name

    @property
    def stage(self) -> Stage:
        return self.task.stage

    @property
    def case_requests(self) -> bool:
        """Whether a request is one case of the task's stage (the generated ``/v1/predict/<task>``
        routes and the case page's cards); an in-stay request is a record with its daily charges,
        answered by its own router (``serving.routers.instay``)."""
        return self.stage in CASE_MODELS

    @property
    def summary(self) -> str:
        return self.task.output.summary

    @property
    def zh(self) -> str:
        return self.task.output.zh

    @property
    def en(self) -> str:
        return self.task.output.en


def served_tasks(
    tasks: Mapping[str, Task] | None = None, roles: Mapping[str, tuple[str, ...]] = TASK_ROLES
) -> dict[str, ServedTask]:
    """The served tasks, in ``roles`` order: each task of the registry (``tasks``, default all) with roles.

    A role table naming a task the registry does not hold, or a role that does not exist, is a
    configuration error: a typo must not silently leave a task unserved or open to no one.
    """
    tasks = all_tasks() if tasks is None else tasks
    unknown = [name for name in roles if name not in tasks]
    if unknown:
        raise ConfigError(f"roles given for unknown task(s) {', '.join(unknown)}; known: {', '.join(tasks)}")
    for name, allowed in roles.items():
        if not allowed or set(allowed) - set(ROLES):
            raise ConfigError(f"task {name}: roles must be some of {', '.join(ROLES)}, not {allowed!r}")
    return {name: ServedTask(tasks[name], tuple(allowed)) for name, allowed in roles.items()}


SERVED_TASKS = served_tasks()
