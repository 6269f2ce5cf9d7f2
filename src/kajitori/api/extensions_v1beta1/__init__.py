"""extensions/v1beta1 workloads: defaults and conversion to apps/v1."""
