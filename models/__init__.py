"""Models: estimators, evaluation and baselines for each prediction task."""
