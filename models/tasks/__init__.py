"""The prediction tasks: every module here that defines ``TASK`` is a task, found by name."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from contract.errors import NotFound
from models.task import Task


@cache
def all_tasks() -> dict[str, Task]:
    """Every task module's ``TASK``, by task name."""
    tasks: dict[str, Task] = {}
    for module in pkgutil.iter_modules(__path__):
        task = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TASK", None)
        if isinstance(task, Task):
            tasks[task.name] = task
    return tasks


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name lists the known ones."""
    tasks = all_tasks()
    if name not in tasks:
        raise NotFound(f"unknown task {name!r}; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
