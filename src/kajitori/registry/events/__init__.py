"""events.k8s.io resources in the API server (upstream: pkg/registry/core/event, served as events.k8s.io)."""
