"""Helpers for tests, benchmarks and the stress command: real dependencies, started locally."""
