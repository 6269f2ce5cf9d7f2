"""PersistentVolume and PersistentVolumeClaim registry wiring: status handling and tables."""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.registry.core import persistentvolumeclaims, persistentvolumes

Object = dict[str, Any]

NOW = datetime.datetime(2024, 1, 1, 1, tzinfo=datetime.UTC)
CREATED = "2024-01-01T00:00:00Z"


def test_new_volume_is_pending_with_a_transition_time() -> None:
    """Create resets status to Pending and stamps lastPhaseTransitionTime."""
    obj: Object = {"metadata": {"name": "pv"}, "spec": {}, "status": {"phase": "Bound"}}
    persistentvolumes.STRATEGY.prepare_for_create(obj)
    assert obj["status"]["phase"] == "Pending"
    assert obj["status"]["lastPhaseTransitionTime"].endswith("Z")


def test_status_phase_change_restamps_transition_time() -> None:
    """A phase change through /status gets a new time; an unchanged phase keeps the old one."""
    status_strategy = persistentvolumes.RESOURCE.status
    assert status_strategy is not None
    old: Object = {
        "metadata": {"name": "pv"},
        "spec": {"a": 1},
        "status": {"phase": "Pending", "lastPhaseTransitionTime": CREATED},
    }
    same: Object = {"metadata": {"name": "pv"}, "spec": {"a": 2}, "status": {"phase": "Pending"}}
    status_strategy.prepare_for_update(same, old)
    assert same["status"]["lastPhaseTransitionTime"] == CREATED
    assert same["spec"] == {"a": 1}
    bound: Object = {
        "metadata": {"name": "pv"},
        "spec": {},
        "status": {"phase": "Bound", "lastPhaseTransitionTime": CREATED},
    }
    status_strategy.prepare_for_update(bound, old)
    assert bound["status"]["lastPhaseTransitionTime"] != CREATED


def test_persistent_volume_row() -> None:
    """All columns of upstream's printPersistentVolume, VOLUMEMODE last (wide)."""
    obj: Object = {
        "metadata": {"name": "pv1", "creationTimestamp": CREATED},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "default", "name": "data"},
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    }
    assert list(persistentvolumes.persistent_volume_row(obj, NOW)) == [
        "pv1",
        "5Gi",
        "RWO,RWX",
        "Retain",
        "Bound",
        "default/data",
        "standard",
        "<unset>",
        "",
        "60m",
        "Filesystem",
    ]
    names = [
        (c["name"], c["priority"]) for c in persistentvolumes.RESOURCE.table.column_definitions
    ]
    assert names[-1] == ("VolumeMode", 1)
    assert [n for n, _ in names] == [
        "Name",
        "Capacity",
        "Access Modes",
        "Reclaim Policy",
        "Status",
        "Claim",
        "StorageClass",
        "VolumeAttributesClass",
        "Reason",
        "Age",
        "VolumeMode",
    ]


def test_claim_row_shows_capacity_only_when_bound() -> None:
    """A pending claim has empty VOLUME/CAPACITY/ACCESS MODES; a bound one shows its status."""
    pending: Object = {
        "metadata": {
            "name": "data",
            "creationTimestamp": CREATED,
            "annotations": {"volume.beta.kubernetes.io/storage-class": "old"},
        },
        "spec": {"storageClassName": "new", "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    }
    assert list(persistentvolumeclaims.persistent_volume_claim_row(pending, NOW)) == [
        "data",
        "Pending",
        "",
        "",
        "",
        "old",
        "<unset>",
        "60m",
        "Filesystem",
    ]
    bound: Object = {
        "metadata": {"name": "data", "creationTimestamp": CREATED, "deletionTimestamp": CREATED},
        "spec": {"volumeName": "pv1", "storageClassName": "fast"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
        },
    }
    assert list(persistentvolumeclaims.persistent_volume_claim_row(bound, NOW)) == [
        "data",
        "Terminating",
        "pv1",
        "1Gi",
        "RWO",
        "fast",
        "<unset>",
        "60m",
        "<unset>",
    ]


def test_claim_create_and_update_handle_status() -> None:
    """Create starts Pending; the main endpoint keeps the stored status."""
    obj: Object = {"metadata": {"name": "c"}, "spec": {}, "status": {"phase": "Bound"}}
    persistentvolumeclaims.STRATEGY.prepare_for_create(obj)
    assert obj["status"] == {"phase": "Pending"}
    new: Object = {"metadata": {"name": "c"}, "spec": {}, "status": {"phase": "Lost"}}
    persistentvolumeclaims.STRATEGY.prepare_for_update(new, {"status": {"phase": "Bound"}})
    assert new["status"] == {"phase": "Bound"}
    assert persistentvolumeclaims.RESOURCE.short_names == ("pvc",)
    assert persistentvolumes.RESOURCE.namespaced is False
