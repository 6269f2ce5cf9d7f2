"""rbac.authorization.k8s.io resources in the API server (upstream: pkg/registry/rbac)."""
