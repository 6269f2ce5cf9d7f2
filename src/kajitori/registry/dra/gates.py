"""Fields of DRA features that are off by default in 1.37, dropped on write.

Upstream's strategies clear a disabled feature's fields on create, and on
update unless the stored object already uses the feature (so an old object
keeps what it had). 1.37's defaults: DRADerivedAttributes,
DRAListTypeAttributes, DRANodeAllocatableResources,
DRADeviceCompatibilityGroups, DRAOptionalNodeOperations and the pool-status
work (partitionTypeAttribute) are off; DRAPrioritizedList, DRAAdminAccess,
DRAResourceClaimDeviceStatus, DRADeviceTaints, DRADeviceTaintRules,
DRAExtendedResource, DRAPartitionableDevices, DRAConsumableCapacity and
DRADeviceBindingConditions are on, so their fields stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Object = dict[str, Any]

_LIST_ATTRIBUTES = ("bools", "ints", "strings", "versions")


def _dicts(value: Any) -> Iterator[Object]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _request_shapes(spec: Object) -> Iterator[Object]:
    for request in _dicts(_dict(spec.get("devices")).get("requests")):
        if isinstance(request.get("exactly"), dict):
            yield request["exactly"]
        yield from _dicts(request.get("firstAvailable"))


def _results(claim: Object) -> Iterator[Object]:
    allocation = _dict(_dict(claim.get("status")).get("allocation"))
    yield from _dicts(_dict(allocation.get("devices")).get("results"))


def _uses(items: Iterator[Object], key: str) -> bool:
    return any(item.get(key) is not None for item in items)


def _drop(items: Iterator[Object], key: str) -> None:
    for item in items:
        item.pop(key, None)


def drop_disabled_claim_spec_fields(spec: Object, old_spec: Object | None) -> None:
    """DRADerivedAttributes: a request's ``derivedAttributes``."""
    if old_spec is None or not _uses(_request_shapes(old_spec), "derivedAttributes"):
        _drop(_request_shapes(spec), "derivedAttributes")


def drop_disabled_claim_fields(claim: Object, old: Object | None) -> None:
    drop_disabled_claim_spec_fields(
        _dict(claim.get("spec")), None if old is None else _dict(old.get("spec"))
    )
    # DRAOptionalNodeOperations: an allocation result's ``skipNodeOperations``.
    if old is None or not _uses(_results(old), "skipNodeOperations"):
        _drop(_results(claim), "skipNodeOperations")


def _devices(slice_: Object) -> Iterator[Object]:
    yield from _dicts(_dict(slice_.get("spec")).get("devices"))


def _list_attributes_in_use(slice_: Object) -> bool:
    return any(
        key in attribute
        for device in _devices(slice_)
        for attribute in _dict(device.get("attributes")).values()
        if isinstance(attribute, dict)
        for key in _LIST_ATTRIBUTES
    )


def _consumptions(slice_: Object) -> Iterator[Object]:
    for device in _devices(slice_):
        yield from _dicts(device.get("consumesCounters"))


def drop_disabled_slice_fields(slice_: Object, old: Object | None) -> None:
    spec, old_spec = _dict(slice_.get("spec")), _dict((old or {}).get("spec"))
    if old is None or not _list_attributes_in_use(old):
        for device in _devices(slice_):
            for attribute in _dict(device.get("attributes")).values():
                if isinstance(attribute, dict):
                    for key in _LIST_ATTRIBUTES:
                        attribute.pop(key, None)
    if old is None or not _uses(_devices(old), "nodeAllocatableResources"):
        _drop(_devices(slice_), "nodeAllocatableResources")
    if old is None or not _uses(_consumptions(old), "compatibilityGroups"):
        _drop(_consumptions(slice_), "compatibilityGroups")
    for key in ("partitionTypeAttribute", "skipNodeOperations"):
        if old_spec.get(key) is None:
            spec.pop(key, None)
