"""The apiextensions.k8s.io/v1 API: CRD defaulting and validation, and the custom
resource machinery (structural schemas in structural.py, CEL rules in cel.py)."""
