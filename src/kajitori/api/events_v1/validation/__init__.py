"""Validation of events.k8s.io/v1 objects, one module per resource."""
