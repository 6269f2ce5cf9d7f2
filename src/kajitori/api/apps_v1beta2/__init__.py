"""apps/v1beta2: defaults and conversion to apps/v1 (served only with the old versions)."""
