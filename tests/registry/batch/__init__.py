"""Tests for registry/batch."""
