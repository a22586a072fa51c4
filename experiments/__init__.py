"""Experiments: MLflow experiment set-ups, benchmarks and written results."""
