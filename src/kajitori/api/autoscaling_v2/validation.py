"""Validation of HorizontalPodAutoscalers (upstream: pkg/apis/autoscaling/validation).

Owns the replica bounds (``minReplicas`` >= 1, or >= 0 when the HPAScaleToZero
gate is on or the stored object already has 0; ``maxReplicas`` > 0 and >=
``minReplicas``), the ``scaleTargetRef`` and object-metric references (kind and
name are path segments; the target's apiVersion must name an API group except
for ReplicationControllers, and is not re-checked on updates that keep the
kind and apiVersion), each metric source (its ``type`` matches the one source
given, targets are positive) and the ``behavior`` scaling rules. Every message
is upstream's. Objects are in autoscaling/v2 form, which has the field names of
upstream's internal type, so error paths are the ones upstream reports.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1.validation import resourcequotas
from kajitori.machinery import field, names, quantity

Object = dict[str, Any]

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600

# Sorted, as upstream lists its sets.String values.
METRIC_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
SELECT_POLICIES = ("Disabled", "Max", "Min")
POLICY_TYPES = ("Percent", "Pods")
_TARGET_TYPES = ("Utilization", "Value", "AverageValue")
# Metric source type -> the field holding it.
_SOURCE_FIELDS = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}
# The order upstream checks which sources are present.
_PRESENCE_ORDER = ("object", "external", "pods", "resource", "containerResource")


class Options:
    """What a create or update allows (upstream's HorizontalPodAutoscalerSpecValidationOptions)."""

    def __init__(
        self,
        *,
        min_replicas_lower_bound: int = 1,
        target_allow_invalid_api_version: bool = False,
        target_allow_empty_group: bool = False,
        metrics_allow_invalid_api_version: bool = False,
    ) -> None:
        self.min_replicas_lower_bound = min_replicas_lower_bound
        self.target_allow_invalid_api_version = target_allow_invalid_api_version
        self.target_allow_empty_group = target_allow_empty_group
        self.metrics_allow_invalid_api_version = metrics_allow_invalid_api_version


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _sign(value: Any) -> int:
    """A quantity's sign (Quantity.Sign()); 0 when it does not parse (the decoder rejects it)."""
    try:
        number = quantity.parse_quantity(value).number
    except (quantity.QuantityError, TypeError, ValueError):
        return 0
    return (number > 0) - (number < 0)


def _api_version_problem(api_version: str, *, allow_empty_group: bool) -> str | None:
    """upstream's ValidateAPIVersion: a parseable group/version naming an API group."""
    if api_version in ("", "/"):
        group = ""
    elif api_version.count("/") == 0:
        group = ""
    elif api_version.count("/") == 1:
        group = api_version.split("/", 1)[0]
    else:
        return f"unexpected GroupVersion string: {api_version}"
    if not allow_empty_group and not group:
        return "apiVersion must specify API group"
    return None


def validate_cross_version_object_reference(
    ref: Any, path: field.Path, *, allow_invalid_api_version: bool, allow_empty_group: bool
) -> field.ErrorList:
    ref = ref if isinstance(ref, dict) else {}
    errs = field.ErrorList()
    for key in ("kind", "name"):
        value = _str(ref.get(key))
        if not value:
            errs.append(field.required(path.child(key), ""))
        else:
            for detail in names.is_path_segment_name(value):
                errs.append(field.invalid(path.child(key), value, detail))
    if not allow_invalid_api_version:
        api_version = _str(ref.get("apiVersion"))
        problem = _api_version_problem(api_version, allow_empty_group=allow_empty_group)
        if problem is not None:
            errs.append(field.invalid(path.child("apiVersion"), api_version, problem))
    return errs


def _validate_metric_target(target: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    kind = _str(target.get("type"))
    if not kind:
        errs.append(field.required(path.child("type"), "must specify a metric target type"))
    if kind not in _TARGET_TYPES:
        errs.append(
            field.invalid(
                path.child("type"), kind, "must be either Utilization, Value, or AverageValue"
            )
        )
    for key in ("value", "averageValue"):
        value = target.get(key)
        if value is not None and _sign(value) != 1:
            errs.append(field.invalid(path.child(key), value, "must be positive"))
    utilization = _int(target.get("averageUtilization"))
    if utilization is not None and utilization < 1:
        errs.append(
            field.invalid(path.child("averageUtilization"), utilization, "must be greater than 0")
        )
    return errs


def _validate_metric_identifier(metric: Any, path: field.Path) -> field.ErrorList:
    name = _str(metric.get("name")) if isinstance(metric, dict) else ""
    if not name:
        return field.ErrorList([field.required(path.child("name"), "must specify a metric name")])
    return field.ErrorList(
        field.invalid(path.child("name"), name, detail)
        for detail in names.is_path_segment_name(name)
    )


def _target(source: Object) -> Object:
    target = source.get("target")
    return target if isinstance(target, dict) else {}


def _validate_object_source(source: Object, path: field.Path, options: Options) -> field.ErrorList:
    errs = validate_cross_version_object_reference(
        source.get("describedObject"),
        path.child("describedObject"),
        allow_invalid_api_version=options.metrics_allow_invalid_api_version,
        allow_empty_group=True,
    )
    errs.extend(_validate_metric_identifier(source.get("metric"), path.child("metric")))
    target = _target(source)
    errs.extend(_validate_metric_target(target, path.child("target")))
    if target.get("value") is None and target.get("averageValue") is None:
        errs.append(
            field.required(
                path.child("target", "averageValue"),
                "must set either a target value or averageValue",
            )
        )
    return errs


def _validate_external_source(source: Object, path: field.Path) -> field.ErrorList:
    errs = _validate_metric_identifier(source.get("metric"), path.child("metric"))
    target = _target(source)
    errs.extend(_validate_metric_target(target, path.child("target")))
    value, average = target.get("value"), target.get("averageValue")
    if value is None and average is None:
        errs.append(
            field.required(
                path.child("target", "averageValue"),
                "must set either a target value for metric or a per-pod target",
            )
        )
    if value is not None and average is not None:
        errs.append(
            field.forbidden(
                path.child("target", "value"),
                "may not set both a target value for metric and a per-pod target",
            )
        )
    return errs


def _validate_pods_source(source: Object, path: field.Path) -> field.ErrorList:
    errs = _validate_metric_identifier(source.get("metric"), path.child("metric"))
    target = _target(source)
    errs.extend(_validate_metric_target(target, path.child("target")))
    if target.get("averageValue") is None:
        errs.append(
            field.required(
                path.child("target", "averageValue"), "must specify a positive target averageValue"
            )
        )
    return errs


def _validate_utilization_or_value(target: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    utilization, average = target.get("averageUtilization"), target.get("averageValue")
    if utilization is None and average is None:
        errs.append(
            field.required(
                path.child("target", "averageUtilization"),
                "must set either a target raw value or a target utilization",
            )
        )
    if utilization is not None and average is not None:
        errs.append(
            field.forbidden(
                path.child("target", "averageValue"),
                "may not set both a target raw value and a target utilization",
            )
        )
    return errs


def _validate_resource_source(source: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not _str(source.get("name")):
        errs.append(field.required(path.child("name"), "must specify a resource name"))
    target = _target(source)
    errs.extend(_validate_metric_target(target, path.child("target")))
    errs.extend(_validate_utilization_or_value(target, path))
    return errs


def _validate_container_resource_source(source: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    name = _str(source.get("name"))
    if not name:
        errs.append(field.required(path.child("name"), "must specify a resource name"))
    else:
        errs.extend(resourcequotas.validate_container_resource_name(name, path.child("name")))
    container = _str(source.get("container"))
    if not container:
        errs.append(field.required(path.child("container"), "must specify a container"))
    else:
        errs.extend(
            field.invalid(path.child("container"), container, detail)
            for detail in names.is_dns1123_label(container)
        )
    target = _target(source)
    errs.extend(_validate_metric_target(target, path.child("target")))
    errs.extend(_validate_utilization_or_value(target, path))
    return errs


def _validate_source(
    kind: str, source: Object, path: field.Path, options: Options
) -> field.ErrorList:
    if kind == "object":
        return _validate_object_source(source, path, options)
    if kind == "external":
        return _validate_external_source(source, path)
    if kind == "pods":
        return _validate_pods_source(source, path)
    if kind == "resource":
        return _validate_resource_source(source, path)
    return _validate_container_resource_source(source, path)


def _validate_metric_spec(spec: Object, path: field.Path, options: Options) -> field.ErrorList:
    errs = field.ErrorList()
    kind = _str(spec.get("type"))
    if not kind:
        errs.append(field.required(path.child("type"), "must specify a metric source type"))
    if kind not in METRIC_SOURCE_TYPES:
        errs.append(field.not_supported(path.child("type"), kind, METRIC_SOURCE_TYPES))
    present = [key for key in _PRESENCE_ORDER if spec.get(key) is not None]
    # Only the first source given is validated; the others are reported below.
    if present and isinstance(spec[present[0]], dict):
        errs.extend(_validate_source(present[0], spec[present[0]], path.child(present[0]), options))
    expected = _SOURCE_FIELDS.get(kind)
    if expected is None:
        errs.append(field.not_supported(path.child("type"), kind, METRIC_SOURCE_TYPES))
    elif spec.get(expected) is None:
        errs.append(
            field.required(
                path.child(expected), "must populate information for the given metric source"
            )
        )
    if len(present) != 1:
        errs.extend(
            field.forbidden(path.child(key), "must populate the given metric source only")
            for key in present
            if key != expected
        )
    return errs


def _validate_metrics(
    metrics: Any, path: field.Path, min_replicas: int | None, options: Options
) -> field.ErrorList:
    errs = field.ErrorList()
    kinds: set[str] = set()
    for i, spec in enumerate(metrics if isinstance(metrics, list) else []):
        spec = spec if isinstance(spec, dict) else {}
        errs.extend(_validate_metric_spec(spec, path.index(i), options))
        kinds.add(_str(spec.get("type")))
    if min_replicas == 0 and not kinds & {"Object", "External"}:
        errs.append(
            field.forbidden(
                path,
                "must specify at least one Object or External metric to support scaling to zero replicas",
            )
        )
    return errs


def _validate_scaling_policy(policy: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    kind = _str(policy.get("type"))
    if kind not in POLICY_TYPES:
        errs.append(field.not_supported(path.child("type"), kind, POLICY_TYPES))
    value = _int(policy.get("value")) or 0
    if value <= 0:
        errs.append(field.invalid(path.child("value"), value, "must be greater than zero"))
    period = _int(policy.get("periodSeconds")) or 0
    if period <= 0:
        errs.append(field.invalid(path.child("periodSeconds"), period, "must be greater than zero"))
    if period > MAX_PERIOD_SECONDS:
        errs.append(
            field.invalid(
                path.child("periodSeconds"),
                period,
                f"must be less than or equal to {MAX_PERIOD_SECONDS}",
            )
        )
    return errs


def _validate_scaling_rules(rules: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(rules, dict):
        return errs
    window = _int(rules.get("stabilizationWindowSeconds"))
    if window is not None and window < 0:
        errs.append(
            field.invalid(
                path.child("stabilizationWindowSeconds"),
                window,
                "must be greater than or equal to zero",
            )
        )
    if window is not None and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(
            field.invalid(
                path.child("stabilizationWindowSeconds"),
                window,
                f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
            )
        )
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errs.append(field.not_supported(path.child("selectPolicy"), select, SELECT_POLICIES))
    policies = rules.get("policies")
    policies = policies if isinstance(policies, list) else []
    if not policies:
        errs.append(field.required(path.child("policies"), "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        policy = policy if isinstance(policy, dict) else {}
        errs.extend(_validate_scaling_policy(policy, path.child("policies").index(i)))
    tolerance = rules.get("tolerance")
    if tolerance is not None and _sign(tolerance) < 0:
        errs.append(
            field.invalid(path.child("tolerance"), tolerance, "must be greater than or equal to 0")
        )
    return errs


def _validate_behavior(behavior: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if isinstance(behavior, dict):
        errs.extend(_validate_scaling_rules(behavior.get("scaleUp"), path.child("scaleUp")))
        errs.extend(_validate_scaling_rules(behavior.get("scaleDown"), path.child("scaleDown")))
    return errs


def validate_spec(spec: Object, path: field.Path, options: Options) -> field.ErrorList:
    errs = field.ErrorList()
    min_replicas = _int(spec.get("minReplicas"))
    max_replicas = _int(spec.get("maxReplicas")) or 0
    lower = options.min_replicas_lower_bound
    if min_replicas is not None and min_replicas < lower:
        errs.append(
            field.invalid(
                path.child("minReplicas"),
                min_replicas,
                f"must be greater than or equal to {lower}",
            )
        )
    if max_replicas < 1:
        errs.append(
            field.invalid(path.child("maxReplicas"), max_replicas, "must be greater than 0")
        )
    if min_replicas is not None and max_replicas < min_replicas:
        errs.append(
            field.invalid(
                path.child("maxReplicas"),
                max_replicas,
                "must be greater than or equal to `minReplicas`",
            )
        )
    errs.extend(
        validate_cross_version_object_reference(
            spec.get("scaleTargetRef"),
            path.child("scaleTargetRef"),
            allow_invalid_api_version=options.target_allow_invalid_api_version,
            allow_empty_group=options.target_allow_empty_group,
        )
    )
    errs.extend(
        _validate_metrics(spec.get("metrics"), path.child("metrics"), min_replicas, options)
    )
    errs.extend(_validate_behavior(spec.get("behavior"), path.child("behavior")))
    return errs


def _ref(spec: Object) -> Object:
    ref = spec.get("scaleTargetRef")
    return ref if isinstance(ref, dict) else {}


def _object_metric_versions_valid(spec: Object) -> bool:
    for metric in spec.get("metrics") or ():
        if isinstance(metric, dict) and metric.get("type") == "Object":
            source = metric.get("object")
            if isinstance(source, dict):
                described = source.get("describedObject")
                api_version = (
                    _str(described.get("apiVersion")) if isinstance(described, dict) else ""
                )
                if _api_version_problem(api_version, allow_empty_group=True) is not None:
                    return False
    return True


def options_for(new: Object, old: Object | None, *, scale_to_zero: bool = False) -> Options:
    """upstream's validationOptionsForHorizontalPodAutoscaler."""
    new_spec = common.dict_at(new, "spec")
    old_spec = common.dict_at(old, "spec") if old is not None else {}
    lower = 1
    if scale_to_zero or (old is not None and old_spec.get("minReplicas") == 0):
        lower = 0
    new_ref, old_ref = _ref(new_spec), _ref(old_spec)
    keeps_target = (
        old is not None
        and old_ref.get("apiVersion", "") == new_ref.get("apiVersion", "")
        and old_ref.get("kind", "") == new_ref.get("kind", "")
    )
    return Options(
        min_replicas_lower_bound=lower,
        # Updates that keep the target's kind and apiVersion are not re-checked.
        target_allow_invalid_api_version=keeps_target,
        # The only scalable kind in the core group.
        target_allow_empty_group=not keeps_target
        and new_ref.get("kind") == "ReplicationController",
        metrics_allow_invalid_api_version=old is not None
        and not _object_metric_versions_valid(old_spec),
    )


def validate_horizontal_pod_autoscaler(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=names.name_is_dns_subdomain)
    errs.extend(
        validate_spec(common.dict_at(obj, "spec"), field.Path("spec"), options_for(obj, None))
    )
    return errs


def validate_horizontal_pod_autoscaler_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    errs.extend(
        validate_spec(common.dict_at(new, "spec"), field.Path("spec"), options_for(new, old))
    )
    return errs


def validate_horizontal_pod_autoscaler_status_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    status = common.dict_at(new, "status")
    for key in ("currentReplicas", "desiredReplicas"):
        errs.extend(common.validate_nonnegative(status.get(key), field.Path("status", key)))
    return errs
