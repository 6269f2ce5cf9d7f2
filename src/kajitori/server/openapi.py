"""OpenAPI v3: ``/openapi/v3`` and one document per served group version.

kubectl reads these to validate manifests client-side, to compute
strategic merge patches in ``apply`` and for ``explain``; it also checks a
resource's PATCH operation for the ``fieldValidation`` parameter to decide
that the server validates fields itself. Documents are built from the same
1.37 definitions the server validates with (``api.definitions``), restricted
to the schemas each group version's kinds reach, and rendered in upstream's
OpenAPI v3 dialect (``#/components/schemas`` refs, no JSON-schema null
types). Each document is built once and served with its content hash, as
upstream's ``serverRelativeURL?hash=...`` so clients can cache it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from kajitori.api import definitions
from kajitori.registry.resource import ResourceInfo

_REF = "#/$defs/"
_V3_REF = "#/components/schemas/"
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _convert(node: Any) -> Any:
    """A kubernetes-validate schema node in upstream's OpenAPI v3 form."""
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
            out["$ref"] = _V3_REF + value[len(_REF) :]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                out["type"] = types[0]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        else:
            out[key] = _convert(value)
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref[len(_REF) :])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _closure(names: Iterable[str]) -> list[str]:
    defs = definitions.definitions()
    todo = [n for n in names if n in defs]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(n for n in found if n not in seen and n in defs)
    return sorted(seen)


def _top_level(name: str) -> dict[str, Any]:
    """A kind's schema; upstream has no enum on apiVersion/kind (the validator adds one)."""
    schema: dict[str, Any] = _convert(definitions.definitions()[name])
    props = schema.get("properties", {})
    for key in ("apiVersion", "kind"):
        if isinstance(props.get(key), dict):
            props[key] = {k: v for k, v in props[key].items() if k != "enum"}
    return schema


def _operation(info: ResourceInfo, verb: str, name: str) -> dict[str, Any]:
    params = [
        {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for p in _WRITE_PARAMS
    ]
    return {
        "operationId": f"{verb}{info.kind}",
        "parameters": params,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": _V3_REF + name}}},
            }
        },
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {
            "group": info.group,
            "version": info.version,
            "kind": info.kind,
        },
    }


def _paths(info: ResourceInfo, name: str) -> dict[str, Any]:
    base = f"/{gv_path(info.group, info.version)}"
    collection = (
        f"{base}/namespaces/{{namespace}}/{info.plural}"
        if info.namespaced
        else f"{base}/{info.plural}"
    )
    return {
        collection: {"post": _operation(info, "post", name)},
        f"{collection}/{{name}}": {
            "put": _operation(info, "put", name),
            "patch": _operation(info, "patch", name),
        },
    }


def build_document(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    kinds: list[tuple[ResourceInfo, str]] = []
    for info in resources:
        name = definitions.definition_name(info.group, info.version, info.kind)
        if name is not None:
            kinds.append((info, name))
    extra = (
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.api.autoscaling.v1.Scale",
    )
    wanted = _closure([n for _, n in kinds] + [f"{n}List" for _, n in kinds] + list(extra))
    top = {n for _, n in kinds}
    defs = definitions.definitions()
    schemas = {n: (_top_level(n) if n in top else _convert(defs[n])) for n in wanted}
    paths: dict[str, Any] = {}
    for info, name in kinds:
        paths.update(_paths(info, name))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


class OpenAPIV3:
    """Serves the discovery index and the per group-version documents."""

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._by_gv: dict[str, list[ResourceInfo]] = {}
        for info in resources:
            self._by_gv.setdefault(gv_path(info.group, info.version), []).append(info)

    @functools.cache  # noqa: B019 - one instance per server, documents never change
    def document(self, path: str) -> bytes | None:
        resources = self._by_gv.get(path)
        if resources is None:
            return None
        return orjson.dumps(build_document(resources))

    def content_hash(self, path: str) -> str:
        data = self.document(path) or b""
        return hashlib.sha512(data).hexdigest().upper()

    def index(self) -> dict[str, Any]:
        return {
            "paths": {
                gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={self.content_hash(gv)}"}
                for gv in self._by_gv
            }
        }
