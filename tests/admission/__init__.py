"""Admission plugins through an in-process API server."""
