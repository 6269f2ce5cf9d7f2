"""Custom resources for ``bench.apply``: their CRDs, bodies and request factories.

Three CRDs, installed once per run:

* ``gadgets.bench.kajitori.dev``: a schema with a 50-entry associative list
  (``x-kubernetes-list-type: map`` keyed by ``name``), the custom-resource
  counterpart of the 50-container Deployment, for server-side apply;
* ``checkeds.bench.kajitori.dev``: 200 typed fields under ``spec`` (strings with
  maxLength, bounded integers, booleans) and 10 CEL rules on ``spec``;
* ``freeforms.bench.kajitori.dev``: the same body under an empty schema with
  ``x-kubernetes-preserve-unknown-fields``, the floor for the validation cost.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from bench import loadgen

GROUP = "bench.kajitori.dev"
ENTRIES = 50
FIELDS = 200
JSON_HEADERS = (
    ("content-type", "application/json"),
    ("accept", "application/json"),
    ("user-agent", "bench/1.0"),
)
APPLY_HEADERS = (
    ("content-type", "application/apply-patch+yaml"),
    ("accept", "application/json"),
    ("user-agent", "bench/1.0"),
)
RULES = (
    "self.f000 <= self.f001",
    "self.f002.size() <= 32",
    "self.f003.startsWith('v')",
    "!has(self.f004) || self.f004 != 'forbidden'",
    "self.f005 >= 0 && self.f005 < 1000",
    "self.f006.matches('^[a-z0-9-]+$')",
    "self.f007 || !self.f008",
    "self.f009 + self.f010 < 2000",
    "self.f011.lowerAscii() == self.f011",
    "quantity(self.f012).isLessThan(quantity('64Gi'))",
)


def _crd(plural: str, kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [
                {"name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }  # fmt: skip


def _field_schema(i: int) -> dict[str, Any]:
    if i in (7, 8) or (i % 10 == 9 and i > 20):
        return {"type": "boolean"}
    if i in (0, 1, 5, 9, 10) or (i % 3 == 0 and i > 20):
        return {"type": "integer", "minimum": 0, "maximum": 1000}
    return {"type": "string", "maxLength": 64}


def _field_value(i: int) -> Any:
    kind = _field_schema(i)["type"]
    if kind == "boolean":
        return i != 8
    if kind == "integer":
        return i
    if i == 12:
        return "512Mi"
    return f"v{i}-value"


def crds() -> list[dict[str, Any]]:
    """The three CRDs, in the order they are created."""
    entry = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "image": {"type": "string"},
            "port": {"type": "integer"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    gadget_spec = {
        "type": "object",
        "properties": {
            "paused": {"type": "boolean"},
            "entries": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"], "items": entry},
        },
    }  # fmt: skip
    checked_spec = {
        "type": "object",
        "properties": {f"f{i:03d}": _field_schema(i) for i in range(FIELDS)},
        "x-kubernetes-validations": [{"rule": rule} for rule in RULES],
    }
    return [
        _crd("gadgets", "Gadget", {"type": "object", "properties": {"spec": gadget_spec}}),
        _crd("checkeds", "Checked", {"type": "object", "properties": {"spec": checked_spec}}),
        _crd("freeforms", "Freeform",
             {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ]  # fmt: skip


def gadget(name: str, revision: int) -> dict[str, Any]:
    """A Gadget with 50 list-map entries; ``revision`` is an annotation on it."""
    entries = [
        {"name": f"e{i}", "image": f"registry.example/app-{i}:1.0", "port": 8000 + i,
         "env": {"INDEX": str(i)}}
        for i in range(ENTRIES)
    ]  # fmt: skip
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gadget",
        "metadata": {"name": name, "annotations": {"bench/revision": str(revision)}},
        "spec": {"paused": True, "entries": entries},
    }


def _gadget_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/v1/namespaces/{namespace}/gadgets"
    return f"{base}/{name}" if name else base


def gadget_applies(namespace: str, objects: int, offset: int) -> loadgen.RequestFactory:
    """Apply Gadget ``i % objects`` with revision ``offset + i`` (always a change)."""

    def make(i: int) -> loadgen.Request:
        name = f"g{i % objects}"
        body = orjson.dumps(gadget(name, offset + i))
        path = _gadget_path(namespace, name) + "?fieldManager=bench&force=true"
        return ("PATCH", path, APPLY_HEADERS, body)

    return make


def gadget_updates(namespace: str, objects: int, offset: int) -> loadgen.RequestFactory:
    """PUT Gadget ``i % objects`` with revision ``offset + i``."""

    def make(i: int) -> loadgen.Request:
        name = f"g{i % objects}"
        body = orjson.dumps(gadget(name, offset + i))
        return ("PUT", _gadget_path(namespace, name), JSON_HEADERS, body)

    return make


def validated_body(plural: str, kind: str, name: str) -> dict[str, Any]:
    """The 200-field body every rule accepts, as a ``kind`` object."""
    spec = {f"f{i:03d}": _field_value(i) for i in range(FIELDS)}
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def creates(namespace: str, plural: str, kind: str, prefix: str) -> loadgen.RequestFactory:
    """POST a fresh ``kind`` each call, named ``<prefix>-<n>`` from a counter (so the warm-up
    and the cell never collide; give each cell its own prefix)."""
    counter = itertools.count()
    path = f"/apis/{GROUP}/v1/namespaces/{namespace}/{plural}"
    template = validated_body(plural, kind, "x")

    def make(_: int) -> loadgen.Request:
        template["metadata"]["name"] = f"{prefix}-{next(counter)}"
        return ("POST", path, JSON_HEADERS, orjson.dumps(template))

    return make


def list_path(namespace: str, plural: str) -> str:
    return f"/apis/{GROUP}/v1/namespaces/{namespace}/{plural}"
