"""VolumeBinding: Filter over claims, volumes and classes; Reserve and PreBind's writes and wait."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import pytest
from tests.scheduler import helpers

from kajitori.client import rest
from kajitori.controllers.volume import pv_util
from kajitori.scheduler import framework, scheduler
from kajitori.scheduler.plugins import volume_binding

Object = dict[str, Any]
make_node, make_pod, info = helpers.make_node, helpers.make_pod, helpers.info
NS = "default"


class Listers:
    """``VolumeListers`` over plain dicts."""

    def __init__(self) -> None:
        self.claims: dict[str, Object] = {}
        self.pvs: dict[str, Object] = {}
        self.classes: dict[str, Object] = {
            "standard": {
                "metadata": {"name": "standard"},
                "provisioner": "rancher.io/local-path",
                "volumeBindingMode": "WaitForFirstConsumer",
            },
            "local": {
                "metadata": {"name": "local"},
                "provisioner": volume_binding.NO_PROVISIONER,
                "volumeBindingMode": "WaitForFirstConsumer",
            },
            "fast": {"metadata": {"name": "fast"}, "provisioner": "example.com/fast"},
        }

    def claim(self, namespace: str, name: str) -> Object | None:
        return self.claims.get(f"{namespace}/{name}")

    def volume(self, name: str) -> Object | None:
        return self.pvs.get(name)

    def volumes(self) -> list[Object]:
        return list(self.pvs.values())

    def storage_class(self, name: str) -> Object | None:
        return self.classes.get(name)

    def add_claim(self, name: str, storage_class: str = "standard", **extra: Any) -> Object:
        claim = {
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "annotations": {}},
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                **extra,
            },
            "status": {"phase": "Pending"},
        }
        self.claims[f"{NS}/{name}"] = claim
        return claim

    def add_volume(self, name: str, *, node: str = "", storage_class: str = "local") -> Object:
        spec: Object = {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
        }
        if node:
            spec["nodeAffinity"] = {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            }
        pv = {"metadata": {"name": name}, "spec": spec, "status": {"phase": "Available"}}
        self.pvs[name] = pv
        return pv

    def bind(self, claim_name: str, volume_name: str) -> None:
        """What the PV binder writes once it binds the two."""
        claim = self.claims[f"{NS}/{claim_name}"]
        claim["spec"]["volumeName"] = volume_name
        claim["metadata"]["annotations"][pv_util.ANN_BIND_COMPLETED] = "yes"
        claim["status"]["phase"] = "Bound"
        pv = self.pvs[volume_name]
        pv["spec"]["claimRef"] = {"namespace": NS, "name": claim_name, "uid": f"uid-{claim_name}"}
        pv["status"]["phase"] = "Bound"


class FakeClient:
    """Records updates (resource plural, object) as PreBind makes them."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Object]] = []

    async def update(self, resource: rest.Resource, body: Object) -> Object:
        self.updates.append((resource.plural, copy.deepcopy(body)))
        return body


def with_claims(*names: str, name: str = "p") -> Object:
    volumes = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": n}} for i, n in enumerate(names)
    ]
    return make_pod(name, volumes=volumes)


NODES = [info(make_node("a")), info(make_node("b"))]


def run(listers: Listers, pod: Object) -> str:
    profile = scheduler.default_profile(volume_binding.VolumeBinding(listers))
    return scheduler.schedule_pod(pod, NODES, profile)


def fit_message(listers: Listers, pod: Object) -> str:
    with pytest.raises(framework.FitError) as caught:
        run(listers, pod)
    return caught.value.message


def test_a_pod_without_claims_costs_the_plugin_nothing() -> None:
    """PreFilter skips it and Filter never reads a lister (the 300 pods/s path)."""

    class Exploding(Listers):
        def claim(self, namespace: str, name: str) -> Object | None:
            raise AssertionError("read a claim for a pod without claims")

        def volumes(self) -> list[Object]:
            raise AssertionError("listed volumes for a pod without claims")

    plugin = volume_binding.VolumeBinding(Exploding())
    state: framework.CycleState = {}
    pod = make_pod(volumes=[{"name": "cfg", "configMap": {"name": "c"}}])
    assert plugin.pre_filter(state, pod, NODES).code == framework.Code.SKIP
    assert plugin.filter(state, pod, NODES[0]) == framework.SUCCESS
    assert plugin.reserve(pod, NODES[0]).empty


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(
            lambda ls: None,
            '0/2 nodes are available: persistentvolumeclaim "data" not found.',
            id="missing-claim",
        ),
        pytest.param(
            lambda ls: ls.add_claim("data", "fast"),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            id="unbound-immediate",
        ),
        pytest.param(
            lambda ls: ls.add_claim("data", "gone"),
            '0/2 nodes are available: storageclass.storage.k8s.io "gone" not found.',
            id="missing-class",
        ),
    ],
)
def test_claims_that_no_node_can_help_reject_the_pod(setup: Any, message: str) -> None:
    """Missing claims, unbound Immediate claims and missing classes fail at PreFilter."""
    listers = Listers()
    setup(listers)
    assert fit_message(listers, with_claims("data")) == message


def test_bound_volume_node_affinity_restricts_the_pod_to_its_node() -> None:
    """A bound local volume on ``b``: only ``b`` fits; ``a`` has a node affinity conflict."""
    listers = Listers()
    listers.add_claim("data", "local")
    listers.add_volume("pv-b", node="b")
    listers.bind("data", "pv-b")
    assert run(listers, with_claims("data")) == "b"
    listers.pvs["pv-b"]["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ][0]["values"] = ["c"]
    assert fit_message(listers, with_claims("data")) == (
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
    )


def test_wait_for_first_consumer_claim_goes_where_a_free_local_volume_is() -> None:
    """No provisioner: the node holding a matching free volume is the only fit."""
    listers = Listers()
    listers.add_claim("data", "local")
    listers.add_volume("pv-a", node="a")
    assert run(listers, with_claims("data")) == "a"
    listers.pvs.clear()
    assert fit_message(listers, with_claims("data")) == (
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."
    )


def test_claim_with_a_selected_node_fits_only_that_node() -> None:
    """A claim the scheduler already sent to ``b`` keeps the pod's other nodes out."""
    listers = Listers()
    claim = listers.add_claim("data")
    claim["metadata"]["annotations"][pv_util.ANN_SELECTED_NODE] = "b"
    assert run(listers, with_claims("data")) == "b"


def test_reserve_assumes_so_a_second_pod_cannot_take_the_same_volume() -> None:
    """Two pods, two claims, one free volume on ``a``: the second pod finds nothing."""
    listers = Listers()
    listers.add_claim("one", "local")
    listers.add_claim("two", "local")
    listers.add_volume("pv-a", node="a")
    plugin = volume_binding.VolumeBinding(listers)
    profile = scheduler.default_profile(plugin)
    first = with_claims("one", name="first")
    node = scheduler.schedule_pod(first, NODES, profile)
    reserved = plugin.reserve(first, NODES[0])
    assert (node, [v["metadata"]["name"] for _, v in reserved.static]) == ("a", ["pv-a"])
    with pytest.raises(framework.FitError):
        scheduler.schedule_pod(with_claims("two", name="second"), NODES, profile)
    plugin.unreserve(first)
    assert scheduler.schedule_pod(with_claims("two", name="second"), NODES, profile) == "a"


async def test_pre_bind_selects_the_node_and_waits_until_the_claim_is_bound() -> None:
    """PreBind writes selected-node on the claim and returns only once it is Bound."""
    listers = Listers()
    listers.add_claim("data")
    client = FakeClient()
    plugin = volume_binding.VolumeBinding(
        listers, cast(rest.Client, client), poll_interval=0.01, bind_timeout=5
    )
    pod = with_claims("data")
    reserved = plugin.reserve(pod, NODES[1])
    assert [pv_util.claim_key(c) for c in reserved.provision] == ["default/data"]

    waiting = asyncio.ensure_future(plugin.pre_bind(pod, "b"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    [(plural, written)] = client.updates
    assert plural == "persistentvolumeclaims"
    assert written["metadata"]["annotations"][pv_util.ANN_SELECTED_NODE] == "b"

    # The provisioner and the binder do their part.
    listers.claims["default/data"]["metadata"]["annotations"][pv_util.ANN_SELECTED_NODE] = "b"
    listers.add_volume("pvc-uid-data", node="b", storage_class="standard")
    listers.bind("data", "pvc-uid-data")
    await asyncio.wait_for(waiting, timeout=2)


async def test_pre_bind_pre_binds_a_chosen_static_volume() -> None:
    """A free volume chosen at Reserve gets the claim in its claimRef, bound-by-controller."""
    listers = Listers()
    listers.add_claim("data", "local")
    listers.add_volume("pv-a", node="a")
    client = FakeClient()
    plugin = volume_binding.VolumeBinding(
        listers, cast(rest.Client, client), poll_interval=0.01, bind_timeout=0.05
    )
    pod = with_claims("data")
    plugin.reserve(pod, NODES[0])
    with pytest.raises(volume_binding.VolumeBindingError, match="deadline exceeded"):
        await plugin.pre_bind(pod, "a")
    [(plural, written)] = client.updates
    assert plural == "persistentvolumes"
    assert written["spec"]["claimRef"]["name"] == "data"
    assert written["spec"]["claimRef"]["uid"] == "uid-data"
    assert written["metadata"]["annotations"][pv_util.ANN_BOUND_BY_CONTROLLER] == "yes"


async def test_pre_bind_fails_when_provisioning_hands_the_claim_back() -> None:
    """A claim seen with its selected node that then loses it (provisioning failed) fails."""
    listers = Listers()
    claim = listers.add_claim("data")
    plugin = volume_binding.VolumeBinding(
        listers, cast(rest.Client, FakeClient()), poll_interval=0.01, bind_timeout=5
    )
    pod = with_claims("data")
    plugin.reserve(pod, NODES[0])
    waiting = asyncio.ensure_future(plugin.pre_bind(pod, "a"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the cache has not shown the selected node yet
    claim["metadata"]["annotations"][pv_util.ANN_SELECTED_NODE] = "a"
    await asyncio.sleep(0.05)
    assert not waiting.done()
    del claim["metadata"]["annotations"][pv_util.ANN_SELECTED_NODE]
    with pytest.raises(volume_binding.VolumeBindingError, match="provisioning failed"):
        await asyncio.wait_for(waiting, timeout=2)


def test_a_missing_ephemeral_claim_waits_for_the_ephemeral_volume_controller() -> None:
    """An ephemeral volume's claim ``<pod>-<volume>`` not made yet: upstream's waiting message."""
    pod = make_pod("web", volumes=[{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}])
    assert fit_message(Listers(), pod) == (
        "0/2 nodes are available: waiting for ephemeral volume controller to create the "
        'persistentvolumeclaim "web-scratch".'
    )
