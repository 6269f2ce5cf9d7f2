"""Validation of policy/v1 objects, one module per resource."""
