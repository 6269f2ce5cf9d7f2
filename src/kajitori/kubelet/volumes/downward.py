"""Downward API values: a pod's fields and a container's resources as strings.

As upstream's fieldpath.ExtractFieldPathAsString and
resource.ExtractContainerResourceValue: ``metadata.labels`` and
``metadata.annotations`` (whole maps, volumes only) are ``key="value"``
lines in key order; a resource is rounded *up* to a whole number of
``divisor`` (default 1); a limit the container does not set is the node's
allocatable, as upstream's MergeContainerResourceLimits.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from kajitori.machinery import quantity

Object = dict[str, Any]

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def format_map(values: dict[str, str]) -> str:
    """``key="value"`` lines sorted by key, no trailing newline (upstream's FormatMap)."""
    return "\n".join(f"{key}={json.dumps(values[key])}" for key in sorted(values))


def field_value(pod: Object, path: str) -> str:
    """The value of ``fieldRef.fieldPath`` for ``pod``; ``ValueError`` when unsupported."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": lambda: meta.get("name"),
        "metadata.namespace": lambda: meta.get("namespace"),
        "metadata.uid": lambda: meta.get("uid"),
        "metadata.labels": lambda: format_map(meta.get("labels") or {}),
        "metadata.annotations": lambda: format_map(meta.get("annotations") or {}),
        "spec.nodeName": lambda: spec.get("nodeName"),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName"),
        "status.hostIP": lambda: status.get("hostIP"),
        "status.hostIPs": lambda: ",".join(i.get("ip", "") for i in status.get("hostIPs") or ()),
        "status.podIP": lambda: status.get("podIP"),
        "status.podIPs": lambda: ",".join(i.get("ip", "") for i in status.get("podIPs") or ()),
    }
    if path not in simple:
        raise ValueError(f"unsupported fieldPath: {path}")
    return str(simple[path]() or "")


def container_named(pod: Object, name: str) -> Object | None:
    spec = pod.get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if container.get("name") == name:
            return container
    return None


def resource_value(ref: Object, container: Object, allocatable: Object | None = None) -> str:
    """``resourceFieldRef`` of ``container`` as upstream writes it."""
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    wanted = container.get("resources") or {}
    if kind not in ("limits", "requests") or not name:
        raise ValueError(f"unsupported container resource: {resource}")
    raw = (wanted.get(kind) or {}).get(name)
    if raw is None and kind == "limits":
        raw = (allocatable or {}).get(name)
    amount = quantity.parse_quantity(str(raw if raw is not None else 0))
    divisor = quantity.parse_quantity(str(ref.get("divisor") or "1"))
    if divisor.is_zero:
        raise ValueError(f"invalid divisor for {resource}: 0")
    if name == "cpu":
        return str(math.ceil(amount.milli_value() / divisor.milli_value()))
    return str(math.ceil(amount.value() / divisor.value()))
