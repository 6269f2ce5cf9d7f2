"""The core/v1 API: defaulting (``defaults``) and validation (``validation``) of core kinds.

Wire objects stay plain dicts; this package holds only the per-version rules
(upstream pkg/apis/core/v1 and pkg/apis/core/validation).
"""
