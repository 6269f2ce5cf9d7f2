"""Cell formatting shared by the server-side tables of workload kinds.

Owns upstream's printer helpers that several resources use (printers.go:
``layoutContainerCells``, ``LabelSelector.String``/``FormatLabelSelector``,
``labels.FormatLabels``, ``listWithMoreString``)
and ``doc``, which reads column descriptions from the OpenAPI definitions as
upstream reads them from SwaggerDoc. They live in the api layer because
registry resource modules may not import each other.
"""

from __future__ import annotations

from typing import Any

from kajitori.api import definitions

Object = dict[str, Any]

CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


def doc(definition: str, prop: str) -> str:
    """The description of ``prop`` in definition ``definition`` (full OpenAPI name)."""
    node = definitions.definitions().get(definition, {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


def container_cells(pod_spec: Any) -> tuple[str, str]:
    """(names, images) of the containers, comma-joined (``layoutContainerCells``)."""
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    items = [c for c in containers or [] if isinstance(c, dict)]
    return ",".join(str(c.get("name", "")) for c in items), ",".join(
        str(c.get("image", "")) for c in items
    )


def _requirement(req: Object) -> tuple[str, str]:
    key = str(req.get("key", ""))
    operator = req.get("operator")
    values = ",".join(sorted(str(v) for v in req.get("values") or []))
    if operator == "In":
        return key, f"{key} in ({values})"
    if operator == "NotIn":
        return key, f"{key} notin ({values})"
    if operator == "Exists":
        return key, key
    return key, f"!{key}"


def selector_string(selector: Any) -> str:
    """``LabelSelectorAsSelector(s).String()``: requirements sorted by key; "" for none."""
    if not isinstance(selector, dict):
        return ""
    parts = [(str(k), f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    parts.extend(
        _requirement(r) for r in selector.get("matchExpressions") or [] if isinstance(r, dict)
    )
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: like ``selector_string`` but "<none>" when empty."""
    return selector_string(selector) or "<none>"


def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: "k=v,..." sorted by key, "<none>" when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def list_with_more(items: list[str], *, more: bool, count: int, limit: int) -> str:
    """``listWithMoreString``: "a,b,c + 2 more..." or "<unset>" when empty."""
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"
