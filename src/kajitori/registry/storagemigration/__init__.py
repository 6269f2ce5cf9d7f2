"""storagemigration.k8s.io resources."""
