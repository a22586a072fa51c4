"""Training orchestration.

:mod:`.data` reads the store or a prepared table into a task's frame, :mod:`.run` splits, tunes,
fits, evaluates and moves the champion, :mod:`.mlflow_log` records the run in MLflow.
"""
