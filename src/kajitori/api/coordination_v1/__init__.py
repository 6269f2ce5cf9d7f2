"""The coordination.k8s.io/v1 API: defaulting (defaults.py) and validation (validation/)."""
