"""OpenAPI definitions for the old workload versions, derived from apps/v1's.

The definitions shipped with ``kubernetes-validate`` start at 1.25, after
these versions were removed, so each old kind's schema is its apps/v1
schema under the old name and group-version-kind (upstream's old schemas
differed only in defaults and in the two fields added here:
``DeploymentSpec.rollbackTo`` in apps/v1beta1 and extensions/v1beta1, and
``DaemonSetSpec.templateGeneration`` in extensions/v1beta1). Nested types
(pod template, status, ...) stay shared with apps/v1.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from kajitori.api import definitions as upstream

Object = dict[str, Any]
_REF = "#/$defs/"

_ROLLBACK_CONFIG: Object = {
    "description": "DEPRECATED. RollbackConfig describes the revision to roll back to.",
    "properties": {
        "revision": {
            "description": "The revision to rollback to. If set to 0, rollback to the last revision.",
            "format": "int64",
            "type": ["integer", "null"],
        }
    },
    "type": ["object", "null"],
}

_TEMPLATE_GENERATION: Object = {
    "description": "DEPRECATED. A sequence number representing a specific generation of the "
    "template. Populated by the system. It can be set only during the creation.",
    "format": "int64",
    "type": ["integer", "null"],
}


def definition_prefix(group: str, version: str) -> str:
    return f"io.k8s.api.{group}.{version}."


@functools.cache
def definitions(group: str, version: str, kind: str) -> dict[str, Object]:
    """``kind`` and ``kind``List as ``group/version`` (plus their renamed spec if it differs)."""
    defs = upstream.definitions()
    source = f"io.k8s.api.apps.v1.{kind}"
    prefix = definition_prefix(group, version)
    out: dict[str, Object] = {}
    top = _renamed(defs[source], group, version, kind)
    spec = _spec(group, version, kind)
    if spec is not None:
        out[prefix + kind + "Spec"] = spec
        top["properties"]["spec"]["$ref"] = _REF + prefix + kind + "Spec"
        if kind == "Deployment":
            out[prefix + "RollbackConfig"] = copy.deepcopy(_ROLLBACK_CONFIG)
    out[prefix + kind] = top
    listed = _renamed(defs[source + "List"], group, version, kind + "List")
    listed["properties"]["items"]["items"]["$ref"] = _REF + prefix + kind
    out[prefix + kind + "List"] = listed
    return out


def _renamed(node: Object, group: str, version: str, kind: str) -> Object:
    out = copy.deepcopy(node)
    out["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": kind}]
    props = out.get("properties") or {}
    if isinstance(props.get("apiVersion"), dict) and "enum" in props["apiVersion"]:
        props["apiVersion"]["enum"] = [f"{group}/{version}"]
    return out


def _spec(group: str, version: str, kind: str) -> Object | None:
    """The old version's own spec schema, when it has fields apps/v1 lost."""
    old_deployment = kind == "Deployment" and (group, version) != ("apps", "v1beta2")
    old_daemon_set = kind == "DaemonSet" and group == "extensions"
    if not (old_deployment or old_daemon_set):
        return None
    spec = copy.deepcopy(upstream.definitions()[f"io.k8s.api.apps.v1.{kind}Spec"])
    if old_deployment:
        spec["properties"]["rollbackTo"] = {
            "$ref": _REF + definition_prefix(group, version) + "RollbackConfig",
            "description": "DEPRECATED. The config this deployment is rolling back to. "
            "Will be cleared after rollback is done.",
        }
    else:
        spec["properties"]["templateGeneration"] = copy.deepcopy(_TEMPLATE_GENERATION)
    return spec
