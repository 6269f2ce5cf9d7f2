"""Audit annotations set by admission plugins (upstream: admission.Attributes.AddAnnotation).

Owns the checks upstream's admission attributes make before an annotation
reaches the request's audit event (``RequestContext.add_audit_annotation``):
the key must be a qualified name with exactly one ``/`` (``<prefix>/<name>``),
else the annotation is dropped with a logged warning, as upstream drops it.
Also ``go_json``: annotation values that are JSON are written as Go's
encoding/json writes them (HTML characters escaped), so they read as
upstream's do.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from kajitori.machinery import names
from kajitori.registry.generic.request import RequestContext

_log = logging.getLogger(__name__)

# What Go's encoding/json escapes that orjson writes as is (only ever inside strings).
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def key_problem(key: str) -> str:
    """Why ``key`` may not name an admission annotation ("" when it may)."""
    if key.count("/") != 1:
        return (
            "annotation key has invalid format, the right format is a DNS subdomain prefix "
            "and '/' and key name. (e.g. 'podsecuritypolicy.admission.k8s.io/admit-policy')"
        )
    msgs = names.is_qualified_name(key)
    if msgs:
        return (
            f"annotation key has invalid format {','.join(msgs)}. A qualified name like "
            "'podsecuritypolicy.admission.k8s.io/admit-policy' is required."
        )
    return ""


def add(ctx: RequestContext, key: str, value: str, level: str = "Metadata") -> bool:
    """Record an admission audit annotation; False (and a warning) when its key is refused."""
    problem = key_problem(key)
    if problem:
        _log.warning("Failed to set admission audit annotation %s to %s: %s", key, value, problem)
        return False
    ctx.add_audit_annotation(key, value, level)
    return True


def go_json(value: Any) -> str:
    """``value`` as JSON text the way Go's json.Marshal writes it (sorted map keys are the caller's)."""
    text = orjson.dumps(value).decode()
    for raw, escaped in _GO_ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return text
