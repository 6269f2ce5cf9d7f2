"""Unknown fields: finding and dropping what a kind's schema does not declare.

Upstream decodes built-in kinds into Go structs, which silently drops unknown
fields; ``fieldValidation`` (Strict / Warn / Ignore) decides whether the
client hears about them (400, a ``Warning`` header, or nothing). We do the
same against the 1.37 schemas: ``prune_unknown`` drops every undeclared
field in place and returns their paths, written as upstream writes them
(``spec.containers[0].imagePullPolcy``).
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery.schema import SchemaNode


def prune_unknown(obj: Any, schema: SchemaNode | None, path: str = "") -> list[str]:
    """Drop fields ``schema`` does not declare from ``obj``; return their paths."""
    if schema is None:
        return []
    unknown: list[str] = []
    _prune(obj, schema, path, unknown)
    return unknown


def _prune(value: Any, schema: SchemaNode, path: str, unknown: list[str]) -> None:
    if isinstance(value, dict):
        _prune_object(value, schema, path, unknown)
    elif isinstance(value, list):
        items = schema.items()
        if items is not None:
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", unknown)


def _prune_object(value: dict[str, Any], schema: SchemaNode, path: str, unknown: list[str]) -> None:
    properties = schema.properties
    if not properties:
        values = schema.map_values()
        if values is not None:
            for key, item in value.items():
                _prune(item, values, f"{path}[{key}]" if path else key, unknown)
        return  # free-form object (RawExtension, JSON): nothing to check
    for key in list(value):
        child_path = f"{path}.{key}" if path else key
        if key not in properties:
            unknown.append(child_path)
            del value[key]
            continue
        child = schema.field(key)
        if child is not None:
            _prune(value[key], child, child_path, unknown)


def drop_nulls(value: Any) -> None:
    """Remove null-valued fields in place, as decoding into upstream's typed structs does.

    A patch may leave ``null`` where it deleted nothing (e.g. ``image: null`` on a
    new list item); upstream's decode turns those into absent fields.
    """
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            drop_nulls(item)
    elif isinstance(value, list):
        for item in value:
            drop_nulls(item)
