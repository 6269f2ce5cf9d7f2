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
from kajitori.server import openapi_v2

_REF = "#/$defs/"
_V3_REF = "#/components/schemas/"
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _convert(node: Any, ref: str = _V3_REF) -> Any:
    """A kubernetes-validate schema node in upstream's OpenAPI v3 form (v2 with ``ref``).

    In v3 a reference with siblings (a field's description) becomes
    ``allOf: [{$ref}]`` beside them, as upstream publishes it: OpenAPI 3.0
    ignores a ``$ref``'s siblings, and ``kubectl explain`` shows the
    field's description from there.
    """
    if isinstance(node, list):
        return [_convert(x, ref) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
            out["$ref"] = ref + value[len(_REF) :]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if types:
                out["type"] = types[0]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        else:
            out[key] = _convert(value, ref)
    # (A "$ref" holding a schema is a property named "$ref", as in JSONSchemaProps.)
    if ref == _V3_REF and isinstance(out.get("$ref"), str) and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
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


def _closure(names: Iterable[str], defs: dict[str, Any] | None = None) -> list[str]:
    defs = definitions.definitions() if defs is None else defs
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


def _top_level(name: str, defs: dict[str, Any] | None = None, ref: str = _V3_REF) -> dict[str, Any]:
    """A kind's schema; upstream has no enum on apiVersion/kind (the validator adds one)."""
    defs = definitions.definitions() if defs is None else defs
    schema: dict[str, Any] = _convert(defs[name], ref)
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


def _served_definitions(
    resources: Iterable[ResourceInfo],
) -> tuple[list[tuple[ResourceInfo, str]], dict[str, Any]]:
    """The kinds with a schema, by definition name, and every definition they may reach.

    An older served version (``ResourceInfo.conversion``) brings its own
    definitions; the others are upstream's 1.37 ones.
    """
    defs = definitions.definitions()
    kinds: list[tuple[ResourceInfo, str]] = []
    for info in resources:
        name = definitions.definition_name(info.group, info.version, info.kind)
        if name is None and info.conversion is not None:
            own = info.conversion.definitions()
            defs = {**defs, **own}
            name = next((n for n in own if _has_gvk(own[n], info)), None)
        if name is not None:
            kinds.append((info, name))
    return kinds, defs


def _has_gvk(node: dict[str, Any], info: ResourceInfo) -> bool:
    want = {"group": info.group, "version": info.version, "kind": info.kind}
    return want in node.get("x-kubernetes-group-version-kind", ())


def _schemas(resources: Iterable[ResourceInfo], ref: str) -> tuple[list[Any], dict[str, Any]]:
    """(kinds, schemas): the definitions the kinds reach, in the dialect of ``ref``."""
    kinds, defs = _served_definitions(resources)
    extra = (
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.api.autoscaling.v1.Scale",
    )
    wanted = _closure([n for _, n in kinds] + [f"{n}List" for _, n in kinds] + list(extra), defs)
    top = {n for _, n in kinds}
    schemas = {
        n: (_top_level(n, defs, ref) if n in top else _convert(defs[n], ref)) for n in wanted
    }
    return kinds, schemas


def build_document(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    kinds, schemas = _schemas(resources, _V3_REF)
    paths: dict[str, Any] = {}
    for info, name in kinds:
        paths.update(_paths(info, name))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


_V2_REF = "#/definitions/"


def _v2_operation(info: ResourceInfo, verb: str, name: str) -> dict[str, Any]:
    params = [
        {"name": p, "in": "query", "type": "string", "uniqueItems": True} for p in _WRITE_PARAMS
    ]
    return {
        "operationId": f"{verb}{info.kind}",
        "consumes": ["*/*"],
        "produces": ["application/json", "application/yaml"],
        "parameters": params,
        "responses": {"200": {"description": "OK", "schema": {"$ref": _V2_REF + name}}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {
            "group": info.group,
            "version": info.version,
            "kind": info.kind,
        },
    }


def build_v2_document(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """``/openapi/v2``: every served kind in one Swagger 2.0 document (upstream's dialect)."""
    kinds, schemas = _schemas(resources, _V2_REF)
    paths: dict[str, Any] = {}
    for info, name in kinds:
        for path, operations in _paths(info, name).items():
            paths[path] = {verb: _v2_operation(info, verb, name) for verb in operations}
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "definitions": schemas,
    }


class OpenAPIV2:
    """``/openapi/v2`` as JSON or protobuf, built on first request and kept (it never changes)."""

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._resources = list(resources)
        self._document: bytes | None = None
        self._protobuf: bytes | None = None

    def document(self) -> bytes:
        if self._document is None:
            self._document = orjson.dumps(build_v2_document(self._resources))
        return self._document

    def protobuf(self) -> bytes:
        """The same document as gnostic's ``openapi.v2.Document`` (``server.openapi_v2``)."""
        if self._protobuf is None:
            self._protobuf = openapi_v2.encode_document(orjson.loads(self.document()))
        return self._protobuf


class OpenAPIV3:
    """Serves the discovery index and the per group-version documents."""

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._by_gv: dict[str, list[ResourceInfo]] = {}
        # Custom resources' documents, set and removed at run time by the CRD
        # controller (built from the CRD's schemas, not from api.definitions).
        self._custom: dict[str, bytes] = {}
        for info in resources:
            self._by_gv.setdefault(gv_path(info.group, info.version), []).append(info)

    def set_custom_document(self, path: str, document: dict[str, Any] | None) -> None:
        """Serve ``document`` at ``/openapi/v3/<path>`` (None: stop serving it)."""
        if document is None:
            self._custom.pop(path, None)
        else:
            self._custom[path] = orjson.dumps(document)

    def document(self, path: str) -> bytes | None:
        custom = self._custom.get(path)
        return custom if custom is not None else self._builtin_document(path)

    @functools.cache  # noqa: B019 - one instance per server, documents never change
    def _builtin_document(self, path: str) -> bytes | None:
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
                for gv in [*self._by_gv, *self._custom]
            }
        }


def custom_definition_name(group: str, version: str, kind: str) -> str:
    """Upstream's name for a CRD schema: the reversed group, the version and the kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


def build_custom_document(entries: Iterable[tuple[ResourceInfo, dict[str, Any]]]) -> dict[str, Any]:
    """One CRD group version's document from (resource, openAPIV3Schema) pairs."""
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1."
    wanted = _closure(
        [f"{meta}ObjectMeta", f"{meta}ListMeta", f"{meta}Status", f"{meta}DeleteOptions"]
    )
    defs = definitions.definitions()
    schemas: dict[str, Any] = {n: _convert(defs[n]) for n in wanted}
    paths: dict[str, Any] = {}
    for info, schema in entries:
        name = custom_definition_name(info.group, info.version, info.kind)
        gvk = {"group": info.group, "version": info.version, "kind": info.kind}
        top = dict(schema)
        props = dict(top.get("properties") or {})
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
        props["metadata"] = {"$ref": f"{_V3_REF}{meta}ObjectMeta"}
        top["properties"] = props
        top["x-kubernetes-group-version-kind"] = [gvk]
        schemas[name] = top
        schemas[f"{name}List"] = {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "items": {"type": "array", "items": {"$ref": _V3_REF + name}},
                "metadata": {"$ref": f"{_V3_REF}{meta}ListMeta"},
            },
            "x-kubernetes-group-version-kind": [{**gvk, "kind": f"{info.kind}List"}],
        }
        paths.update(_paths(info, name))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
