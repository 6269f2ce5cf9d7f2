"""Tests for api/apps_v1."""
