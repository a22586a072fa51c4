"""The task registry finds task modules by name and every task is complete."""

from __future__ import annotations

import pytest

from contract.errors import NotFound
from models.task import Task
from models.tasks import all_tasks, get_task


def test_cost_and_margin_are_registered_with_their_model_names() -> None:
    tasks = all_tasks()
    assert {"cost", "margin", "instay"} <= set(tasks)
    assert get_task("instay").stage == "in_stay"
    assert get_task("cost").model_name == "caselens-cost"
    assert get_task("margin").model_name == "caselens-margin"
    for task in tasks.values():
        assert isinstance(task, Task) and task.stage in ("admission", "in_stay", "discharge")


def test_an_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"known tasks: .*cost"):
        get_task("los")
