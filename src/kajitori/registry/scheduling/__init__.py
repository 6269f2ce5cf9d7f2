"""scheduling.k8s.io resources."""
