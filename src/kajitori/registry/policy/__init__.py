"""policy resources in the API server (upstream: pkg/registry/policy)."""
