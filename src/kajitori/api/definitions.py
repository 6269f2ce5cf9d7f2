"""The upstream 1.37 OpenAPI type definitions, loaded once from ``kubernetes-validate``.

``kubernetes-validate`` ships upstream's definitions as JSON schema
(``_definitions.json``, keyed like ``io.k8s.api.core.v1.Pod``). We use them as
the API's type data instead of hand-written schemas: field types, patch merge
keys, list types, descriptions for OpenAPI. See docs/decisions/0003.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from typing import Any

import orjson

from kajitori.machinery.schema import SchemaNode

KUBERNETES_VERSION = "1.37.0"


@functools.cache
def definitions() -> dict[str, Any]:
    """All definitions by name (loaded and parsed once per process)."""
    # Locate the package's data without importing it: its __init__ pulls in
    # jsonschema, which would cost tens of milliseconds at every start.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is not installed")
    root = pathlib.Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    path = root / f"v{KUBERNETES_VERSION}-local" / "_definitions.json"
    defs: dict[str, Any] = orjson.loads(path.read_bytes())["$defs"]
    return defs


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, node in definitions().items():
        for gvk in node.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition name for a kind, e.g. ("apps", "v1", "Deployment")."""
    return _gvk_index().get((group, version, kind))


@functools.cache
def schema_for(group: str, version: str, kind: str) -> SchemaNode | None:
    """The schema of a whole object of this kind, or None if upstream has none.

    Cached: the returned node memoises its navigation, so keep one per kind.
    """
    name = definition_name(group, version, kind)
    return None if name is None else SchemaNode.for_definition(definitions(), name)
