"""Serving: the FastAPI application and its pages."""
