"""Walking the OpenAPI type definitions of the API (pure data, no I/O).

The API's type data (field types, patch merge keys and strategies, list
types and map keys) comes from upstream's 1.37 OpenAPI definitions, which the
``kubernetes-validate`` package ships as JSON schema with ``$ref`` links
(see ``kajitori.api.definitions`` for loading). This module gives one small
read-only view of such a schema that everything else shares: strategic merge
patch, unknown-field detection, pruning, server-side apply.

A ``SchemaNode`` wraps one schema dict; navigating resolves ``$ref`` lazily.
``None`` from a navigation method means "no schema known here" (free-form
data such as ``metadata.labels`` values or a CRD's preserved fields).
"""

from __future__ import annotations

from typing import Any

_REF_PREFIXES = ("#/$defs/", "#/definitions/")


class SchemaNode:
    """A read-only view of one node of a JSON schema with ``$ref`` resolution."""

    __slots__ = ("_children", "_defs", "_items", "_node", "_types", "_values")

    def __init__(self, node: dict[str, Any], defs: dict[str, Any]) -> None:
        self._defs = defs
        self._node = self._resolve(node)
        # Navigation results are memoised per node: every request walks the
        # same few schemas, so a node reached once is reused from then on.
        self._children: dict[str, SchemaNode | None] = {}
        self._items: SchemaNode | bool | None = False
        self._values: SchemaNode | bool | None = False
        self._types: tuple[str, ...] | None = None

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in node and seen < 32:
            ref = node["$ref"]
            name = ref
            for prefix in _REF_PREFIXES:
                if ref.startswith(prefix):
                    name = ref[len(prefix) :]
                    break
            target = self._defs.get(name)
            if target is None:
                return node
            # A $ref node may carry its own description/extensions beside the ref.
            extras = {k: v for k, v in node.items() if k != "$ref" and k.startswith("x-")}
            node = {**target, **extras} if extras else target
            seen += 1
        return node

    @classmethod
    def for_definition(cls, defs: dict[str, Any], name: str) -> SchemaNode | None:
        node = defs.get(name)
        return None if node is None else cls(node, defs)

    @property
    def raw(self) -> dict[str, Any]:
        return self._node

    @property
    def types(self) -> tuple[str, ...]:
        """The JSON types allowed here (without "null"); empty means any."""
        if self._types is None:
            self._types = self._compute_types()
        return self._types

    def _compute_types(self) -> tuple[str, ...]:
        t = self._node.get("type")
        if t is None:
            if "oneOf" in self._node:  # int-or-string and quantities
                out: list[str] = []
                for alt in self._node["oneOf"]:
                    at = alt.get("type", ())
                    out.extend([at] if isinstance(at, str) else at)
                return tuple(x for x in out if x != "null")
            return ()
        if isinstance(t, str):
            return () if t == "null" else (t,)
        return tuple(x for x in t if x != "null")

    @property
    def is_object(self) -> bool:
        return "properties" in self._node or "object" in self.types

    @property
    def is_array(self) -> bool:
        return "array" in self.types

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self._node.get("properties", {})
        return props

    @property
    def has_open_properties(self) -> bool:
        """True where keys are not a fixed set (a map, or no declared fields)."""
        if "additionalProperties" in self._node:
            return True
        return "properties" not in self._node and (not self.types or "object" in self.types)

    def field(self, name: str) -> SchemaNode | None:
        """Schema of property ``name`` of an object, or of a map's values."""
        try:
            return self._children[name]
        except KeyError:
            child = self._children[name] = self._field(name)
            return child

    def _field(self, name: str) -> SchemaNode | None:
        prop = self.properties.get(name)
        if prop is not None:
            return SchemaNode(prop, self._defs)
        additional = self._node.get("additionalProperties")
        if isinstance(additional, dict):
            return SchemaNode(additional, self._defs)
        return None

    def items(self) -> SchemaNode | None:
        """Schema of an array's items."""
        if self._items is False:
            items = self._node.get("items")
            self._items = SchemaNode(items, self._defs) if isinstance(items, dict) else None
        assert not isinstance(self._items, bool)
        return self._items

    def map_values(self) -> SchemaNode | None:
        """Schema of a map's values (built once per node, like ``items``)."""
        if self._values is False:
            additional = self._node.get("additionalProperties")
            self._values = (
                SchemaNode(additional, self._defs) if isinstance(additional, dict) else None
            )
        assert not isinstance(self._values, bool)
        return self._values

    @property
    def patch_strategy(self) -> str:
        """``x-kubernetes-patch-strategy``: "", "merge", "replace", "retainKeys" or "merge,retainKeys"."""
        value: str = self._node.get("x-kubernetes-patch-strategy", "")
        return value

    @property
    def patch_merge_key(self) -> str:
        value: str = self._node.get("x-kubernetes-patch-merge-key", "")
        return value

    @property
    def list_type(self) -> str:
        """``x-kubernetes-list-type``: "atomic", "set", "map" or "" (unspecified)."""
        value: str = self._node.get("x-kubernetes-list-type", "")
        return value

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        return tuple(self._node.get("x-kubernetes-list-map-keys", ()))

    @property
    def map_type(self) -> str:
        value: str = self._node.get("x-kubernetes-map-type", "")
        return value

    @property
    def format(self) -> str:
        value: str = self._node.get("format", "")
        return value

    @property
    def description(self) -> str:
        value: str = self._node.get("description", "")
        return value

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self._node.get("required", ()))
