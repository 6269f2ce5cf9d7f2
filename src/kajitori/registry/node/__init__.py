"""node.k8s.io resources."""
