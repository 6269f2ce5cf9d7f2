"""apiregistration.k8s.io/v1: APIService defaulting and validation (upstream: kube-aggregator)."""
