"""Typer wrappers for the caselens command line, one module per area."""
