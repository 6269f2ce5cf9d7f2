"""ResourceClaims, ResourceClaimTemplates and DeviceClasses (upstream: pkg/apis/resource/validation).

Owns a claim's device requests (unique DNS-label names, at most 32; each
exactly one of ``exactly`` or ``firstAvailable`` with at most 8 alternatives;
a device class name; CEL selectors; allocationMode All without a count or
ExactCount with a positive one; tolerations), constraints and configuration
(request references, a fully qualified attribute name, opaque driver
parameters), a spec that never changes after creation (a template's too),
and the claim's status: consumers in ``reservedFor`` (at most 256, unique by
uid, only while allocated, none added once the claim is being deleted), an
allocation set once and then immutable, and per-device status entries that
must name allocated devices. DeviceClasses: a DNS-subdomain name, selectors
and configuration (checked again only when changed), an extended resource
name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kajitori.api import resource_v1 as limits
from kajitori.api.resource_v1 import common, taints
from kajitori.machinery import conditions, field, gostrings, names, objectmeta

Object = dict[str, Any]
RequestNames = Mapping[str, set[str] | None]

ALLOCATION_MODES = ("All", "ExactCount")
CONFIG_SOURCES = ("FromClaim", "FromClass")
IMMUTABLE = "field is immutable"


def _meta(obj: Object) -> Object:
    return common.as_dict(obj.get("metadata"))


def _validate_meta(obj: Object, *, namespaced: bool) -> field.ErrorList:
    return objectmeta.validate_object_meta(
        _meta(obj),
        namespaced=namespaced,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )


def _validate_meta_update(obj: Object, old: Object) -> field.ErrorList:
    return objectmeta.validate_object_meta_update(
        _meta(obj), _meta(old), path=field.Path("metadata")
    )


# ----- device requests ------------------------------------------------------------------


def _validate_allocation_mode(request: Object, path: field.Path) -> field.ErrorList:
    mode = request.get("allocationMode")
    count = request.get("count") or 0
    count_path = path.child("count")
    if mode == "All":
        if count != 0:
            detail = f"must not be specified when allocationMode is '{mode}'"
            return field.ErrorList([field.invalid(count_path, count, detail)])
    elif mode == "ExactCount":
        if not isinstance(count, int) or count <= 0:
            return field.ErrorList([field.invalid(count_path, count, "must be greater than zero")])
    else:
        return field.ErrorList(
            [field.not_supported(path.child("allocationMode"), mode or "", ALLOCATION_MODES)]
        )
    return field.ErrorList()


def _validate_request_shape(request: Object, path: field.Path, stored: bool) -> field.ErrorList:
    """What ``exactly`` and a ``firstAvailable`` alternative share."""
    errs = common.validate_device_class_name(
        request.get("deviceClassName"), path.child("deviceClassName")
    )
    errs.extend(
        common.validate_selectors(request.get("selectors"), path.child("selectors"), stored=stored)
    )
    errs.extend(_validate_allocation_mode(request, path))
    errs.extend(taints.validate_tolerations(request.get("tolerations"), path.child("tolerations")))
    return errs


def _validate_sub_request(sub: Any, path: field.Path, stored: bool) -> field.ErrorList:
    item = common.as_dict(sub)
    errs = common.validate_request_name(item.get("name"), path.child("name"))
    errs.extend(_validate_request_shape(item, path, stored))
    return errs


def _validate_request(request: Any, path: field.Path, stored: bool) -> field.ErrorList:
    item = common.as_dict(request)
    errs = common.validate_request_name(item.get("name"), path.child("name"))
    first_available = common.as_list(item.get("firstAvailable"))
    exactly = item.get("exactly")
    if first_available and exactly is not None:
        detail = (
            "exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set"
        )
        errs.append(field.invalid(path, None, detail))
    elif first_available:
        errs.extend(
            common.validate_set(
                first_available,
                limits.FIRST_AVAILABLE_DEVICE_REQUEST_MAX_SIZE,
                lambda s, p: _validate_sub_request(s, p, stored),
                common.name_key,
                path.child("firstAvailable"),
            )
        )
    elif exactly is not None:
        errs.extend(_validate_request_shape(common.as_dict(exactly), path.child("exactly"), stored))
    else:
        errs.append(
            field.required(path, "exactly one of `exactly` or `firstAvailable` is required")
        )
    return errs


def _validate_constraint(
    constraint: Any, path: field.Path, request_names: RequestNames
) -> field.ErrorList:
    item = common.as_dict(constraint)
    errs = common.validate_request_refs(item.get("requests"), path.child("requests"), request_names)
    if item.get("matchAttribute") is not None:
        errs.extend(
            common.validate_fully_qualified_name(
                item.get("matchAttribute"), path.child("matchAttribute")
            )
        )
    elif item.get("distinctAttribute") is not None:
        errs.extend(
            common.validate_fully_qualified_name(
                item.get("distinctAttribute"), path.child("distinctAttribute")
            )
        )
    else:
        # The wording is upstream's while DRAConsumableCapacity is on (1.37's default).
        detail = 'exactly one of "matchAttribute" or "distinctAttribute" is required, but multiple fields are set'
        errs.append(field.required(path, detail))
    return errs


def _validate_claim_config(
    config: Any, path: field.Path, request_names: RequestNames, stored: bool
) -> field.ErrorList:
    item = common.as_dict(config)
    errs = common.validate_request_refs(item.get("requests"), path.child("requests"), request_names)
    errs.extend(common.validate_device_configuration(item, path, stored=stored))
    return errs


def validate_device_claim(
    devices: Any, path: field.Path, *, stored: bool = False
) -> field.ErrorList:
    claim = common.as_dict(devices)
    request_names = common.gather_request_names(claim)
    errs = common.validate_set(
        claim.get("requests"),
        limits.DEVICE_REQUESTS_MAX_SIZE,
        lambda r, p: _validate_request(r, p, stored),
        common.name_key,
        path.child("requests"),
    )
    errs.extend(
        common.validate_slice(
            claim.get("constraints"),
            limits.DEVICE_CONSTRAINTS_MAX_SIZE,
            lambda c, p: _validate_constraint(c, p, request_names),
            path.child("constraints"),
        )
    )
    errs.extend(
        common.validate_slice(
            claim.get("config"),
            limits.DEVICE_CONFIG_MAX_SIZE,
            lambda c, p: _validate_claim_config(c, p, request_names, stored),
            path.child("config"),
        )
    )
    return errs


def validate_resource_claim_spec(
    spec: Any, path: field.Path, *, stored: bool = False
) -> field.ErrorList:
    return validate_device_claim(
        common.as_dict(spec).get("devices"), path.child("devices"), stored=stored
    )


# ----- ResourceClaim -----------------------------------------------------------------


def validate_resource_claim(obj: Object) -> field.ErrorList:
    errs = _validate_meta(obj, namespaced=True)
    errs.extend(validate_resource_claim_spec(obj.get("spec"), field.Path("spec")))
    return errs


def validate_resource_claim_update(obj: Object, old: Object) -> field.ErrorList:
    """ValidateResourceClaimUpdate: metadata and a spec that never changes."""
    errs = _validate_meta(obj, namespaced=True)
    errs.extend(_validate_meta_update(obj, old))
    spec, old_spec = common.as_dict(obj.get("spec")), common.as_dict(old.get("spec"))
    if spec != old_spec:
        errs.append(field.invalid(field.Path("spec"), go_claim_spec(spec), IMMUTABLE))
    return errs


# ----- ResourceClaim status --------------------------------------------------------------


def _validate_consumer(ref: Any, path: field.Path) -> field.ErrorList:
    item = common.as_dict(ref)
    return field.ErrorList(
        field.required(path.child(key)) for key in ("resource", "name", "uid") if not item.get(key)
    )


def _device_id(item: Object) -> str:
    parts = [common.text(item.get(k)) for k in ("driver", "pool", "device")]
    share = item.get("shareID")
    if isinstance(share, str):
        parts.append(share)
    return "/".join(parts)


def _validate_network_data(data: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(data, dict):
        return errs
    if (
        len(common.text(data.get("interfaceName")))
        > limits.NETWORK_DEVICE_DATA_INTERFACE_NAME_MAX_LENGTH
    ):
        errs.append(
            field.too_long(
                path.child("interfaceName"),
                "",
                limits.NETWORK_DEVICE_DATA_INTERFACE_NAME_MAX_LENGTH,
            )
        )
    if (
        len(common.text(data.get("hardwareAddress")))
        > limits.NETWORK_DEVICE_DATA_HARDWARE_ADDRESS_MAX_LENGTH
    ):
        errs.append(
            field.too_long(
                path.child("hardwareAddress"),
                "",
                limits.NETWORK_DEVICE_DATA_HARDWARE_ADDRESS_MAX_LENGTH,
            )
        )
    errs.extend(
        common.validate_set(
            data.get("ips"),
            limits.NETWORK_DEVICE_DATA_MAX_IPS,
            _validate_interface_address,
            common.string_key,
            path.child("ips"),
        )
    )
    return errs


def _validate_interface_address(value: Any, path: field.Path) -> field.ErrorList:
    import ipaddress

    address = common.text(value)
    try:
        interface = ipaddress.ip_interface(address)
    except ValueError:
        detail = "must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)"
        return field.ErrorList([field.invalid(path, address, detail)])
    canonical = f"{interface.ip.compressed}/{interface.network.prefixlen}"
    if "/" not in address or canonical != address:
        if "/" not in address:
            detail = "must be a valid address in CIDR form, (e.g. 10.9.8.7/24 or 2001:db8::1/64)"
        else:
            detail = f'must be in canonical form ("{canonical}")'
        return field.ErrorList([field.invalid(path, address, detail)])
    return field.ErrorList()


def _validate_device_status(device: Any, path: field.Path, allocated: set[str]) -> field.ErrorList:
    item = common.as_dict(device)
    errs = common.validate_driver_name(item.get("driver"), path.child("driver"))
    errs.extend(common.validate_pool_name(item.get("pool"), path.child("pool")))
    errs.extend(common.validate_device_name(item.get("device"), path.child("device")))
    if item.get("shareID") is not None:
        errs.extend(common.validate_uid(item.get("shareID"), path.child("shareID")))
    device_id = _device_id(item)
    if device_id not in allocated:
        errs.append(
            field.invalid(
                path, gostrings.GoValue(device_id), "must be an allocated device in the claim"
            )
        )
    found = common.as_list(item.get("conditions"))
    if len(found) > limits.ALLOCATED_DEVICE_STATUS_MAX_CONDITIONS:
        errs.append(
            field.too_many(
                path.child("conditions"), len(found), limits.ALLOCATED_DEVICE_STATUS_MAX_CONDITIONS
            )
        )
    errs.extend(conditions.validate_conditions(found, path.child("conditions")))
    if item.get("data") is not None:
        errs.extend(
            common.validate_raw_extension(
                item.get("data"),
                path.child("data"),
                stored=False,
                max_length=limits.ALLOCATED_DEVICE_STATUS_DATA_MAX_LENGTH,
            )
        )
    errs.extend(_validate_network_data(item.get("networkData"), path.child("networkData")))
    return errs


def _validate_binding_parameters(result: Object, path: field.Path) -> field.ErrorList:
    bindings = common.as_list(result.get("bindingConditions"))
    failures = common.as_list(result.get("bindingFailureConditions"))
    errs = common.validate_slice(
        bindings,
        limits.BINDING_CONDITIONS_MAX_SIZE,
        common.validate_label_name,
        path.child("bindingConditions"),
    )
    errs.extend(
        common.validate_slice(
            failures,
            limits.BINDING_FAILURE_CONDITIONS_MAX_SIZE,
            common.validate_label_name,
            path.child("bindingFailureConditions"),
        )
    )
    seen: set[str] = set()
    for i, condition in enumerate(bindings):
        if condition in seen:
            errs.append(field.duplicate(path.child("bindingConditions").index(i), condition))
        seen.add(condition)
    seen_failures: set[str] = set()
    for i, condition in enumerate(failures):
        item_path = path.child("bindingFailureConditions").index(i)
        if condition in seen_failures:
            errs.append(field.duplicate(item_path, condition))
        seen_failures.add(condition)
        if condition in bindings:
            detail = "bindingFailureConditions must not overlap with bindingConditions"
            errs.append(field.invalid(item_path, condition, detail))
    if not bindings and failures:
        detail = "bindingConditions are required to use bindingFailureConditions"
        errs.append(field.invalid(path.child("bindingConditions"), _go_strings(bindings), detail))
    if not failures and bindings:
        detail = "bindingFailureConditions are required to use bindingConditions"
        errs.append(
            field.invalid(path.child("bindingFailureConditions"), _go_strings(failures), detail)
        )
    return errs


def _go_strings(values: list[Any]) -> gostrings.GoValue:
    return gostrings.GoValue(gostrings.string_slice(values or None))


def validate_binding_parameters(item: Object, path: field.Path) -> field.ErrorList:
    return _validate_binding_parameters(item, path)


def _validate_result(result: Any, path: field.Path, request_names: RequestNames) -> field.ErrorList:
    item = common.as_dict(result)
    errs = common.validate_request_name_ref(
        item.get("request"), path.child("request"), request_names
    )
    errs.extend(common.validate_driver_name(item.get("driver"), path.child("driver")))
    errs.extend(common.validate_pool_name(item.get("pool"), path.child("pool")))
    errs.extend(common.validate_device_name(item.get("device"), path.child("device")))
    errs.extend(_validate_binding_parameters(item, path))
    errs.extend(taints.validate_tolerations(item.get("tolerations"), path.child("tolerations")))
    if item.get("shareID") is not None:
        errs.extend(common.validate_uid(item.get("shareID"), path.child("shareID")))
    return errs


def _validate_allocation_config(
    config: Any, path: field.Path, request_names: RequestNames
) -> field.ErrorList:
    item = common.as_dict(config)
    source = common.text(item.get("source"))
    errs = field.ErrorList()
    if not source:
        errs.append(field.required(path.child("source")))
    elif source not in CONFIG_SOURCES:
        errs.append(field.not_supported(path.child("source"), source, CONFIG_SOURCES))
    errs.extend(
        common.validate_request_refs(item.get("requests"), path.child("requests"), request_names)
    )
    errs.extend(common.validate_device_configuration(item, path, stored=False))
    return errs


def _validate_allocation(
    allocation: Object, path: field.Path, request_names: RequestNames
) -> field.ErrorList:
    devices = common.as_dict(allocation.get("devices"))
    devices_path = path.child("devices")
    errs = common.validate_slice(
        devices.get("results"),
        limits.ALLOCATION_RESULTS_MAX_SIZE,
        lambda r, p: _validate_result(r, p, request_names),
        devices_path.child("results"),
    )
    errs.extend(
        common.validate_slice(
            devices.get("config"),
            2 * limits.DEVICE_CONFIG_MAX_SIZE,  # the class's and the claim's
            lambda c, p: _validate_allocation_config(c, p, request_names),
            devices_path.child("config"),
        )
    )
    if allocation.get("nodeSelector") is not None:
        errs.extend(
            common.validate_node_selector(
                allocation.get("nodeSelector"), path.child("nodeSelector")
            )
        )
    return errs


def _allocated_ids(allocation: Object) -> set[str]:
    results = common.as_list(common.as_dict(allocation.get("devices")).get("results"))
    return {_device_id(common.as_dict(r)) for r in results}


def validate_resource_claim_status_update(obj: Object, old: Object) -> field.ErrorList:
    """ValidateResourceClaimStatusUpdate."""
    errs = _validate_meta_update(obj, old)
    status, old_status = common.as_dict(obj.get("status")), common.as_dict(old.get("status"))
    path = field.Path("status")
    request_names = common.gather_request_names(
        common.as_dict(common.as_dict(obj.get("spec")).get("devices"))
    )
    reserved = common.as_list(status.get("reservedFor"))
    errs.extend(
        common.validate_set(
            reserved,
            limits.RESOURCE_CLAIM_RESERVED_FOR_MAX_SIZE,
            _validate_consumer,
            lambda r: common.text(common.as_dict(r).get("uid")),
            path.child("reservedFor"),
        )
    )
    allocation = status.get("allocation")
    allocated = (
        _allocated_ids(common.as_dict(allocation)) if isinstance(allocation, dict) else set()
    )
    errs.extend(
        common.validate_set(
            status.get("devices"),
            -1,
            lambda d, p: _validate_device_status(d, p, allocated),
            lambda d: _device_id(common.as_dict(d)),
            path.child("devices"),
            shown=gostrings.GoValue,
        )
    )
    if reserved:
        if not isinstance(allocation, dict):
            detail = "may not be specified when `allocated` is not set"
            errs.append(field.forbidden(path.child("reservedFor"), detail))
        elif _meta(obj).get("deletionTimestamp"):
            before = {common.string_key(r) for r in common.as_list(old_status.get("reservedFor"))}
            if any(common.string_key(r) not in before for r in reserved):
                detail = (
                    "new entries may not be added while `deallocationRequested` or "
                    "`deletionTimestamp` are set"
                )
                errs.append(field.forbidden(path.child("reservedFor"), detail))
    old_allocation = old_status.get("allocation")
    if isinstance(old_allocation, dict) and isinstance(allocation, dict):
        if allocation != old_allocation:
            errs.append(
                field.invalid(path.child("allocation"), go_allocation(allocation), IMMUTABLE)
            )
    elif isinstance(allocation, dict):
        errs.extend(_validate_allocation(allocation, path.child("allocation"), request_names))
    return errs


# ----- ResourceClaimTemplate -------------------------------------------------------------


def _validate_template_spec(spec: Object, path: field.Path) -> field.ErrorList:
    meta = common.as_dict(spec.get("metadata"))
    meta_path = path.child("metadata")
    errs = objectmeta.validate_annotations(
        common.as_dict(meta.get("annotations")), meta_path.child("annotations")
    )
    errs.extend(
        objectmeta.validate_labels(common.as_dict(meta.get("labels")), meta_path.child("labels"))
    )
    errs.extend(validate_resource_claim_spec(spec.get("spec"), path.child("spec")))
    return errs


def validate_resource_claim_template(obj: Object) -> field.ErrorList:
    errs = _validate_meta(obj, namespaced=True)
    errs.extend(_validate_template_spec(common.as_dict(obj.get("spec")), field.Path("spec")))
    return errs


def validate_resource_claim_template_update(obj: Object, old: Object) -> field.ErrorList:
    errs = _validate_meta_update(obj, old)
    spec, old_spec = common.as_dict(obj.get("spec")), common.as_dict(old.get("spec"))
    if spec != old_spec:
        errs.append(field.invalid(field.Path("spec"), go_template_spec(spec), IMMUTABLE))
    return errs


# ----- DeviceClass ------------------------------------------------------------------------


def _is_extended_resource_name(name: str) -> bool:
    native = "/" not in name or "kubernetes.io/" in name
    if native or name.startswith("requests."):
        return False
    return not names.is_qualified_name("requests." + name)


def _validate_device_class_spec(
    spec: Object, old: Object | None, path: field.Path
) -> field.ErrorList:
    stored = old is not None and spec.get("selectors") == old.get("selectors")
    errs = common.validate_selectors(spec.get("selectors"), path.child("selectors"), stored=stored)
    stored = old is not None and spec.get("config") == old.get("config")
    errs.extend(
        common.validate_slice(
            spec.get("config"),
            limits.DEVICE_CONFIG_MAX_SIZE,
            lambda c, p: common.validate_device_configuration(c, p, stored=stored),
            path.child("config"),
        )
    )
    name = spec.get("extendedResourceName")
    if name is not None and not _is_extended_resource_name(common.text(name)):
        errs.append(
            field.invalid(
                path.child("extendedResourceName"), name, "must be a valid extended resource name"
            )
        )
    return errs


def validate_device_class(obj: Object) -> field.ErrorList:
    errs = _validate_meta(obj, namespaced=False)
    errs.extend(
        _validate_device_class_spec(common.as_dict(obj.get("spec")), None, field.Path("spec"))
    )
    return errs


def validate_device_class_update(obj: Object, old: Object) -> field.ErrorList:
    errs = _validate_meta(obj, namespaced=False)
    errs.extend(_validate_meta_update(obj, old))
    errs.extend(
        _validate_device_class_spec(
            common.as_dict(obj.get("spec")), common.as_dict(old.get("spec")), field.Path("spec")
        )
    )
    return errs


# ----- Go's %#v of what an immutability error reports --------------------------------------
# Pointers print as an address upstream; gostrings.POINTER stands in for it.


def _ptr(value: Any, type_name: str) -> str:
    return gostrings.pointer(value, type_name)


def _slice(items: Any, type_name: str, render: Any) -> str:
    values = common.as_list(items)
    if not values:
        return f"[]{type_name}(nil)"
    return f"[]{type_name}{{" + ", ".join(render(common.as_dict(v)) for v in values) + "}"


def _strings(items: Any) -> str:
    values = common.as_list(items)
    return gostrings.string_slice(values or None)


def _struct(type_name: str, fields: list[tuple[str, str]]) -> str:
    return gostrings.struct(type_name, fields).text


def _selector(item: Object) -> str:
    return _struct(
        "resource.DeviceSelector", [("CEL", _ptr(item.get("cel"), "resource.CELDeviceSelector"))]
    )


def _toleration(item: Object) -> str:
    return _struct(
        "resource.DeviceToleration",
        [
            ("Key", gostrings.quote(item.get("key"))),
            ("Operator", gostrings.quote(item.get("operator"))),
            ("Value", gostrings.quote(item.get("value"))),
            ("Effect", gostrings.quote(item.get("effect"))),
            ("TolerationSeconds", _ptr(item.get("tolerationSeconds"), "int64")),
        ],
    )


def _sub_request(item: Object) -> str:
    return _struct(
        "resource.DeviceSubRequest",
        [
            ("Name", gostrings.quote(item.get("name"))),
            ("DeviceClassName", gostrings.quote(item.get("deviceClassName"))),
            ("Selectors", _slice(item.get("selectors"), "resource.DeviceSelector", _selector)),
            ("AllocationMode", gostrings.quote(item.get("allocationMode"))),
            ("Count", str(item.get("count") or 0)),
            (
                "Tolerations",
                _slice(item.get("tolerations"), "resource.DeviceToleration", _toleration),
            ),
            ("Capacity", _ptr(item.get("capacity"), "resource.CapacityRequirements")),
        ],
    )


def _request(item: Object) -> str:
    return _struct(
        "resource.DeviceRequest",
        [
            ("Name", gostrings.quote(item.get("name"))),
            ("Exactly", _ptr(item.get("exactly"), "resource.ExactDeviceRequest")),
            (
                "FirstAvailable",
                _slice(item.get("firstAvailable"), "resource.DeviceSubRequest", _sub_request),
            ),
        ],
    )


def _constraint(item: Object) -> str:
    return _struct(
        "resource.DeviceConstraint",
        [
            ("Requests", _strings(item.get("requests"))),
            ("MatchAttribute", _ptr(item.get("matchAttribute"), "resource.FullyQualifiedName")),
            (
                "DistinctAttribute",
                _ptr(item.get("distinctAttribute"), "resource.FullyQualifiedName"),
            ),
        ],
    )


def _configuration(item: Object) -> str:
    return _struct(
        "resource.DeviceConfiguration",
        [("Opaque", _ptr(item.get("opaque"), "resource.OpaqueDeviceConfiguration"))],
    )


def _claim_config(item: Object) -> str:
    return _struct(
        "resource.DeviceClaimConfiguration",
        [
            ("Requests", _strings(item.get("requests"))),
            ("DeviceConfiguration", _configuration(item)),
        ],
    )


def _claim_spec_text(spec: Object) -> str:
    devices = common.as_dict(spec.get("devices"))
    claim = _struct(
        "resource.DeviceClaim",
        [
            ("Requests", _slice(devices.get("requests"), "resource.DeviceRequest", _request)),
            (
                "Constraints",
                _slice(devices.get("constraints"), "resource.DeviceConstraint", _constraint),
            ),
            (
                "Config",
                _slice(devices.get("config"), "resource.DeviceClaimConfiguration", _claim_config),
            ),
        ],
    )
    return _struct("resource.ResourceClaimSpec", [("Devices", claim)])


def go_claim_spec(spec: Object) -> gostrings.GoValue:
    return gostrings.GoValue(_claim_spec_text(spec))


def _object_meta(meta: Object) -> str:
    return _struct(
        "v1.ObjectMeta",
        [
            ("Name", gostrings.quote(meta.get("name"))),
            ("GenerateName", gostrings.quote(meta.get("generateName"))),
            ("Labels", gostrings.string_map(meta.get("labels") or None)),
            ("Annotations", gostrings.string_map(meta.get("annotations") or None)),
        ],
    )


def go_template_spec(spec: Object) -> gostrings.GoValue:
    text = _struct(
        "resource.ResourceClaimTemplateSpec",
        [
            ("ObjectMeta", _object_meta(common.as_dict(spec.get("metadata")))),
            ("Spec", _claim_spec_text(common.as_dict(spec.get("spec")))),
        ],
    )
    return gostrings.GoValue(text)


def _result(item: Object) -> str:
    return _struct(
        "resource.DeviceRequestAllocationResult",
        [
            ("Request", gostrings.quote(item.get("request"))),
            ("Driver", gostrings.quote(item.get("driver"))),
            ("Pool", gostrings.quote(item.get("pool"))),
            ("Device", gostrings.quote(item.get("device"))),
            ("AdminAccess", _ptr(item.get("adminAccess"), "bool")),
        ],
    )


def go_allocation(allocation: Object) -> gostrings.GoValue:
    devices = common.as_dict(allocation.get("devices"))
    device_result = _struct(
        "resource.DeviceAllocationResult",
        [
            (
                "Results",
                _slice(devices.get("results"), "resource.DeviceRequestAllocationResult", _result),
            ),
            (
                "Config",
                _slice(
                    devices.get("config"), "resource.DeviceAllocationConfiguration", _claim_config
                ),
            ),
        ],
    )
    text = _struct(
        "resource.AllocationResult",
        [
            ("Devices", device_result),
            ("NodeSelector", _ptr(allocation.get("nodeSelector"), "core.NodeSelector")),
            ("AllocationTimestamp", _ptr(allocation.get("allocationTimestamp"), "v1.Time")),
        ],
    )
    return gostrings.GoValue(text)
