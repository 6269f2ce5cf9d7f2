"""The workload versions upstream removed in 1.16, served over the apps/v1 storage."""
