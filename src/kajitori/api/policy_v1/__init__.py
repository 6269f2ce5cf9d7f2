"""The policy/v1 API: defaulting (defaults.py) and validation (validation/)."""
