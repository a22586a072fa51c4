"""What a prediction task is, so the training framework can run any of them the same way.

A task says when its prediction is made (``stage``: only fields known then may be features), how its
labels come out of the canonical cases, which estimator and baseline it uses, how both are judged
(``evaluate``, with a primary metric and its direction) and which plots explain it. Its ``output`` says which
prediction column is *the* prediction, the link its explanation adds up on and how it reads, so the
registered model and the service take them from the task, never from a table of their own. A new task
is a new module in :mod:`models.tasks` that defines ``TASK``; the framework finds it by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pandas as pd
from matplotlib.figure import Figure

from contract.fields import Stage

Link = Literal["identity", "log", "logit"]
Unit = Literal["yuan", "probability"]


@dataclass(frozen=True)
class Output:
    """The task's prediction as it is served: ``column`` of the estimator's outputs is the prediction
    (``<column>_lower``/``_upper`` its interval when there is one); its SHAP values add up on the
    ``link`` scale (``log``: log yuan, ``logit``: log-odds); ``unit``, ``zh``/``en`` (the subject of
    a reason: "raised the expected cost by ¥2,400") and ``summary`` are how the answer reads."""

    column: str
    link: Link
    unit: Unit
    zh: str
    en: str
    summary: str


class Estimator(Protocol):
    """A task's model over the feature frame; ``predict`` returns named output columns."""

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> Estimator: ...

    def predict(self, X: pd.DataFrame) -> pd.DataFrame: ...


@dataclass
class Evaluation:
    """Scalar metrics (logged as MLflow metrics) and breakdown tables (logged as CSV artifacts)."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


class Task(ABC):
    """One prediction task; subclasses fill in the class attributes and the abstract methods."""

    name: str
    title: str
    stage: Stage
    label_column: str
    output: Output
    primary_metric: str
    greater_is_better: bool
    baseline_levels: tuple[tuple[str, ...], ...] = ()
    # True when some cases have no label (a missing ``label_column``: follow-up censored, abstract not
    # audited): they are left out of training and evaluation but stay in the history features read.
    partial_labels: bool = False

    @property
    def model_name(self) -> str:
        """Registered model name in the MLflow registry."""
        return f"caselens-{self.name}"

    @abstractmethod
    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        """Labels from canonical cases, indexed like them; ``label_column`` first, any helper labels after."""

    def labels_from_table(self, label: pd.Series) -> pd.DataFrame:
        """Labels of a prepared table: its one label column under the task's name."""
        return label.rename(self.label_column).to_frame()

    def context(self, inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        """Columns the baseline groups by and the evaluation breaks down by (never model features)."""
        return pd.DataFrame(index=inputs.index)

    def features(self) -> Any:
        """The unfitted feature transformer of the task's case inputs: ``CaseFeatures`` at its stage."""
        from features.pipeline import CaseFeatures

        return CaseFeatures(self.stage)

    @abstractmethod
    def estimator(self, params: dict[str, Any]) -> Estimator:
        """An unfitted estimator from the task's hyperparameters."""

    @abstractmethod
    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        """What the baseline averages per group; its columns are prediction columns of the task."""

    @abstractmethod
    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        """Metrics of predictions against labels; must cope with a baseline's fewer prediction columns."""

    def plots(
        self, estimator: Estimator, X: pd.DataFrame, labels: pd.DataFrame, predictions: pd.DataFrame
    ) -> dict[str, Figure]:
        """PNG figures to log, by file name."""
        return {}

    def better(self, new: float, old: float) -> bool:
        """Whether ``new`` beats ``old`` on the primary metric."""
        return new > old if self.greater_is_better else new < old


Direction = Literal["maximize", "minimize"]


def direction(task: Task) -> Direction:
    """Optuna's word for the task's metric direction."""
    return "maximize" if task.greater_is_better else "minimize"
