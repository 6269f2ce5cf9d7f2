"""PersistentVolume and PersistentVolumeClaim validation against upstream's messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.core_v1.validation import persistentvolumeclaims as pvcs
from kajitori.api.core_v1.validation import persistentvolumes as pvs

Object = dict[str, Any]


def volume(**spec: Any) -> Object:
    base: Object = {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/data"},
        "persistentVolumeReclaimPolicy": "Retain",
        "volumeMode": "Filesystem",
    }
    base.update(spec)
    return {"metadata": {"name": "pv1", "resourceVersion": "1"}, "spec": base}


def claim(*, phase: str = "Pending", **spec: Any) -> Object:
    base: Object = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "volumeMode": "Filesystem",
    }
    base.update(spec)
    return {
        "metadata": {"name": "c", "namespace": "default", "resourceVersion": "1"},
        "spec": base,
        "status": {"phase": phase},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(volume(), [], id="valid"),
        pytest.param(volume(accessModes=[]), ["spec.accessModes: Required value"], id="no-modes"),
        pytest.param(
            volume(accessModes=["ReadWriteSometimes"]),
            [
                'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
                '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'
            ],
            id="bad-mode",
        ),
        pytest.param(
            volume(accessModes=["ReadWriteOncePod", "ReadOnlyMany"]),
            ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"],
            id="rwop-mixed",
        ),
        pytest.param(
            volume(capacity={}),
            [
                "spec.capacity: Required value",
                'spec.capacity: Unsupported value: {}: supported values: "storage"',
            ],
            id="no-capacity",
        ),
        pytest.param(
            volume(capacity={"storage": "0"}),
            ['spec.capacity[storage]: Invalid value: "0": must be greater than zero'],
            id="zero-capacity",
        ),
        pytest.param(
            volume(hostPath=None),
            ["spec: Required value: must specify a volume type"],
            id="no-source",
        ),
        pytest.param(
            volume(nfs={"server": "s", "path": "/x"}),
            ["spec.nfs: Forbidden: may not specify more than 1 volume type"],
            id="two-sources",
        ),
        pytest.param(
            volume(hostPath=None, nfs={"path": "x"}),
            [
                "spec.nfs.server: Required value",
                'spec.nfs.path: Invalid value: "x": must be an absolute path',
            ],
            id="nfs-relative",
        ),
        pytest.param(
            volume(persistentVolumeReclaimPolicy="Keep"),
            [
                'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
                '"Delete", "Recycle", "Retain"'
            ],
            id="bad-reclaim-policy",
        ),
        pytest.param(
            volume(volumeMode="Raw"),
            ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
            id="bad-volume-mode",
        ),
    ],
)
def test_validate_persistent_volume(obj: Object, expected: list[str]) -> None:
    """Typical PV mistakes give upstream's paths and messages."""
    assert [str(e) for e in pvs.validate_persistent_volume(obj)] == expected


def test_volume_source_is_immutable() -> None:
    """Changing the source of an existing PV is forbidden; capacity may change."""
    old = volume()
    grown = volume(capacity={"storage": "2Gi"})
    assert pvs.validate_persistent_volume_update(grown, old) == []
    moved = volume(hostPath={"path": "/elsewhere"})
    assert [str(e) for e in pvs.validate_persistent_volume_update(moved, old)] == [
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"
    ]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(claim(), [], id="valid"),
        pytest.param(
            claim(accessModes=None),
            ["spec.accessModes: Required value: at least 1 access mode is required"],
            id="no-modes",
        ),
        pytest.param(
            claim(resources={}), ["spec.resources[storage]: Required value"], id="no-storage"
        ),
        pytest.param(
            claim(resources={"requests": {"storage": "-1Gi"}}),
            ['spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero'],
            id="negative-storage",
        ),
        pytest.param(
            claim(storageClassName="Fast_SSD"),
            [
                'spec.storageClassName: Invalid value: "Fast_SSD": a lowercase RFC 1123 subdomain '
                "must consist of lower case alphanumeric characters, '-' or '.', and must start "
                "and end with an alphanumeric character (e.g. 'example.com', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
            id="bad-class-name",
        ),
    ],
)
def test_validate_persistent_volume_claim(obj: Object, expected: list[str]) -> None:
    """Typical PVC mistakes give upstream's paths and messages."""
    assert [str(e) for e in pvcs.validate_persistent_volume_claim(obj)] == expected


SPEC_IMMUTABLE = (
    "spec: Forbidden: spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims"
)


def _resized(obj: Object, size: str) -> Object:
    new = copy.deepcopy(obj)
    new["spec"]["resources"]["requests"]["storage"] = size
    return new


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(claim(), claim(volumeName="pv1"), [], id="volume-name-set-once"),
        pytest.param(
            claim(volumeName="pv1"),
            claim(volumeName="pv2"),
            [SPEC_IMMUTABLE],
            id="volume-name-changed",
        ),
        pytest.param(
            claim(phase="Bound"), _resized(claim(phase="Bound"), "2Gi"), [], id="bound-grows"
        ),
        pytest.param(claim(), _resized(claim(), "2Gi"), [SPEC_IMMUTABLE], id="unbound-grows"),
        pytest.param(
            claim(accessModes=["ReadWriteOnce"]),
            claim(accessModes=["ReadWriteMany"]),
            [SPEC_IMMUTABLE],
            id="modes-changed",
        ),
        pytest.param(claim(), claim(storageClassName="fast"), [], id="class-set-from-nil"),
        pytest.param(
            claim(storageClassName="fast"),
            claim(storageClassName="slow"),
            [SPEC_IMMUTABLE],
            id="class-changed",
        ),
        pytest.param(
            claim(volumeAttributesClassName="gold"),
            claim(),
            [
                "spec.volumeAttributesClassName: Forbidden: update from non-nil value to nil is forbidden"
            ],
            id="attributes-class-unset",
        ),
        pytest.param(
            claim(volumeAttributesClassName="gold"),
            claim(volumeAttributesClassName="silver"),
            [],
            id="attributes-class-changed",
        ),
    ],
)
def test_validate_persistent_volume_claim_update(
    old: Object, new: Object, expected: list[str]
) -> None:
    """Claims are immutable except for upstream's listed exceptions."""
    assert [str(e) for e in pvcs.validate_persistent_volume_claim_update(new, old)] == expected


def test_bound_claim_cannot_shrink_to_its_capacity() -> None:
    """Shrinking a bound claim is only allowed to above status.capacity (failed expansion recovery)."""
    old = _resized(claim(phase="Bound"), "10Gi")
    old["status"]["capacity"] = {"storage": "5Gi"}
    assert pvcs.validate_persistent_volume_claim_update(_resized(old, "6Gi"), old) == []
    errs = pvcs.validate_persistent_volume_claim_update(_resized(old, "5Gi"), old)
    assert [str(e) for e in errs] == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
    ]


def test_access_modes_print_in_fixed_order() -> None:
    """RWO, ROX, RWX, RWOP regardless of the order written, without duplicates."""
    modes = ["ReadWriteOncePod", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"]
    assert pvs.access_modes_string(modes) == "RWO,RWX,RWOP"
