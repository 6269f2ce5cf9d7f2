"""node.k8s.io/v1: RuntimeClass validation (the kind has no defaults in v1)."""
