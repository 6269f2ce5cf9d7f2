"""Tests for api/batch_v1."""
