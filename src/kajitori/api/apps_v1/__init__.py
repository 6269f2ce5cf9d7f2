"""The apps/v1 API: defaulting (defaults.py) and validation (validation/, one module per resource)."""
