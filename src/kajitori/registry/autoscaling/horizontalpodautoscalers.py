"""HorizontalPodAutoscalers in the API server (upstream: pkg/registry/autoscaling/horizontalpodautoscaler).

Stored and preferred as autoscaling/v2; ``horizontalpodautoscalers_v1``
serves the same objects as autoscaling/v1. Owns: status is written only
through ``horizontalpodautoscalers/status`` (by the HPA controller);
generation counts spec changes (upstream's HPAGeneration gate, on by default);
the ``kubectl get hpa`` columns (NAME REFERENCE TARGETS MINPODS MAXPODS
REPLICAS AGE), TARGETS as upstream's printer words it (``cpu: <unknown>/50%``
until a current metric is known, at most two metrics then "+ N more...").
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import orjson

from kajitori.api import definitions
from kajitori.api.autoscaling_v1 import conversion
from kajitori.api.autoscaling_v2 import defaults, validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class HorizontalPodAutoscalerStrategy(strategies.SpecWithStatusStrategy):
    """Create/update rules for ``autoscaling/v2 horizontalpodautoscalers``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_horizontal_pod_autoscaler(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_horizontal_pod_autoscaler(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_horizontal_pod_autoscaler_update(obj, old)

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        # Upstream compares spec only (metadata-only and status changes never bump).
        return obj.get("spec") != old.get("spec")


class HorizontalPodAutoscalerStatusStrategy(strategies.StatusStrategy):
    """``horizontalpodautoscalers/status``: only status changes; replica counts are non-negative."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_horizontal_pod_autoscaler_status_update(obj, old)


def _description(type_name: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.autoscaling.v2.{type_name}", {})
    text: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return text


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Reference", description=_description("HorizontalPodAutoscalerSpec", "scaleTargetRef")
    ),
    tables.Column("Targets", description=_description("HorizontalPodAutoscalerSpec", "metrics")),
    tables.Column(
        "MinPods", description=_description("HorizontalPodAutoscalerSpec", "minReplicas")
    ),
    tables.Column(
        "MaxPods", description=_description("HorizontalPodAutoscalerSpec", "maxReplicas")
    ),
    tables.Column(
        "Replicas", description=_description("HorizontalPodAutoscalerStatus", "currentReplicas")
    ),
    tables.AGE_COLUMN,
)

_MAX_SHOWN_METRICS = 2
_UNKNOWN = "<unknown>"


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _quantity(value: Any) -> str:
    # A nil *Quantity prints as "<nil>" in upstream's fmt.Sprintf("%s").
    return "<nil>" if value is None else str(value)


def _current(statuses: list[Any], i: int, key: str) -> Object | None:
    """``statuses[i].<key>.current`` when that status exists (upstream matches by index)."""
    if i < len(statuses) and isinstance(statuses[i], dict) and statuses[i].get(key) is not None:
        return _dict(_dict(statuses[i][key]).get("current"))
    return None


def _value_target(spec: Object, current: Object | None) -> str:
    """Object and External metrics: an average value target or a plain value target."""
    target = _dict(spec.get("target"))
    if target.get("averageValue") is not None:
        now = _UNKNOWN
        if current is not None and current.get("averageValue") is not None:
            now = str(current["averageValue"])
        return f"{now}/{target['averageValue']} (avg)"
    now = _UNKNOWN if current is None else _quantity(current.get("value"))
    return f"{now}/{_quantity(target.get('value'))}"


def _resource_target(spec: Object, current: Object | None) -> str:
    """Resource and ContainerResource metrics: ``<name>: <current>/<target>``."""
    target = _dict(spec.get("target"))
    name = spec.get("name", "")
    if target.get("averageValue") is not None:
        now = _UNKNOWN if current is None else _quantity(current.get("averageValue"))
        return f"{name}: {now}/{target['averageValue']}"
    now = _UNKNOWN
    if current is not None and current.get("averageUtilization") is not None:
        now = f"{current['averageUtilization']}%"
    utilization = target.get("averageUtilization")
    wanted = "<auto>" if utilization is None else f"{utilization}%"
    return f"{name}: {now}/{wanted}"


def format_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """The TARGETS cell (upstream's formatHPAMetrics)."""
    if not specs:
        return "<none>"
    cells: list[str] = []
    for i, spec in enumerate(specs):
        spec = _dict(spec)
        kind = spec.get("type")
        key = {"ContainerResource": "containerResource"}.get(str(kind), str(kind).lower())
        source = _dict(spec.get(key))
        current = _current(statuses, i, key)
        if kind in ("External", "Object"):
            cells.append(_value_target(source, current))
        elif kind == "Pods":
            now = _UNKNOWN if current is None else _quantity(current.get("averageValue"))
            cells.append(f"{now}/{_quantity(_dict(source.get('target')).get('averageValue'))}")
        elif kind in ("Resource", "ContainerResource"):
            cells.append(_resource_target(source, current))
        else:
            cells.append("<unknown type>")
    if len(cells) > _MAX_SHOWN_METRICS:
        more = len(cells) - _MAX_SHOWN_METRICS
        return f"{', '.join(cells[:_MAX_SHOWN_METRICS])} + {more} more..."
    return ", ".join(cells)


def horizontal_pod_autoscaler_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    if obj.get("apiVersion") == conversion.API_VERSION:
        # An autoscaling/v1 response: upstream prints from its internal (v2-shaped) type.
        obj = conversion.upgrade(orjson.loads(orjson.dumps(obj)), defaults=False)
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    ref = _dict(spec.get("scaleTargetRef"))
    min_replicas = spec.get("minReplicas")
    return [
        tables.name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        format_metrics(list(spec.get("metrics") or ()), list(status.get("currentMetrics") or ())),
        "<unset>" if min_replicas is None else str(min_replicas),
        int(spec.get("maxReplicas") or 0),
        int(status.get("currentReplicas") or 0),
        tables.age(obj, now),
    ]


STRATEGY = HorizontalPodAutoscalerStrategy()

RESOURCE = resource.ResourceInfo(
    group="autoscaling",
    version="v2",
    kind="HorizontalPodAutoscaler",
    plural="horizontalpodautoscalers",
    namespaced=True,
    short_names=("hpa",),
    categories=("all",),
    strategy=STRATEGY,
    status=HorizontalPodAutoscalerStatusStrategy(STRATEGY),
    table=tables.Table(columns=COLUMNS, row=horizontal_pod_autoscaler_row),
    tracks_generation=True,
)
