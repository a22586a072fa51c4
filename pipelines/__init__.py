"""Pipelines: ingest, validate, demo data, orchestration and the command line."""
