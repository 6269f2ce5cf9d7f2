"""authentication.k8s.io: SelfSubjectReview (create-only, never stored)."""
