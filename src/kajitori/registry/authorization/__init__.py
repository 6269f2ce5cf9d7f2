"""authorization.k8s.io: the access review kinds (create-only, never stored)."""
