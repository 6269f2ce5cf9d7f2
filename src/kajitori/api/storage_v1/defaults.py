"""Defaulting for storage.k8s.io/v1 objects (upstream: pkg/apis/storage/v1/defaults.go).

StorageClasses get reclaimPolicy Delete and volumeBindingMode Immediate. In
place and idempotent.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]

DEFAULT_RECLAIM_POLICY = "Delete"
DEFAULT_VOLUME_BINDING_MODE = "Immediate"


def set_defaults_storage_class(obj: Object) -> None:
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = DEFAULT_RECLAIM_POLICY
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = DEFAULT_VOLUME_BINDING_MODE


def set_defaults_csi_driver(obj: Object) -> None:
    """SetDefaults_CSIDriver, with 1.37's gates (SELinuxMountReadWriteOncePod on)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    for key, value in (
        ("attachRequired", True),
        ("podInfoOnMount", False),
        ("storageCapacity", False),
        ("fsGroupPolicy", "ReadWriteOnceWithFSType"),
        ("requiresRepublish", False),
        ("seLinuxMount", False),
    ):
        if spec.get(key) is None:
            spec[key] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]
