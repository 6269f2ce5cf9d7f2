"""certificates.k8s.io resources."""
