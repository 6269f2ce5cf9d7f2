"""ResourceSlices (upstream: ValidateResourceSlice in pkg/apis/resource/validation).

Owns a slice's driver (a CSI driver name, immutable), pool (a name of
slash-separated DNS subdomains, immutable; a positive resourceSliceCount and
a non-negative generation), exactly one of nodeName, nodeSelector (with
exactly one term), allNodes or perDeviceNodeSelection (nodeName immutable),
sharedCounters or devices but not both, and each device: a unique DNS-label
name, at most 32 attributes and capacities together, qualified attribute
names with exactly one value each (versions as semver), capacity request
policies only on devices that allow multiple allocations, taints (at most
16), counter consumption, per-device node selection when the slice asks for
it, and binding conditions. A slice holds at most 128 devices, 64 once any
device has taints or consumes counters.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

from kajitori.api import resource_v1 as limits
from kajitori.api.resource_v1 import claims, common, taints
from kajitori.machinery import field, gostrings, quantity

Object = dict[str, Any]

_ONE_NODE_CHOICE = (
    "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"
)
_PER_DEVICE = (
    "exactly one of `nodeName`, `nodeSelector`, or `allNodes` is required when "
    "`perDeviceNodeSelection` is set to true in the ResourceSlice spec"
)
_NUMERIC = r"(0|[1-9]\d*)"
_PRE_RELEASE = r"(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_BUILD = r"[0-9a-zA-Z-]+"
_SEMVER = re.compile(
    rf"^{_NUMERIC}\.{_NUMERIC}\.{_NUMERIC}"
    rf"(-{_PRE_RELEASE}(\.{_PRE_RELEASE})*)?"
    rf"(\+{_BUILD}(\.{_BUILD})*)?$"
)
_ATTRIBUTE_KEY_MAX = limits.DEVICE_MAX_DOMAIN_LENGTH + 1 + limits.DEVICE_MAX_ID_LENGTH
_SCALAR_ATTRIBUTES = ("bool", "int", "string", "version")


def _validate_pool(pool: Any, path: field.Path) -> field.ErrorList:
    item = common.as_dict(pool)
    errs = common.validate_pool_name(item.get("name"), path.child("name"))
    count = item.get("resourceSliceCount") or 0
    if not isinstance(count, int) or count <= 0:
        errs.append(
            field.invalid(path.child("resourceSliceCount"), count, "must be greater than zero")
        )
    generation = item.get("generation") or 0
    if isinstance(generation, int) and generation < 0:
        detail = "must be greater than or equal to zero"
        errs.append(field.invalid(path.child("generation"), generation, detail))
    return errs


def _validate_string_value(value: Any, path: field.Path) -> field.ErrorList:
    if len(common.text(value)) > limits.DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH:
        return field.ErrorList([field.too_long(path, "", limits.DEVICE_ATTRIBUTE_MAX_VALUE_LENGTH)])
    return field.ErrorList()


def _validate_version_value(value: Any, path: field.Path) -> field.ErrorList:
    version = common.text(value)
    errs = field.ErrorList()
    if not _SEMVER.match(version):
        detail = "must be a string compatible with semver.org spec 2.0.0"
        errs.append(field.invalid(path, version, detail))
    errs.extend(_validate_string_value(version, path))
    return errs


def _validate_attribute(attribute: Any, path: field.Path) -> field.ErrorList:
    item = common.as_dict(attribute)
    present = [key for key in _SCALAR_ATTRIBUTES if item.get(key) is not None]
    errs = field.ErrorList()
    if "string" in present:
        errs.extend(_validate_string_value(item["string"], path.child("string")))
    if "version" in present:
        errs.extend(_validate_version_value(item["version"], path.child("version")))
    if not present:
        errs.append(field.invalid(path, "", "exactly one value must be specified"))
    elif len(present) > 1:
        errs.append(field.invalid(path, _go_attribute(item), "exactly one value must be specified"))
    return errs


def _go_attribute(item: Object) -> gostrings.GoValue:
    """Go's ``%#v`` of the internal DeviceAttribute (scalars are pointers there)."""
    scalars = (("IntValue", "int", "int64"), ("BoolValue", "bool", "bool"))
    strings = (("StringValue", "string"), ("VersionValue", "version"))
    fields = [(name, gostrings.pointer(item.get(key), go)) for name, key, go in scalars]
    fields += [(name, gostrings.pointer(item.get(key), "string")) for name, key in strings]
    return gostrings.struct("resource.DeviceAttribute", fields)


def _quantity(value: Any) -> quantity.Quantity | None:
    try:
        return quantity.from_json(value)
    except (ValueError, TypeError, decimal.InvalidOperation):
        return None


def _validate_request_policy(
    capacity: quantity.Quantity, policy: Object, path: field.Path
) -> field.ErrorList:
    valid_values = common.as_list(policy.get("validValues"))
    valid_range = policy.get("validRange")
    if valid_values and valid_range is not None:
        detail = 'exactly one policy can be specified, cannot specify "validValues" and "validRange" at the same time'
        return field.ErrorList([field.forbidden(path, detail)])
    default = _quantity(policy.get("default")) if policy.get("default") is not None else None
    errs = field.ErrorList()
    if valid_values:
        if default is None:
            return field.ErrorList(
                [field.required(path.child("default"), "required when validValues is defined")]
            )
        options = [_quantity(v) for v in valid_values]
        values_path = path.child("validValues")
        for i in range(len(options) - 1):
            a, b = options[i], options[i + 1]
            if a is not None and b is not None and a.number > b.number:
                detail = "values must be sorted in ascending order"
                errs.append(field.invalid(values_path.index(i + 1), b.canonical(), detail))
        if len(options) > limits.CAPACITY_REQUEST_POLICY_DISCRETE_MAX_OPTIONS:
            errs.append(
                field.too_many(
                    values_path, len(options), limits.CAPACITY_REQUEST_POLICY_DISCRETE_MAX_OPTIONS
                )
            )
            return errs
        seen: set[decimal.Decimal] = set()
        for i, option in enumerate(options):
            if option is None:
                continue
            if option.number > capacity.number:
                detail = f"option is larger than capacity value: {capacity.canonical()}"
                errs.append(field.invalid(values_path.index(i), option.canonical(), detail))
            if option.number in seen:
                errs.append(field.duplicate(values_path.index(i), str(option.number)))
            seen.add(option.number)
        if default.number not in seen:
            detail = "default value is not valid according to the requestPolicy"
            errs.append(field.invalid(values_path, default.canonical(), detail))
    elif isinstance(valid_range, dict):
        if default is None:
            return field.ErrorList(
                [field.required(path.child("default"), "required when validRange is defined")]
            )
        errs.extend(_validate_range(capacity, default, valid_range, path.child("validRange")))
    return errs


def _validate_range(
    capacity: quantity.Quantity, default: quantity.Quantity, valid_range: Object, path: field.Path
) -> field.ErrorList:
    low = _quantity(valid_range.get("min")) if valid_range.get("min") is not None else None
    if low is None:
        return field.ErrorList(
            [field.required(path.child("min"), "required when validRange is defined")]
        )
    errs = field.ErrorList()
    cap = capacity.canonical()
    if low.number > capacity.number:
        errs.append(
            field.invalid(
                path.child("min"), low.canonical(), f"min is larger than capacity value: {cap}"
            )
        )
    if default.number < low.number:
        errs.append(
            field.invalid(
                path.child("default"),
                default.canonical(),
                f"default is less than min: {low.canonical()}",
            )
        )
    high = _quantity(valid_range.get("max")) if valid_range.get("max") is not None else None
    if high is not None:
        if low.number > high.number:
            errs.append(
                field.invalid(
                    path.child("max"),
                    low.canonical(),
                    f"min is larger than max: {high.canonical()}",
                )
            )
        if high.number > capacity.number:
            errs.append(
                field.invalid(
                    path.child("max"), high.canonical(), f"max is larger than capacity value: {cap}"
                )
            )
        if default.number > high.number:
            errs.append(
                field.invalid(
                    path.child("default"),
                    default.canonical(),
                    f"default is more than max: {high.canonical()}",
                )
            )
    step = _quantity(valid_range.get("step")) if valid_range.get("step") is not None else None
    if step is not None:
        if step.number <= 0:
            errs.append(
                field.invalid(path.child("step"), step.canonical(), "must be greater than zero")
            )
            return errs
        one_step = quantity.Quantity(low.number + step.number, low.format)
        if one_step.number > capacity.number:
            detail = f"one step {one_step.canonical()} is larger than capacity value: {cap}"
            errs.append(field.invalid(path.child("step"), step.canonical(), detail))
        # DRAFractionalCapacityRange (on in 1.37) compares in milli-units, which exact
        # decimals do equally well.
        for value in (default, high):
            if value is not None and (value.number - low.number) % step.number != 0:
                detail = f"value is not a multiple of a given step ({step.canonical()}) from ({low.canonical()})"
                errs.append(field.invalid(path.child("step"), value.canonical(), detail))
    return errs


def _validate_capacity(capacity: Any, path: field.Path, *, multiple: bool) -> field.ErrorList:
    item = common.as_dict(capacity)
    policy = item.get("requestPolicy")
    if policy is None:
        return field.ErrorList()
    if not multiple:
        return field.ErrorList(
            [field.forbidden(path.child("requestPolicy"), "allowMultipleAllocations must be true")]
        )
    value = _quantity(item.get("value"))
    if value is None or not isinstance(policy, dict):
        return field.ErrorList()
    return _validate_request_policy(value, policy, path.child("requestPolicy"))


def _validate_counters(counters: Any, max_size: int, path: field.Path) -> field.ErrorList:
    return common.validate_map(
        counters,
        max_size,
        63,
        lambda k, p: common.validate_counter_name(k, p),
        lambda v, p: field.ErrorList(),
        path,
    )


def _validate_counter_consumption(consumption: Any, path: field.Path) -> field.ErrorList:
    limit = limits.RESOURCE_SLICE_MAX_COUNTERS_PER_DEVICE_COUNTER_CONSUMPTION
    return _validate_named_counters(consumption, "counterSet", limit, path)


def _validate_counter_set(counter_set: Any, path: field.Path) -> field.ErrorList:
    limit = limits.RESOURCE_SLICE_MAX_COUNTERS_PER_COUNTER_SET
    return _validate_named_counters(counter_set, "name", limit, path)


def _validate_named_counters(
    value: Any, name_key: str, max_counters: int, path: field.Path
) -> field.ErrorList:
    """A counter set or a device's consumption of one: a counter-set name and its counters."""
    item = common.as_dict(value)
    errs = field.ErrorList()
    if not common.text(item.get(name_key)):
        errs.append(field.required(path.child(name_key)))
    else:
        errs.extend(common.validate_counter_name(item.get(name_key), path.child(name_key)))
    if not common.as_dict(item.get("counters")):
        errs.append(field.required(path.child("counters")))
    else:
        errs.extend(_validate_counters(item.get("counters"), max_counters, path.child("counters")))
    return errs


def _validate_device_node(device: Object, path: field.Path, per_device: bool) -> field.ErrorList:
    errs = field.ErrorList()
    has_any = any(device.get(k) is not None for k in ("nodeName", "nodeSelector", "allNodes"))
    if not per_device:
        if has_any:
            detail = (
                "`nodeName`, `nodeSelector` and `allNodes` can only be set if "
                "`perDeviceNodeSelection` is set to true in the ResourceSlice spec"
            )
            errs.append(field.invalid(path, None, detail))
        return errs
    chosen: list[str] = []
    node_name = device.get("nodeName")
    if node_name is not None:
        if common.text(node_name):
            chosen.append("`nodeName`")
            errs.extend(common.validate_node_name(node_name, path.child("nodeName")))
        else:
            errs.append(
                field.invalid(path.child("nodeName"), common.text(node_name), "must not be empty")
            )
    if device.get("nodeSelector") is not None:
        chosen.append("`nodeSelector`")
        errs.extend(
            common.validate_node_selector(device.get("nodeSelector"), path.child("nodeSelector"))
        )
    all_nodes = device.get("allNodes")
    if all_nodes is not None:
        if all_nodes is True:
            chosen.append("`allNodes`")
        else:
            errs.append(
                field.invalid(
                    path.child("allNodes"), all_nodes, "must be either unset or set to true"
                )
            )
    if not chosen:
        errs.append(field.required(path, _PER_DEVICE))
    elif len(chosen) > 1:
        errs.append(field.invalid(path, "{" + ", ".join(chosen) + "}", _PER_DEVICE))
    return errs


def _validate_device(
    device: Any, old: Object | None, path: field.Path, per_device: bool
) -> field.ErrorList:
    item = common.as_dict(device)
    errs = common.validate_device_name(item.get("name"), path.child("name"))
    attributes = common.as_dict(item.get("attributes"))
    capacity = common.as_dict(item.get("capacity"))
    total = len(attributes) + len(capacity)
    if total > limits.RESOURCE_SLICE_MAX_ATTRIBUTES_AND_CAPACITIES_PER_DEVICE:
        detail = (
            "the total number of attributes and capacities must not exceed "
            f"{limits.RESOURCE_SLICE_MAX_ATTRIBUTES_AND_CAPACITIES_PER_DEVICE}"
        )
        errs.append(field.invalid(path, total, detail))
    errs.extend(
        common.validate_map(
            attributes,
            -1,
            _ATTRIBUTE_KEY_MAX,
            common.validate_qualified_name,
            _validate_attribute,
            path.child("attributes"),
        )
    )
    # Unchanged capacity and taints were valid when stored.
    if old is None or old.get("capacity") != item.get("capacity"):
        multiple = item.get("allowMultipleAllocations") is True
        errs.extend(
            common.validate_map(
                capacity,
                -1,
                _ATTRIBUTE_KEY_MAX,
                common.validate_qualified_name,
                lambda c, p: _validate_capacity(c, p, multiple=multiple),
                path.child("capacity"),
            )
        )
    if old is None or old.get("taints") != item.get("taints"):
        errs.extend(
            common.validate_slice(
                item.get("taints"),
                limits.DEVICE_TAINTS_MAX_LENGTH,
                lambda t, p: taints.validate_device_taint(t, None, p),
                path.child("taints"),
            )
        )
    errs.extend(
        common.validate_set(
            item.get("consumesCounters"),
            limits.RESOURCE_SLICE_MAX_DEVICE_COUNTER_CONSUMPTIONS_PER_DEVICE,
            _validate_counter_consumption,
            lambda c: common.text(common.as_dict(c).get("counterSet")),
            path.child("consumesCounters"),
        )
    )
    errs.extend(_validate_device_node(item, path, per_device))
    errs.extend(claims.validate_binding_parameters(item, path))
    return errs


def _max_devices(devices: list[Any]) -> int:
    advanced = any(
        common.as_list(common.as_dict(d).get("taints"))
        or common.as_list(common.as_dict(d).get("consumesCounters"))
        for d in devices
    )
    return (
        limits.RESOURCE_SLICE_MAX_DEVICES_WITH_ADVANCED_FEATURES
        if advanced
        else limits.RESOURCE_SLICE_MAX_DEVICES
    )


def _validate_node_choice(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    chosen: list[str] = []
    node_name = spec.get("nodeName")
    if node_name is not None:
        if common.text(node_name):
            chosen.append("`nodeName`")
            errs.extend(common.validate_node_name(node_name, path.child("nodeName")))
        else:
            detail = "must be either unset or set to a non-empty string"
            errs.append(field.invalid(path.child("nodeName"), common.text(node_name), detail))
    selector = spec.get("nodeSelector")
    if selector is not None:
        chosen.append("`nodeSelector`")
        errs.extend(common.validate_node_selector(selector, path.child("nodeSelector")))
        terms = common.as_list(common.as_dict(selector).get("nodeSelectorTerms"))
        if len(terms) != 1:
            errs.append(
                field.invalid(
                    path.child("nodeSelector", "nodeSelectorTerms"),
                    _go_terms(common.as_dict(selector).get("nodeSelectorTerms")),
                    "must have exactly one node selector term",
                )
            )
    for key in ("allNodes", "perDeviceNodeSelection"):
        value = spec.get(key)
        if value is None:
            continue
        if value is True:
            chosen.append(f"`{key}`")
        else:
            errs.append(
                field.invalid(path.child(key), value, "must be either unset or set to true")
            )
    if not chosen:
        errs.append(field.required(path, _ONE_NODE_CHOICE))
    elif len(chosen) > 1:
        errs.append(
            field.invalid(
                path,
                "{" + ", ".join(chosen) + "}",
                _ONE_NODE_CHOICE + ", but multiple fields are set",
            )
        )
    return errs


def _go_requirement(req: Any) -> str:
    item = common.as_dict(req)
    values = common.as_list(item.get("values"))
    return gostrings.struct(
        "core.NodeSelectorRequirement",
        (
            ("Key", gostrings.quote(item.get("key"))),
            ("Operator", gostrings.quote(item.get("operator"))),
            ("Values", gostrings.string_slice(values if "values" in item else None)),
        ),
    ).text


def _go_requirements(reqs: Any) -> str:
    if not isinstance(reqs, list):
        return "[]core.NodeSelectorRequirement(nil)"
    return "[]core.NodeSelectorRequirement{" + ", ".join(_go_requirement(r) for r in reqs) + "}"


def _go_terms(terms: Any) -> gostrings.GoValue:
    """Go's ``%#v`` of the terms, as upstream reports them."""
    if not isinstance(terms, list):
        return gostrings.GoValue("[]core.NodeSelectorTerm(nil)")
    rendered = (
        gostrings.struct(
            "core.NodeSelectorTerm",
            (
                ("MatchExpressions", _go_requirements(common.as_dict(t).get("matchExpressions"))),
                ("MatchFields", _go_requirements(common.as_dict(t).get("matchFields"))),
            ),
        ).text
        for t in terms
    )
    return gostrings.GoValue("[]core.NodeSelectorTerm{" + ", ".join(rendered) + "}")


def _validate_spec(spec: Object, old: Object | None, path: field.Path) -> field.ErrorList:
    errs = common.validate_driver_name(spec.get("driver"), path.child("driver"))
    errs.extend(_validate_pool(spec.get("pool"), path.child("pool")))
    if old is not None:
        old_pool = common.as_dict(old.get("pool")).get("name")
        new_pool = common.as_dict(spec.get("pool")).get("name")
        if new_pool != old_pool:
            errs.append(
                field.invalid(path.child("pool", "name"), common.text(new_pool), claims.IMMUTABLE)
            )
        if spec.get("driver") != old.get("driver"):
            errs.append(
                field.invalid(
                    path.child("driver"), common.text(spec.get("driver")), claims.IMMUTABLE
                )
            )
        if spec.get("nodeName") != old.get("nodeName"):
            errs.append(
                field.invalid(path.child("nodeName"), spec.get("nodeName"), claims.IMMUTABLE)
            )
    errs.extend(_validate_node_choice(spec, path))
    if spec.get("sharedCounters") is not None and spec.get("devices") is not None:
        errs.append(field.invalid(path, "", "only one of `sharedCounters` or `devices` is allowed"))
    devices = common.as_list(spec.get("devices"))
    old_devices = {
        common.text(common.as_dict(d).get("name")): common.as_dict(d)
        for d in common.as_list((old or {}).get("devices"))
    }
    per_device = spec.get("perDeviceNodeSelection") is True
    errs.extend(
        common.validate_set(
            devices,
            _max_devices(devices),
            lambda d, p: _validate_device(
                d, old_devices.get(common.text(common.as_dict(d).get("name"))), p, per_device
            ),
            common.name_key,
            path.child("devices"),
        )
    )
    errs.extend(
        common.validate_set(
            spec.get("sharedCounters"),
            limits.RESOURCE_SLICE_MAX_COUNTER_SETS,
            _validate_counter_set,
            common.name_key,
            path.child("sharedCounters"),
        )
    )
    return errs


def validate_resource_slice(obj: Object) -> field.ErrorList:
    return common.validate_cluster_object(obj, None, _validate_spec)


def validate_resource_slice_update(obj: Object, old: Object) -> field.ErrorList:
    return common.validate_cluster_object(obj, old, _validate_spec)


def driver_warnings(obj: Object) -> list[str]:
    """Upstream warns (and stores) a driver name with upper-case letters."""
    driver = common.text(common.as_dict(obj.get("spec")).get("driver"))
    if driver != driver.lower():
        return [
            f'spec.driver: driver names should be lowercase; "{driver}" contains uppercase characters'
        ]
    return []
