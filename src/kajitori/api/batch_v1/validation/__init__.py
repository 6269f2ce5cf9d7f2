"""Validation of batch/v1 objects, one module per resource (upstream: pkg/apis/<group>/validation)."""
