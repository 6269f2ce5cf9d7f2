"""Runs the storage conformance suite (conformance.py) against every backend.

The suite's functions are collected here by name, once for each ``backend``
fixture parameter in conftest.py.
"""

from __future__ import annotations

from . import conformance

globals().update(
    {name: test for name, test in vars(conformance).items() if name.startswith("test_")}
)
