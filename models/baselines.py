"""The yardstick each model must beat: the mean of similar past cases.

This is what an insurance office does without a model (average cost of the department and diagnosis
group last year), so a model is only worth serving when it beats it on the same test period.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class GroupMeanBaseline:
    """Training-period mean of each target per group, falling back level by level to the overall mean.

    ``levels`` go from most to least specific, e.g. ``(("department", "admission_category"),
    ("department",))``; a level whose columns the context lacks is skipped, and a group needs
    ``min_count`` training cases to be trusted.
    """

    levels: tuple[tuple[str, ...], ...]
    min_count: int = 5

    def fit(self, context: pd.DataFrame, targets: pd.DataFrame) -> GroupMeanBaseline:
        self.levels_ = tuple(level for level in self.levels if set(level) <= set(context.columns))
        frame = context.join(targets)
        self.means_ = []
        for level in self.levels_:
            grouped = frame.groupby(list(level), observed=True, dropna=False)
            means = grouped[list(targets.columns)].mean()
            self.means_.append(means[grouped.size() >= self.min_count])
        self.overall_ = targets.mean()
        return self

    def predict(self, context: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=context.index, columns=self.overall_.index, dtype="float64")
        for level, means in zip(self.levels_, self.means_, strict=True):
            keys = pd.MultiIndex.from_frame(context[list(level)]) if len(level) > 1 else context[level[0]]
            found = means.reindex(keys)
            found.index = context.index
            out = out.fillna(found)
        return out.fillna(self.overall_)
