"""LightGBM fits on a Dask cluster: ``lightgbm.dask``'s estimators, handed back as plain LightGBM models.

Inside ``with lgbm.on_cluster(client):`` every estimator :mod:`models.lgbm` builds is a
:class:`ClusterFit`: its ``fit`` splits the rows among the workers, trains LightGBM's own
``DaskLGBMRegressor`` / ``DaskLGBMClassifier`` (data-parallel: each worker builds histograms of its rows,
LightGBM's network adds them up) and returns ``to_local()``, a plain ``LGBMRegressor`` /
``LGBMClassifier``. The tasks, the pyfunc model, SHAP and the registry see the model they always see.

What lightgbm.dask cannot train the same way is trained in this process, and said so in the log:
multiclass models (each worker would count only the classes it holds) and labels that are not 0/1.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMModel

log = logging.getLogger(__name__)


class ClusterFit:
    """An unfitted LightGBM estimator whose ``fit`` trains on the cluster and returns the local model."""

    def __init__(self, model: LGBMModel, client: Any) -> None:
        self.model = model
        self.client = client

    def fit(self, X: pd.DataFrame, y: Any, **options: Any) -> LGBMModel:
        labels = pd.Series(np.asarray(y), index=X.index)
        reason = self._local_reason(labels, options)
        if reason is not None:
            log.warning("LightGBM model trained in this process, not on the cluster: %s", reason)
            return self.model.fit(X, y, **options)
        import dask.dataframe as dd
        from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

        distributed = DaskLGBMClassifier if isinstance(self.model, LGBMClassifier) else DaskLGBMRegressor
        workers = max(len(self.client.scheduler_info().get("workers", {})), 1)
        parts = min(workers, max(len(X) // 1000, 1))  # a worker with a handful of rows adds only noise
        X_parts = dd.from_pandas(X, npartitions=parts, sort=False)
        y_parts = dd.from_pandas(labels, npartitions=parts, sort=False)
        # Workers use their own threads (n_jobs is ignored there); the returned model predicts with the
        # threads it was given, as the service expects.
        params = {k: v for k, v in self.model.get_params().items() if k != "n_jobs"}
        trained = distributed(client=self.client, **params).fit(X_parts, y_parts)
        return trained.to_local().set_params(n_jobs=self.model.n_jobs)

    def _local_reason(self, labels: pd.Series, options: dict[str, Any]) -> str | None:
        """Why this fit cannot go to the cluster (None: it can)."""
        if options:
            return f"fit options {sorted(options)} have no lightgbm.dask equivalent here"
        if isinstance(self.model, LGBMClassifier) and not labels.isin([0, 1, True, False]).all():
            return "a multiclass model (lightgbm.dask counts the classes on each worker separately)"
        return None
