"""autoscaling/v1 HorizontalPodAutoscalers over the stored autoscaling/v2 form.

autoscaling/v1 knows one target, ``targetCPUUtilizationPercentage``; upstream
stores autoscaling/v2 and converts, as we do (upstream:
pkg/apis/autoscaling/v1/conversion.go):

- v1 -> v2: the v1 default (``minReplicas`` 1), the CPU target as a Resource
  ``cpu`` Utilization metric, the implicit 80% CPU target when no metric is
  given at all, ``currentCPUUtilizationPercentage`` as a current metric.
- v2 -> v1: the first ``cpu`` Resource metric with a utilization target gives
  ``targetCPUUtilizationPercentage``; the current CPU utilization likewise.

What v1 has no field for travels in upstream's annotations, in autoscaling/v1's
metric shapes (``targetAverageValue`` ..., the v2beta1 layout): the other
metrics (``autoscaling.alpha.kubernetes.io/metrics``), every current metric
(``.../current-metrics``) and the conditions (``.../conditions``); a v1 write
turns them back into fields and drops the annotations. ``spec.behavior`` has
no v1 form and is not carried, as upstream: a v1 update drops it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from kajitori.api.autoscaling_v2 import defaults as v2_defaults

Object = dict[str, Any]

API_VERSION = "autoscaling/v1"
STORAGE_API_VERSION = "autoscaling/v2"
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"

_ZERO = "0"  # a Go resource.Quantity's zero value, encoded


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _put(out: Object, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is None (Go's omitempty on a pointer)."""
    if value is not None:
        out[key] = value


def _ref_to_v1(ref: Any) -> Object:
    ref = _dict(ref)
    out: Object = {"kind": ref.get("kind", ""), "name": ref.get("name", "")}
    if ref.get("apiVersion"):
        out["apiVersion"] = ref["apiVersion"]
    return out


def set_defaults_horizontal_pod_autoscaler(obj: Object) -> None:
    """autoscaling/v1's only default: ``minReplicas`` 1."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if isinstance(spec, dict) and spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


# --- metric specs ---------------------------------------------------------------------


def _spec_to_v1(metric: Object) -> Object:
    out: Object = {"type": metric.get("type", "")}
    source = _dict(metric.get(_source_key(metric)))
    target = _dict(source.get("target"))
    metric_id = _dict(source.get("metric"))
    kind = metric.get("type")
    if kind == "Object" and "object" in metric:
        obj: Object = {
            "target": _ref_to_v1(source.get("describedObject")),
            "metricName": metric_id.get("name", ""),
            "targetValue": target.get("value") or _ZERO,
        }
        _put(obj, "selector", metric_id.get("selector"))
        _put(obj, "averageValue", target.get("averageValue"))
        out["object"] = obj
    elif kind == "Pods" and "pods" in metric:
        pods: Object = {
            "metricName": metric_id.get("name", ""),
            "targetAverageValue": target.get("averageValue") or _ZERO,
        }
        _put(pods, "selector", metric_id.get("selector"))
        out["pods"] = pods
    elif kind in ("Resource", "ContainerResource") and _source_key(metric) in metric:
        res: Object = {"name": source.get("name", "")}
        _put(res, "targetAverageUtilization", target.get("averageUtilization"))
        _put(res, "targetAverageValue", target.get("averageValue"))
        if kind == "ContainerResource":
            res["container"] = source.get("container", "")
        out[_source_key(metric)] = res
    elif kind == "External" and "external" in metric:
        ext: Object = {"metricName": metric_id.get("name", "")}
        _put(ext, "metricSelector", metric_id.get("selector"))
        _put(ext, "targetValue", target.get("value"))
        _put(ext, "targetAverageValue", target.get("averageValue"))
        out["external"] = ext
    return out


def _metric_id(name: Any, selector: Any) -> Object:
    out: Object = {"name": name or ""}
    _put(out, "selector", selector)
    return out


def _spec_from_v1(metric: Object) -> Object:
    kind = metric.get("type", "")
    out: Object = {"type": kind}
    source = _dict(metric.get(_source_key(metric)))
    if kind == "Object" and source:
        average = source.get("averageValue")
        target: Object = {"type": "Value" if average is None else "AverageValue"}
        target["value"] = source.get("targetValue") or _ZERO
        _put(target, "averageValue", average)
        out["object"] = {
            "describedObject": _ref_to_v1(source.get("target")),
            "target": target,
            "metric": _metric_id(source.get("metricName"), source.get("selector")),
        }
    elif kind == "Pods" and source:
        out["pods"] = {
            "metric": _metric_id(source.get("metricName"), source.get("selector")),
            "target": {
                "type": "AverageValue",
                "averageValue": source.get("targetAverageValue") or _ZERO,
            },
        }
    elif kind in ("Resource", "ContainerResource") and source:
        utilization = source.get("targetAverageUtilization")
        target = {"type": "AverageValue" if utilization is None else "Utilization"}
        _put(target, "averageUtilization", utilization)
        _put(target, "averageValue", source.get("targetAverageValue"))
        res: Object = {"name": source.get("name", ""), "target": target}
        if kind == "ContainerResource":
            res["container"] = source.get("container", "")
        out[_source_key(metric)] = res
    elif kind == "External" and source:
        average = source.get("targetAverageValue")
        target = {"type": "Value" if average is None else "AverageValue"}
        _put(target, "value", source.get("targetValue"))
        _put(target, "averageValue", average)
        out["external"] = {
            "metric": _metric_id(source.get("metricName"), source.get("metricSelector")),
            "target": target,
        }
    return out


# --- metric statuses ------------------------------------------------------------------


def _status_to_v1(metric: Object) -> Object:
    kind = metric.get("type", "")
    out: Object = {"type": kind}
    source = _dict(metric.get(_source_key(metric)))
    current = _dict(source.get("current"))
    metric_id = _dict(source.get("metric"))
    if kind == "Object" and source:
        obj: Object = {
            "target": _ref_to_v1(source.get("describedObject")),
            "metricName": metric_id.get("name", ""),
            "currentValue": current.get("value") or _ZERO,
        }
        _put(obj, "selector", metric_id.get("selector"))
        _put(obj, "averageValue", current.get("averageValue"))
        out["object"] = obj
    elif kind == "Pods" and source:
        pods: Object = {
            "metricName": metric_id.get("name", ""),
            "currentAverageValue": current.get("averageValue") or _ZERO,
        }
        _put(pods, "selector", metric_id.get("selector"))
        out["pods"] = pods
    elif kind in ("Resource", "ContainerResource") and source:
        res: Object = {"name": source.get("name", "")}
        _put(res, "currentAverageUtilization", current.get("averageUtilization"))
        res["currentAverageValue"] = current.get("averageValue") or _ZERO
        if kind == "ContainerResource":
            res["container"] = source.get("container", "")
        out[_source_key(metric)] = res
    elif kind == "External" and source:
        ext: Object = {"metricName": metric_id.get("name", "")}
        _put(ext, "metricSelector", metric_id.get("selector"))
        ext["currentValue"] = current.get("value") or _ZERO
        _put(ext, "currentAverageValue", current.get("averageValue"))
        out["external"] = ext
    return out


def _status_from_v1(metric: Object) -> Object:
    kind = metric.get("type", "")
    out: Object = {"type": kind}
    source = _dict(metric.get(_source_key(metric)))
    if kind == "Object" and source:
        current: Object = {"value": source.get("currentValue") or _ZERO}
        _put(current, "averageValue", source.get("averageValue"))
        out["object"] = {
            "metric": _metric_id(source.get("metricName"), source.get("selector")),
            "current": current,
            "describedObject": _ref_to_v1(source.get("target")),
        }
    elif kind == "Pods" and source:
        out["pods"] = {
            "metric": _metric_id(source.get("metricName"), source.get("selector")),
            "current": {"averageValue": source.get("currentAverageValue") or _ZERO},
        }
    elif kind in ("Resource", "ContainerResource") and source:
        current = {"averageValue": source.get("currentAverageValue") or _ZERO}
        _put(current, "averageUtilization", source.get("currentAverageUtilization"))
        res: Object = {"name": source.get("name", ""), "current": current}
        if kind == "ContainerResource":
            res["container"] = source.get("container", "")
        out[_source_key(metric)] = res
    elif kind == "External" and source:
        current = {"value": source.get("currentValue") or _ZERO}
        _put(current, "averageValue", source.get("currentAverageValue"))
        out["external"] = {
            "metric": _metric_id(source.get("metricName"), source.get("metricSelector")),
            "current": current,
        }
    return out


def _source_key(metric: Object) -> str:
    kind = str(metric.get("type") or "")
    return "containerResource" if kind == "ContainerResource" else kind.lower()


def _is_cpu_utilization(metric: Any) -> bool:
    metric = _dict(metric)
    resource = _dict(metric.get("resource"))
    return (
        metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and _dict(resource.get("target")).get("averageUtilization") is not None
    )


# --- whole objects --------------------------------------------------------------------


def _decode_list(annotations: Object, key: str, convert: Callable[[Object], Object]) -> Any:
    """The list an annotation carries, converted item by item; None when absent or not a list."""
    raw = annotations.pop(key, None)
    if not isinstance(raw, str):
        return None
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(items, list):
        return None
    return [convert(item) for item in items if isinstance(item, dict)]


def _identity(item: Object) -> Object:
    return item


def upgrade(obj: Object, *, defaults: bool = True) -> Object:
    """A decoded autoscaling/v1 body as autoscaling/v2 (in place when possible)."""
    obj["apiVersion"] = STORAGE_API_VERSION
    if defaults:
        set_defaults_horizontal_pod_autoscaler(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj  # left for the decoder to reject
    meta = obj.get("metadata")
    annotations = _dict(meta.get("annotations")) if isinstance(meta, dict) else {}
    new_spec: Object = {}
    for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
        if key in spec:
            new_spec[key] = spec[key]
    metrics: list[Object] = []
    target_cpu = spec.get("targetCPUUtilizationPercentage")
    if target_cpu is not None:
        metrics.append(v2_defaults.default_cpu_metric(target_cpu))
    others = _decode_list(annotations, METRICS_ANNOTATION, _spec_from_v1)
    if others is not None:
        metrics = others + metrics
    if metrics:
        new_spec["metrics"] = metrics
    elif defaults:
        new_spec["metrics"] = [v2_defaults.default_cpu_metric()]
    obj["spec"] = new_spec
    _upgrade_status(obj, annotations)
    if isinstance(meta, dict) and "annotations" in meta and not annotations:
        meta.pop("annotations")
    return obj


def _upgrade_status(obj: Object, annotations: Object) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    out: Object = {}
    for key in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"):
        if key in status:
            out[key] = status[key]
    current_cpu = status.get("currentCPUUtilizationPercentage")
    if current_cpu is not None:
        out["currentMetrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": current_cpu}},
            }
        ]
    current = _decode_list(annotations, CURRENT_METRICS_ANNOTATION, _status_from_v1)
    if current is not None:
        out["currentMetrics"] = current
    conditions = _decode_list(annotations, CONDITIONS_ANNOTATION, _identity)
    if conditions is not None:
        out["conditions"] = conditions
    obj["status"] = out


def upgrade_undefaulted(obj: Object) -> Object:
    """``upgrade`` without v1's defaults (a server-side apply configuration)."""
    return upgrade(obj, defaults=False)


def downgrade(obj: Object) -> Object:
    """A stored autoscaling/v2 object as autoscaling/v1 (a new object; ``obj`` is untouched)."""
    src = orjson.loads(orjson.dumps(obj))
    out: Object = {"apiVersion": API_VERSION}
    for key, value in src.items():
        if key not in ("apiVersion", "spec", "status"):
            out[key] = value
    spec = _dict(src.get("spec"))
    status = _dict(src.get("status"))
    metrics = [m for m in spec.get("metrics") or () if isinstance(m, dict)]
    annotations: Object = {}
    others = [_spec_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if others:
        annotations[METRICS_ANNOTATION] = orjson.dumps(others).decode()
    current = [m for m in status.get("currentMetrics") or () if isinstance(m, dict)]
    if current:
        annotations[CURRENT_METRICS_ANNOTATION] = orjson.dumps(
            [_status_to_v1(m) for m in current]
        ).decode()
    conditions = status.get("conditions") or []
    if conditions:
        annotations[CONDITIONS_ANNOTATION] = orjson.dumps(conditions).decode()
    if annotations:
        meta = out.setdefault("metadata", {})
        meta["annotations"] = {**_dict(meta.get("annotations")), **annotations}
    out["spec"] = _downgrade_spec(spec, metrics)
    if "status" in src:
        out["status"] = _downgrade_status(status, current)
    return out


def _downgrade_spec(spec: Object, metrics: list[Object]) -> Object:
    out: Object = {"scaleTargetRef": _ref_to_v1(spec.get("scaleTargetRef"))}
    _put(out, "minReplicas", spec.get("minReplicas"))
    out["maxReplicas"] = spec.get("maxReplicas", 0)
    for metric in metrics:
        resource = _dict(metric.get("resource"))
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            _put(
                out,
                "targetCPUUtilizationPercentage",
                _dict(resource.get("target")).get("averageUtilization"),
            )
            break
    return out


def _downgrade_status(status: Object, current: list[Object]) -> Object:
    out: Object = {}
    for key in ("observedGeneration", "lastScaleTime"):
        _put(out, key, status.get(key))
    # Neither is omitempty in autoscaling/v1 (currentReplicas is in v2).
    out["currentReplicas"] = status.get("currentReplicas", 0)
    out["desiredReplicas"] = status.get("desiredReplicas", 0)
    for metric in current:
        resource = _dict(metric.get("resource"))
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            utilization = _dict(resource.get("current")).get("averageUtilization")
            _put(out, "currentCPUUtilizationPercentage", utilization)
    return out
