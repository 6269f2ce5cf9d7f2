"""The garbage collector's three propagation policies, through ``kajitori up`` and kubectl."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster


def _configmap(
    cluster: KajitoriCluster, name: str, *, owner: str = "", finalizers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Create a ConfigMap in default, owned (blockOwnerDeletion) by ConfigMap ``owner`` if given."""
    metadata: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        owner_obj = _get(cluster, owner)
        assert owner_obj is not None
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner,
                "uid": owner_obj["metadata"]["uid"],
                "blockOwnerDeletion": True,
            }
        ]
    if finalizers:
        metadata["finalizers"] = list(finalizers)
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(manifest))
    found = _get(cluster, name)
    assert found is not None
    return found


def _get(cluster: KajitoriCluster, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "configmap", name, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _wait_until_gone(cluster: KajitoriCluster, name: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _get(cluster, name) is not None:
        assert time.monotonic() < deadline, f"{name} was not collected"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "cascade", [pytest.param("background", id="background"), pytest.param("foreground", id="fg")]
)
def test_a_dependent_is_deleted_with_its_owner(cluster: KajitoriCluster, cascade: str) -> None:
    """Deleting the owner (background or foreground) deletes the ConfigMap it owns."""
    _configmap(cluster, f"owner-{cascade}")
    _configmap(cluster, f"dependent-{cascade}", owner=f"owner-{cascade}")
    cluster.kubectl("delete", "configmap", f"owner-{cascade}", f"--cascade={cascade}")
    _wait_until_gone(cluster, f"dependent-{cascade}")
    assert _get(cluster, f"owner-{cascade}") is None


def test_foreground_deletion_removes_the_owner_only_after_its_dependents(
    cluster: KajitoriCluster,
) -> None:
    """A blocking dependent held by a finalizer keeps the owner; releasing it lets both go."""
    _configmap(cluster, "fg-owner")
    _configmap(cluster, "fg-dependent", owner="fg-owner", finalizers=("example.com/hold",))
    cluster.kubectl("delete", "configmap", "fg-owner", "--cascade=foreground", "--wait=false")
    deadline = time.monotonic() + 10
    while not (_get(cluster, "fg-dependent") or {}).get("metadata", {}).get("deletionTimestamp"):
        assert time.monotonic() < deadline, "the dependent was never deleted"
        time.sleep(0.1)
    owner = _get(cluster, "fg-owner")
    assert owner is not None
    assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert owner["metadata"]["deletionTimestamp"]
    cluster.kubectl(
        "patch",
        "configmap",
        "fg-dependent",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    _wait_until_gone(cluster, "fg-dependent")
    _wait_until_gone(cluster, "fg-owner")


def test_orphan_deletion_keeps_the_dependent_without_its_owner_reference(
    cluster: KajitoriCluster,
) -> None:
    """``--cascade=orphan``: the owner goes, the dependent stays with the reference removed."""
    _configmap(cluster, "orphan-owner")
    _configmap(cluster, "orphan-dependent", owner="orphan-owner")
    cluster.kubectl("delete", "configmap", "orphan-owner", "--cascade=orphan")
    assert _get(cluster, "orphan-owner") is None
    dependent = _get(cluster, "orphan-dependent")
    assert dependent is not None
    assert not dependent["metadata"].get("ownerReferences")


def test_an_object_whose_owner_never_existed_is_collected(cluster: KajitoriCluster) -> None:
    """Owner references to a UID nobody has are dangling: the object is deleted."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "stray",
            "namespace": "default",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "no-such-uid"}
            ],
        },
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(manifest))
    _wait_until_gone(cluster, "stray")
