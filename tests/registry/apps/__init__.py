"""Tests for registry/apps."""
