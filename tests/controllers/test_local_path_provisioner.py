"""The local-path provisioner with the PV binder, against a real in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.controllers.test_pv_binder import NS, claim, eventually, gone, wait_phase

from kajitori.client import rest
from kajitori.cmd import controller_manager
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager
from kajitori.controllers.volume import local_path_provisioner as lpp
from kajitori.controllers.volume import pv_util
from kajitori.server import local_path_storage

Object = dict[str, Any]


def _claim_with_uid(**annotations: str) -> Object:
    obj = claim("data", "2Gi", storage_class="standard")
    obj["metadata"].update(uid="1234", annotations=annotations)
    return obj


def test_planned_volume_is_a_node_local_host_path_for_the_claim() -> None:
    """Name, path, node affinity, size, modes, reclaim policy and claimRef as rancher's."""
    planned = lpp.plan_volume(
        _claim_with_uid(), local_path_storage.storage_class(), hostname="worker-1"
    )
    assert planned["metadata"]["name"] == "pvc-1234"
    assert planned["metadata"]["annotations"][pv_util.ANN_DYNAMICALLY_PROVISIONED] == (
        "rancher.io/local-path"
    )
    spec = planned["spec"]
    assert spec["hostPath"] == {
        "path": "/var/local-path-provisioner/pvc-1234_default_data",
        "type": "DirectoryOrCreate",
    }
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-1"]}
    ]
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["storageClassName"] == "standard"
    assert (spec["claimRef"]["name"], spec["claimRef"]["uid"]) == ("data", "1234")


@pytest.mark.parametrize(
    ("modes", "annotations", "problem"),
    [
        pytest.param(("ReadWriteOnce",), {pv_util.ANN_SELECTED_NODE: "n"}, "", id="ok"),
        pytest.param(
            ("ReadWriteOnce",), {}, "configuration error, no node was specified", id="no-node"
        ),
        pytest.param(
            ("ReadWriteMany",),
            {pv_util.ANN_SELECTED_NODE: "n"},
            "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes",
            id="rwx",
        ),
    ],
)
def test_provision_problem_refuses_what_rancher_refuses(
    modes: tuple[str, ...], annotations: dict[str, str], problem: str
) -> None:
    """Claims without a node or with shared access modes are refused with rancher's message."""
    obj = _claim_with_uid(**annotations)
    obj["spec"]["accessModes"] = list(modes)
    assert lpp.provision_problem(obj) == problem


@pytest.fixture
async def controllers(apiserver: APIServerProcess) -> AsyncIterator[manager.ControllerManager]:
    assert apiserver.http is not None and apiserver.pki is not None
    running = controller_manager.start_in_process(
        apiserver.http.app,
        apiserver.pki.ca,
        controllers=(
            "persistentvolume-binder",
            "local-path-provisioner",
            "pvc-protection",
            "pv-protection",
        ),
    )
    try:
        yield running
    finally:
        await controller_manager.stop(running)


async def test_bootstrap_installs_kinds_default_class(admin: rest.Client) -> None:
    """``standard`` is the default class: rancher.io/local-path, WaitForFirstConsumer, Delete."""
    found = await admin.get(rest.STORAGECLASSES, "standard")
    assert found["metadata"]["annotations"][pv_util.ANN_DEFAULT_CLASS] == "true"
    assert found["provisioner"] == "rancher.io/local-path"
    assert found["volumeBindingMode"] == "WaitForFirstConsumer"
    assert found["reclaimPolicy"] == "Delete"


async def test_claim_waits_for_a_node_then_gets_a_local_volume_and_binds(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Pending until selected-node is set; then pvc-<uid> on that node, Bound; delete frees it."""
    created = await admin.create(
        rest.PERSISTENTVOLUMECLAIMS, claim("data", "1Gi", storage_class=None)
    )
    uid = created["metadata"]["uid"]

    async def waiting_event() -> bool:
        found = await admin.list(
            rest.EVENTS, namespace=NS, field_selector="involvedObject.name=data"
        )
        return any(e["reason"] == "WaitForFirstConsumer" for e in found["items"])

    await eventually(waiting_event)
    assert await gone(admin, rest.PERSISTENTVOLUMES, f"pvc-{uid}")

    # What the scheduler's PreBind does for a pod using the claim.
    current = await admin.get(rest.PERSISTENTVOLUMECLAIMS, "data", namespace=NS)
    current["metadata"].setdefault("annotations", {})[pv_util.ANN_SELECTED_NODE] = "worker-2"
    await admin.update(rest.PERSISTENTVOLUMECLAIMS, current)

    bound = await wait_phase(admin, rest.PERSISTENTVOLUMECLAIMS, "data", "Bound")
    assert bound["spec"]["volumeName"] == f"pvc-{uid}"
    assert bound["metadata"]["annotations"][pv_util.ANN_STORAGE_PROVISIONER] == (
        "rancher.io/local-path"
    )
    pv = await wait_phase(admin, rest.PERSISTENTVOLUMES, f"pvc-{uid}", "Bound")
    values = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert values[0]["values"] == ["worker-2"]
    assert pv["spec"]["hostPath"]["path"] == f"/var/local-path-provisioner/pvc-{uid}_default_data"

    await admin.delete(rest.PERSISTENTVOLUMECLAIMS, "data", namespace=NS)
    await eventually(lambda: gone(admin, rest.PERSISTENTVOLUMES, f"pvc-{uid}"))


def test_provisioner_acts_as_the_identity_bootstrap_authorizes() -> None:
    """The controller manager's account for it is the one the bootstrap ClusterRole binds."""
    account = f"{local_path_storage.NAMESPACE}/{local_path_storage.SERVICE_ACCOUNT}"
    assert manager.CONTROLLERS["local-path-provisioner"].service_account == account
    assert (lpp.NAMESPACE, lpp.SERVICE_ACCOUNT) == (
        local_path_storage.NAMESPACE,
        local_path_storage.SERVICE_ACCOUNT,
    )
    # A client certificate's common name is at most 64 characters.
    assert len(f"system:serviceaccount:{lpp.NAMESPACE}:{lpp.SERVICE_ACCOUNT}") <= 64
