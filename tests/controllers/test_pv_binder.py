"""The PV binder (and the protection controllers) against a real in-process API server."""

from __future__ import annotations

from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import manager
from kajitori.controllers.volume import pv_binder, pv_util

Object = dict[str, Any]
NS = "default"


def volume(
    name: str,
    size: str,
    *,
    storage_class: str = "manual",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    policy: str = "Retain",
    labels: Object | None = None,
    claim_ref: Object | None = None,
) -> Object:
    spec: Object = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "persistentVolumeReclaimPolicy": policy,
        "storageClassName": storage_class,
        "hostPath": {"path": f"/data/{name}"},
    }
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def claim(
    name: str,
    size: str,
    *,
    storage_class: str | None = "manual",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    volume_name: str = "",
    selector: Object | None = None,
) -> Object:
    spec: Object = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name:
        spec["volumeName"] = volume_name
    if selector is not None:
        spec["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


# ----- pure matching ---------------------------------------------------------------


def _with_meta(obj: Object, **meta: Any) -> Object:
    return {**obj, "metadata": {**obj["metadata"], **meta}}


@pytest.mark.parametrize(
    ("volumes", "wanted", "expected"),
    [
        pytest.param(
            [volume("big", "10Gi"), volume("small", "2Gi"), volume("tiny", "500Mi")],
            claim("c", "1Gi"),
            "small",
            id="smallest-that-fits",
        ),
        pytest.param(
            [volume("other", "1Gi", storage_class="fast"), volume("mine", "5Gi")],
            claim("c", "1Gi"),
            "mine",
            id="class-must-match",
        ),
        pytest.param(
            [volume("rwo", "1Gi"), volume("rwx", "2Gi", modes=("ReadWriteMany", "ReadWriteOnce"))],
            claim("c", "1Gi", modes=("ReadWriteMany",)),
            "rwx",
            id="access-modes-contained",
        ),
        pytest.param(
            [volume("a", "1Gi", labels={"tier": "a"}), volume("b", "3Gi", labels={"tier": "b"})],
            claim("c", "1Gi", selector={"matchLabels": {"tier": "b"}}),
            "b",
            id="selector",
        ),
        pytest.param(
            [
                volume("free", "1Gi"),
                volume("mine", "9Gi", claim_ref={"namespace": NS, "name": "c"}),
            ],
            claim("c", "1Gi"),
            "mine",
            id="pre-bound-claim-ref-wins",
        ),
        pytest.param(
            [volume("taken", "1Gi", claim_ref={"namespace": NS, "name": "other"})],
            claim("c", "1Gi"),
            None,
            id="bound-elsewhere-is-skipped",
        ),
        pytest.param(
            [volume("small", "500Mi")],
            claim("c", "1Gi"),
            None,
            id="too-small",
        ),
    ],
)
def test_find_matching_volume_follows_upstreams_rules(
    volumes: list[Object], wanted: Object, expected: str | None
) -> None:
    """Class, modes, size (smallest fit), selector and claimRef decide the match."""
    found = pv_util.find_matching_volume(wanted, volumes)
    assert (found["metadata"]["name"] if found else None) == expected


def test_delay_binding_leaves_free_volumes_to_the_scheduler() -> None:
    """Without a node, a WaitForFirstConsumer claim only takes a volume pre-bound to it."""
    free = volume("free", "1Gi")
    prebound = volume("pre", "1Gi", claim_ref={"namespace": NS, "name": "c"})
    assert pv_util.find_matching_volume(claim("c", "1Gi"), [free], delay_binding=True) is None
    found = pv_util.find_matching_volume(claim("c", "1Gi"), [free, prebound], delay_binding=True)
    assert found is prebound


def test_node_affinity_restricts_matching_to_the_node() -> None:
    """With a node, a volume whose node affinity excludes it does not match."""
    local = volume("local", "1Gi")
    local["spec"]["nodeAffinity"] = {
        "required": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}
                    ]
                }
            ]
        }
    }
    node_a = {"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}}}
    node_b = {"metadata": {"name": "b", "labels": {"kubernetes.io/hostname": "b"}}}
    assert pv_util.find_matching_volume(claim("c", "1Gi"), [local], node=node_a) is local
    assert pv_util.find_matching_volume(claim("c", "1Gi"), [local], node=node_b) is None


# ----- against the API ---------------------------------------------------------------


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """The binder and both protection controllers, each as its own ServiceAccount."""
    return await start_controllers("persistentvolume-binder", "pvc-protection", "pv-protection")


async def get_claim(client: rest.Client, name: str) -> Object:
    return await client.get(rest.PERSISTENTVOLUMECLAIMS, name, namespace=NS)


async def get_volume(client: rest.Client, name: str) -> Object:
    return await client.get(rest.PERSISTENTVOLUMES, name)


async def wait_phase(client: rest.Client, kind: rest.Resource, name: str, phase: str) -> Object:
    async def check() -> Object | None:
        try:
            obj = await client.get(kind, name, namespace=NS if kind.namespaced else "")
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise
        return obj if pv_util.phase(obj) == phase else None

    found: Object = await eventually(check)
    return found


async def gone(client: rest.Client, kind: rest.Resource, name: str) -> bool:
    try:
        await client.get(kind, name, namespace=NS if kind.namespaced else "")
    except rest.ApiError as exc:
        return exc.not_found
    return False


async def test_claim_binds_to_the_smallest_fitting_volume(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Both sides end Bound, with upstream's annotations, claimRef and the status capacity."""
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-big", "10Gi"))
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-small", "2Gi"))
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("data", "1Gi"))

    bound = await wait_phase(admin, rest.PERSISTENTVOLUMECLAIMS, "data", "Bound")
    assert bound["spec"]["volumeName"] == "pv-small"
    assert bound["status"]["capacity"] == {"storage": "2Gi"}
    assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
    annotations = bound["metadata"]["annotations"]
    assert annotations[pv_util.ANN_BIND_COMPLETED] == "yes"
    assert annotations[pv_util.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert pv_util.PVC_PROTECTION_FINALIZER in bound["metadata"]["finalizers"]

    pv = await wait_phase(admin, rest.PERSISTENTVOLUMES, "pv-small", "Bound")
    assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    assert pv["metadata"]["annotations"][pv_util.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert pv_util.PV_PROTECTION_FINALIZER in pv["metadata"]["finalizers"]
    assert pv_util.phase(await get_volume(admin, "pv-big")) == "Available"


async def test_retained_volume_is_released_when_its_claim_goes(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Deleting the claim (unused, so protection lets it go) leaves a Retain volume Released."""
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-keep", "1Gi"))
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("keep", "1Gi"))
    await wait_phase(admin, rest.PERSISTENTVOLUMECLAIMS, "keep", "Bound")

    await admin.delete(rest.PERSISTENTVOLUMECLAIMS, "keep", namespace=NS)
    await eventually(lambda: gone(admin, rest.PERSISTENTVOLUMECLAIMS, "keep"))
    released = await wait_phase(admin, rest.PERSISTENTVOLUMES, "pv-keep", "Released")
    assert released["spec"]["claimRef"]["name"] == "keep"


async def test_manual_volume_with_delete_policy_fails_without_a_deleter(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """No deleter plugin exists for a hand-made volume: it goes Failed with upstream's message."""
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-del", "1Gi", policy="Delete"))
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("del", "1Gi"))
    await wait_phase(admin, rest.PERSISTENTVOLUMECLAIMS, "del", "Bound")
    await admin.delete(rest.PERSISTENTVOLUMECLAIMS, "del", namespace=NS)
    failed = await wait_phase(admin, rest.PERSISTENTVOLUMES, "pv-del", "Failed")
    assert "no deletable volume plugin matched" in failed["status"]["message"]


async def test_volume_name_pre_binds_a_claim_to_that_volume(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A claim naming ``spec.volumeName`` gets that volume even when a smaller one fits."""
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-tiny", "1Gi"))
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-chosen", "8Gi"))
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("pick", "1Gi", volume_name="pv-chosen"))
    bound = await wait_phase(admin, rest.PERSISTENTVOLUMECLAIMS, "pick", "Bound")
    assert bound["spec"]["volumeName"] == "pv-chosen"
    # The user chose the volume: the claim is not marked bound-by-controller.
    assert pv_util.ANN_BOUND_BY_CONTROLLER not in bound["metadata"]["annotations"]
    assert pv_util.phase(await get_volume(admin, "pv-tiny")) == "Available"


async def test_claim_ref_pre_binds_a_volume_to_a_claim(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A volume whose claimRef names a claim is bound to it, not to an earlier fitting claim."""
    ref = {"namespace": NS, "name": "reserved"}
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("first", "1Gi"))
    await admin.create(rest.PERSISTENTVOLUMES, volume("pv-ref", "1Gi", claim_ref=ref))
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("reserved", "1Gi"))
    bound = await wait_phase(admin, rest.PERSISTENTVOLUMECLAIMS, "reserved", "Bound")
    assert bound["spec"]["volumeName"] == "pv-ref"
    pv = await get_volume(admin, "pv-ref")
    assert pv_util.ANN_BOUND_BY_CONTROLLER not in (pv["metadata"].get("annotations") or {})
    assert pv_util.phase(await get_claim(admin, "first")) == "Pending"


async def test_claim_of_a_class_without_volumes_is_handed_to_its_provisioner(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """An Immediate class's claim gets the storage-provisioner annotations and stays Pending."""
    storage_class = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "external"},
        "provisioner": "example.com/external",
    }
    await admin.create(rest.STORAGECLASSES, storage_class)
    # A claim synced before the binder has seen its class waits for the periodic
    # resync (upstream's too), which is longer than this test waits.
    binder = controllers.controllers["persistentvolume-binder"]
    assert isinstance(binder, pv_binder.PersistentVolumeController)

    async def class_known() -> bool:
        return binder.classes.indexer.get("external") is not None

    await eventually(class_known)
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("ext", "1Gi", storage_class="external"))

    async def annotated() -> bool:
        found = pv_util.annotations(await get_claim(admin, "ext"))
        return found.get(pv_util.ANN_STORAGE_PROVISIONER) == "example.com/external"

    await eventually(annotated)
    found = await get_claim(admin, "ext")
    assert (
        found["metadata"]["annotations"][pv_util.ANN_BETA_STORAGE_PROVISIONER]
        == "example.com/external"
    )
    assert pv_util.phase(found) == "Pending"


async def test_claim_without_a_class_gets_the_default_class(admin: rest.Client) -> None:
    """DefaultStorageClass admission: no storageClassName means kind's ``standard``."""
    created = await admin.create(
        rest.PERSISTENTVOLUMECLAIMS, claim("dflt", "1Gi", storage_class=None)
    )
    assert created["spec"]["storageClassName"] == "standard"
    explicit = await admin.create(
        rest.PERSISTENTVOLUMECLAIMS, claim("none", "1Gi", storage_class="")
    )
    assert explicit["spec"]["storageClassName"] == ""


async def test_claim_used_by_a_pod_is_deleted_only_after_the_pod(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """pvc-protection keeps a claim a pod mounts until that pod is gone."""
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("used", "1Gi"))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "user", "namespace": NS},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "used"}}],
        },
    }
    await admin.create(rest.PODS, pod, namespace=NS)
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, claim("unused", "1Gi"))
    await admin.delete(rest.PERSISTENTVOLUMECLAIMS, "used", namespace=NS)
    await admin.delete(rest.PERSISTENTVOLUMECLAIMS, "unused", namespace=NS)

    # Once the controller has let the unused claim go, it has judged the used one too.
    await eventually(lambda: gone(admin, rest.PERSISTENTVOLUMECLAIMS, "unused"))
    held = await get_claim(admin, "used")
    assert held["metadata"].get("deletionTimestamp")
    assert pv_util.PVC_PROTECTION_FINALIZER in held["metadata"]["finalizers"]

    await admin.delete(rest.PODS, "user", namespace=NS, grace_period_seconds=0)
    await eventually(lambda: gone(admin, rest.PERSISTENTVOLUMECLAIMS, "used"))
