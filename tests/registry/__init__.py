"""Tests of the API layer and registry."""
