"""Validation of CSINodes (upstream: ValidateCSINode in pkg/apis/storage/validation).

Owns the driver list: each driver's name is a CSI driver name and unique,
its nodeID is required and at most 256 bytes (upstream's strategy always
allows the longer limit), ``allocatable.count`` is not negative, and its
topology keys are non-empty, unique qualified names. On update a driver
that keeps its name may change nothing but ``allocatable`` (the
MutableCSINodeAllocatableCount gate is on in 1.37); upstream reports such a
change at ``spec.drivers`` with the driver printed as Go's ``%#v``.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.storage_v1.validation import csidrivers
from kajitori.machinery import field, gostrings, names

Object = dict[str, Any]

MAX_NODE_ID_LENGTH = 256


def _dicts(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def _validate_node_id(node_id: str, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not node_id:
        errs.append(field.required(path))
    if len(node_id.encode()) > MAX_NODE_ID_LENGTH:
        detail = f"must be {MAX_NODE_ID_LENGTH} characters or less"
        errs.append(field.invalid(path, node_id, detail))
    return errs


def _validate_topology_keys(keys: Any, path: field.Path) -> field.ErrorList:
    # Every problem with a key is reported at the driver's own path, as upstream.
    errs = field.ErrorList()
    seen: set[str] = set()
    for key in keys if isinstance(keys, list) else []:
        text = str(key or "")
        if not text:
            errs.append(field.required(path))
        if text in seen:
            errs.append(field.duplicate(path, text))
        seen.add(text)
        errs.extend(field.invalid(path, text, m) for m in names.is_qualified_name(text))
    return errs


def _validate_driver(driver: Object, seen: set[str], path: field.Path) -> field.ErrorList:
    name = str(driver.get("name") or "")
    errs = csidrivers.validate_csi_driver_name(name, path.child("name"))
    errs.extend(_validate_node_id(str(driver.get("nodeID") or ""), path.child("nodeID")))
    count = common.dict_at(driver, "allocatable").get("count")
    if isinstance(count, int):
        errs.extend(common.validate_nonnegative(count, path.child("allocatable", "count")))
    if name in seen:
        errs.append(field.duplicate(path.child("name"), name))
    seen.add(name)
    errs.extend(_validate_topology_keys(driver.get("topologyKeys"), path))
    return errs


def validate_csi_node(obj: Object) -> field.ErrorList:
    """ValidateCSINode: a DNS-subdomain name (a node's) and valid drivers."""
    errs = common.validate_meta(obj, namespaced=False, name_validator=names.name_is_dns_subdomain)
    path = field.Path("spec", "drivers")
    seen: set[str] = set()
    for i, driver in enumerate(_dicts(common.dict_at(obj, "spec").get("drivers"))):
        errs.extend(_validate_driver(driver, seen, path.index(i)))
    return errs


def _go_driver(driver: Object) -> gostrings.GoValue:
    keys = driver.get("topologyKeys")
    return gostrings.struct(
        "storage.CSINodeDriver",
        (
            ("Name", gostrings.quote(driver.get("name"))),
            ("NodeID", gostrings.quote(driver.get("nodeID"))),
            ("TopologyKeys", gostrings.string_slice(keys if keys else None)),
            # Compared and printed without allocatable, which may change.
            ("Allocatable", gostrings.pointer(None, "storage.VolumeNodeResources")),
        ),
    )


def _without_allocatable(driver: Object) -> Object:
    return {k: v for k, v in driver.items() if k != "allocatable" and v not in (None, [])}


def validate_csi_node_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateCSINodeUpdate: the new object, then drivers kept by name must not change."""
    errs = common.validate_meta_update(new, old)
    errs.extend(validate_csi_node(new))
    new_drivers = _dicts(common.dict_at(new, "spec").get("drivers"))
    for old_driver in _dicts(common.dict_at(old, "spec").get("drivers")):
        for new_driver in new_drivers:
            if old_driver.get("name") != new_driver.get("name"):
                continue
            if _without_allocatable(new_driver) != _without_allocatable(old_driver):
                errs.append(
                    field.invalid(
                        field.Path("spec", "drivers"), _go_driver(new_driver), common.IMMUTABLE
                    )
                )
    return errs
