"""The StatefulSet controller: pure planning and helpers, then against a real in-process API server."""

from __future__ import annotations

import asyncio
import copy
import datetime
from typing import Any

import pytest
from tests.controllers.conftest import StartControllers, eventually

from kajitori.client import rest
from kajitori.controllers import manager
from kajitori.controllers.common import history
from kajitori.controllers.statefulset import control, utils

Object = dict[str, Any]
NS = "default"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

# ----- fixtures for the pure tests ------------------------------------------------------


def _sts(
    name: str = "web",
    replicas: int = 2,
    *,
    policy: str = "OrderedReady",
    claims: bool = True,
    start: int | None = None,
    strategy: Object | None = None,
    retention: Object | None = None,
) -> Object:
    spec: Object = {
        "replicas": replicas,
        "serviceName": name,
        "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": name}},
        "updateStrategy": strategy
        or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
        "revisionHistoryLimit": 10,
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx:1",
                        "volumeMounts": [{"name": "data", "mountPath": "/var/data"}],
                    }
                ],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            },
        },
    }
    if claims:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data", "labels": {"tier": "db"}},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Mi"}},
                },
            }
        ]
    if start is not None:
        spec["ordinals"] = {"start": start}
    if retention is not None:
        spec["persistentVolumeClaimRetentionPolicy"] = retention
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
    }


def _existing(sts: Object, ordinal: int, *, revision: str = "r1", state: str = "ready") -> Object:
    """A stored pod of ``sts`` (with a uid) at ``revision``: ready, pending or terminating."""
    pod = utils.new_pod(sts, ordinal, revision)
    pod["metadata"]["uid"] = f"pod-uid-{ordinal}"
    if state == "pending":
        pod["status"] = {"phase": "Pending"}
        return pod
    since = (NOW - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}],
    }
    if state == "terminating":
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return pod


def _snap(
    sts: Object, pods: list[Object], *, update: str = "r1", claims: dict[str, Object] | None = None
) -> control.Snapshot:
    if claims is None:
        # Every existing pod's claims exist (a Pending pod would otherwise get them made).
        claims = {
            claim["metadata"]["name"]: claim
            for pod in pods
            for _, claim in utils.claims_for(sts, utils.ordinal_of(pod))
        }
    return control.Snapshot(
        sts=sts,
        current_set=sts,
        update_set=sts,
        current_revision="r1",
        update_revision=update,
        collision_count=0,
        pods=pods,
        claims=claims,
        now=NOW,
    )


def _actions(plan: control.Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.name) for a in plan.actions]


# ----- pure: identity and storage -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("web-0", ("web", 0), id="simple"),
        pytest.param("my-db-12", ("my-db", 12), id="dashes-in-set-name"),
        pytest.param("web", ("", -1), id="no-ordinal"),
        pytest.param("web-x", ("", -1), id="not-a-number"),
        pytest.param("web-99999999999", ("web", -1), id="beyond-int32"),
    ],
)
def test_a_pod_name_encodes_its_set_and_ordinal(name: str, expected: tuple[str, int]) -> None:
    """``<set>-<n>`` parses as upstream's regex; anything else has ordinal -1."""
    assert utils.parent_and_ordinal({"metadata": {"name": name}}) == expected


def test_a_new_pod_has_its_identity_storage_and_revision() -> None:
    """Name, hostname, subdomain, identity labels, claim volume first, controller reference."""
    pod = utils.new_pod(_sts(), 1, "web-abc")
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "web-1" and "generateName" not in meta
    assert meta["labels"] == {
        "app": "web",
        utils.POD_NAME_LABEL: "web-1",
        utils.POD_INDEX_LABEL: "1",
        utils.REVISION_LABEL: "web-abc",
    }
    assert spec["hostname"] == "web-1" and spec["subdomain"] == "web"
    assert spec["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    [ref] = meta["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("StatefulSet", "uid-web", True)


def test_claims_are_named_template_set_ordinal_and_carry_the_selector_labels() -> None:
    """``data-web-3`` with the template's labels plus the set's matchLabels."""
    [(template, claim)] = utils.claims_for(_sts(), 3)
    assert template == "data"
    assert claim["metadata"]["name"] == "data-web-3"
    assert claim["metadata"]["labels"] == {"tier": "db", "app": "web"}
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Mi"}}


def test_below_the_partition_new_pods_get_the_current_revision() -> None:
    """partition 2: ordinals 0 and 1 are made from the current set, 2 from the update."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    current = _sts(replicas=3, strategy=strategy)
    update = copy.deepcopy(current)
    update["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    made = [utils.new_versioned_pod(current, update, "old", "new", n) for n in range(3)]
    assert [utils.pod_revision(p) for p in made] == ["old", "old", "new"]
    assert made[2]["spec"]["containers"][0]["image"] == "nginx:2"


# ----- pure: the plan -------------------------------------------------------------------


def test_ordered_ready_creates_only_the_lowest_missing_pod() -> None:
    """No pods: create web-0 and stop (web-1 waits)."""
    assert _actions(control.plan_update(_snap(_sts(), []))) == [("create", "web-0")]


def test_ordered_ready_waits_while_a_lower_pod_is_not_running_and_ready() -> None:
    """web-0 Pending: nothing to do; once Ready, web-1 is created."""
    sts = _sts()
    assert _actions(control.plan_update(_snap(sts, [_existing(sts, 0, state="pending")]))) == []
    assert _actions(control.plan_update(_snap(sts, [_existing(sts, 0)]))) == [("create", "web-1")]


def test_parallel_creates_every_missing_pod_at_once() -> None:
    """Parallel ignores readiness: web-1 and web-2 beside a Pending web-0."""
    sts = _sts(replicas=3, policy="Parallel")
    plan = control.plan_update(_snap(sts, [_existing(sts, 0, state="pending")]))
    assert _actions(plan) == [("create", "web-1"), ("create", "web-2")]


def test_scale_down_deletes_the_highest_ordinal_one_at_a_time() -> None:
    """3 pods, 1 replica: web-2 goes first; while it terminates nothing else happens."""
    sts = _sts(replicas=1)
    pods = [_existing(sts, n) for n in range(3)]
    assert _actions(control.plan_update(_snap(sts, pods))) == [("delete", "web-2")]
    pods[2] = _existing(sts, 2, state="terminating")
    assert _actions(control.plan_update(_snap(sts, pods))) == []
    assert _actions(control.plan_update(_snap(sts, pods[:2]))) == [("delete", "web-1")]


def test_parallel_scale_down_deletes_all_condemned_pods() -> None:
    """Parallel: web-2 and web-1 together."""
    sts = _sts(replicas=1, policy="Parallel")
    pods = [_existing(sts, n) for n in range(3)]
    assert _actions(control.plan_update(_snap(sts, pods))) == [
        ("delete", "web-2"),
        ("delete", "web-1"),
    ]


def test_ordinals_start_shifts_the_range() -> None:
    """start 5: the first pod is web-5; a web-0 left over is condemned."""
    sts = _sts(replicas=1, start=5)
    assert _actions(control.plan_update(_snap(sts, []))) == [("create", "web-5")]
    plan = control.plan_update(_snap(sts, [_existing(sts, 5), _existing(sts, 0)]))
    assert _actions(plan) == [("delete", "web-0")]


def test_a_failed_pod_is_deleted_to_be_recreated() -> None:
    """Phase Failed: delete it (it comes back under the same name on a later sync)."""
    sts = _sts(replicas=1)
    pod = _existing(sts, 0)
    pod["status"]["phase"] = "Failed"
    assert _actions(control.plan_update(_snap(sts, [pod]))) == [("delete", "web-0")]


@pytest.mark.parametrize(
    ("partition", "max_unavailable", "expected"),
    [
        pytest.param(0, 1, ["web-3"], id="one-at-a-time-from-the-top"),
        pytest.param(2, 1, ["web-3"], id="partition-2"),
        pytest.param(0, 2, ["web-3", "web-2"], id="max-unavailable-2"),
        pytest.param(3, 4, ["web-3"], id="partition-limits-max-unavailable"),
        pytest.param(0, "50%", ["web-3", "web-2"], id="percentage"),
    ],
)
def test_rolling_update_deletes_old_pods_above_the_partition(
    partition: int, max_unavailable: int | str, expected: list[str]
) -> None:
    """All four pods at r1, update r2: highest first, within maxUnavailable, never below partition."""
    strategy = {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": partition, "maxUnavailable": max_unavailable},
    }
    sts = _sts(replicas=4, strategy=strategy)
    pods = [_existing(sts, n) for n in range(4)]
    plan = control.plan_update(_snap(sts, pods, update="r2"))
    assert [a.name for a in plan.actions] == expected
    assert plan.status["currentReplicas"] == 4 - len(expected)


def test_rolling_update_waits_while_a_replica_is_unavailable() -> None:
    """web-3 (already updated) not ready yet: no further deletion with maxUnavailable 1."""
    sts = _sts(replicas=4)
    pods = [_existing(sts, n) for n in range(3)] + [
        _existing(sts, 3, revision="r2", state="pending")
    ]
    assert _actions(control.plan_update(_snap(sts, pods, update="r2"))) == []


def test_on_delete_never_deletes_for_an_update() -> None:
    """OnDelete: old pods stay until someone deletes them."""
    sts = _sts(strategy={"type": "OnDelete"})
    pods = [_existing(sts, n) for n in range(2)]
    assert _actions(control.plan_update(_snap(sts, pods, update="r2"))) == []


def test_status_counts_ready_current_and_updated_pods() -> None:
    """2 ready at r1, 1 pending at r2 → replicas 3, ready 2, current 2, updated 1."""
    sts = _sts(replicas=3, strategy={"type": "OnDelete"})
    pods = [_existing(sts, 0), _existing(sts, 1), _existing(sts, 2, revision="r2", state="pending")]
    status = control.plan_update(_snap(sts, pods, update="r2")).status
    assert {k: status[k] for k in ("replicas", "readyReplicas", "availableReplicas")} == {
        "replicas": 3,
        "readyReplicas": 2,
        "availableReplicas": 2,
    }
    assert (status["currentReplicas"], status["updatedReplicas"]) == (2, 1)
    assert (status["currentRevision"], status["updateRevision"]) == ("r1", "r2")


def test_min_ready_seconds_holds_back_availability_and_the_next_pod() -> None:
    """Ready 5 min ago with minReadySeconds 600: not available, web-1 not created."""
    sts = _sts()
    sts["spec"]["minReadySeconds"] = 600
    plan = control.plan_update(_snap(sts, [_existing(sts, 0)]))
    assert _actions(plan) == []
    assert (plan.status["readyReplicas"], plan.status["availableReplicas"]) == (1, 0)


def test_a_completed_rolling_update_makes_the_update_revision_current() -> None:
    """All replicas updated and ready: currentRevision becomes the update revision."""
    sts = _sts()
    pods = [_existing(sts, n, revision="r2") for n in range(2)]
    status = control.plan_update(_snap(sts, pods, update="r2")).status
    control.complete_rolling_update(sts, status)
    assert (status["currentRevision"], status["currentReplicas"]) == ("r2", 2)


@pytest.mark.parametrize(
    ("retention", "scaled_down", "by_set", "by_pod"),
    [
        pytest.param({}, False, False, False, id="retain-retain"),
        pytest.param({"whenDeleted": "Delete"}, False, True, False, id="delete-on-set-deletion"),
        pytest.param({"whenScaled": "Delete"}, False, False, False, id="scaled-in-range"),
        pytest.param({"whenScaled": "Delete"}, True, False, True, id="scaled-down"),
        pytest.param(
            {"whenScaled": "Delete", "whenDeleted": "Delete"}, True, False, True, id="both-down"
        ),
        pytest.param(
            {"whenScaled": "Delete", "whenDeleted": "Delete"}, False, True, False, id="both-in"
        ),
    ],
)
def test_claim_owners_follow_the_retention_policy(
    retention: Object, scaled_down: bool, by_set: bool, by_pod: bool
) -> None:
    """Plain owner references to the set and/or the scaled-down pod, as upstream 1.32+."""
    sts = _sts(replicas=1, retention=retention)
    pod = _existing(sts, 1 if scaled_down else 0)
    claim = utils.claims_for(sts, utils.ordinal_of(pod))[0][1]
    utils.update_claim_owners(sts, pod, claim)
    uids = {ref["uid"] for ref in claim["metadata"].get("ownerReferences") or ()}
    assert ("uid-web" in uids, pod["metadata"]["uid"] in uids) == (by_set, by_pod)
    assert all("controller" not in ref for ref in claim["metadata"].get("ownerReferences") or ())
    assert utils.claim_owners_match(sts, pod, claim)


def test_a_claim_left_by_a_previous_pod_blocks_creation_when_scaled_claims_are_deleted() -> None:
    """whenScaled Delete: data-web-0 still owned by the old web-0 → wait for the collector."""
    sts = _sts(replicas=1, retention={"whenScaled": "Delete"})
    claim = utils.claims_for(sts, 0)[0][1]
    claim["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": "old"}
    ]
    assert _actions(control.plan_update(_snap(sts, [], claims={"data-web-0": claim}))) == []


def test_history_beyond_the_limit_drops_the_oldest_unused_revisions() -> None:
    """limit 1, five revisions, r2 used by a pod, r5 live: r1 and r3 go."""
    sts = _sts()
    sts["spec"]["revisionHistoryLimit"] = 1
    revisions = [{"metadata": {"name": f"r{n}"}, "revision": n} for n in range(1, 6)]
    pods = [_existing(sts, 0, revision="r2")]
    doomed = control.truncate_history(sts, revisions, pods, ("r5", "r5"))
    assert [r["metadata"]["name"] for r in doomed] == ["r1", "r3"]


def test_revision_hashes_depend_on_data_and_collision_count() -> None:
    """Same data → same name; another collision count or template → another."""
    sts = _sts()
    first = utils.new_revision(sts, 1, 0)
    assert first["metadata"]["name"] == utils.new_revision(sts, 2, 0)["metadata"]["name"]
    assert first["metadata"]["name"] != utils.new_revision(sts, 1, 1)["metadata"]["name"]
    assert first["metadata"]["labels"][history.HASH_LABEL] in first["metadata"]["name"]
    assert first["data"]["spec"]["template"]["$patch"] == "replace"
    restored = utils.apply_revision(_sts(), first)
    assert restored["spec"]["template"] == sts["spec"]["template"]
    assert history.next_revision([first, {**first, "revision": 7}]) == 8


# ----- against the API server -------------------------------------------------------------


@pytest.fixture
async def controllers(start_controllers: StartControllers) -> manager.ControllerManager:
    """The statefulset controller (as statefulset-controller) and the garbage collector."""
    return await start_controllers("statefulset", "garbagecollector")


def _body(sts: Object) -> Object:
    body = copy.deepcopy(sts)
    body["metadata"] = {"name": sts["metadata"]["name"], "namespace": NS}
    return body


async def _pods(client: rest.Client, app: str) -> dict[str, Object]:
    listed = await client.list(rest.PODS, namespace=NS, label_selector=f"app={app}")
    return {p["metadata"]["name"]: p for p in listed["items"]}


async def _claims(client: rest.Client) -> dict[str, Object]:
    listed = await client.list(rest.PERSISTENTVOLUMECLAIMS, namespace=NS)
    return {c["metadata"]["name"]: c for c in listed["items"]}


def _deleted(claims: dict[str, Object], name: str) -> bool:
    """Gone, or deleted and held only by the pvc-protection finalizer (no controller here)."""
    return name not in claims or bool(claims[name]["metadata"].get("deletionTimestamp"))


async def _make_ready(client: rest.Client, name: str) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
    }
    await client.patch(rest.PODS, name, {"status": status}, namespace=NS, subresource="status")


async def _names(client: rest.Client, app: str) -> list[str]:
    return sorted(await _pods(client, app))


async def _has_pods(client: rest.Client, app: str, names: list[str]) -> bool:
    return await _names(client, app) == names


async def _ready_all(client: rest.Client, app: str, names: list[str]) -> None:
    """Mark each pod Ready in order, waiting for it to exist first (a kubelet's part)."""
    for name in names:
        await eventually(lambda n=name: _exists(client, app, n))  # type: ignore[misc]
        await _make_ready(client, name)


async def _exists(client: rest.Client, app: str, name: str) -> bool:
    return name in await _pods(client, app)


async def test_pods_are_created_in_order_with_their_claims_first(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """web-0 and data-web-0 exist; web-1 waits until web-0 is Running and Ready."""
    await admin.create(rest.STATEFULSETS, _body(_sts()), namespace=NS)
    await eventually(lambda: _has_pods(admin, "web", ["web-0"]))
    claims = await _claims(admin)
    assert "data-web-0" in claims
    assert claims["data-web-0"]["metadata"]["labels"] == {"tier": "db", "app": "web"}
    assert claims["data-web-0"]["metadata"].get("ownerReferences") is None
    await asyncio.sleep(0.3)  # give a wrong controller the chance to create web-1
    assert await _names(admin, "web") == ["web-0"]
    await _make_ready(admin, "web-0")
    await eventually(lambda: _has_pods(admin, "web", ["web-0", "web-1"]))
    pod = (await _pods(admin, "web"))["web-1"]
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "web"
    assert pod["metadata"]["labels"][utils.POD_INDEX_LABEL] == "1"
    await _make_ready(admin, "web-1")

    async def settled() -> Object | None:
        sts = await admin.get(rest.STATEFULSETS, "web", namespace=NS)
        status = sts.get("status") or {}
        return sts if status.get("readyReplicas") == 2 else None

    sts = await eventually(settled)
    status = sts["status"]
    assert status["replicas"] == status["currentReplicas"] == status["updatedReplicas"] == 2
    assert status["availableReplicas"] == 2 and status["observedGeneration"] == 1
    assert status["currentRevision"] == status["updateRevision"]
    assert pod["metadata"]["labels"][utils.REVISION_LABEL] == status["updateRevision"]
    revisions = await admin.list(rest.CONTROLLERREVISIONS, namespace=NS)
    assert [r["metadata"]["name"] for r in revisions["items"]] == [status["updateRevision"]]
    await controllers.broadcaster.flush()
    listed = await admin.list(rest.EVENTS, namespace=NS)
    messages = {e["message"] for e in listed["items"] if e["involvedObject"]["name"] == "web"}
    assert "create Pod web-0 in StatefulSet web successful" in messages
    assert "create Claim data-web-0 Pod web-0 in StatefulSet web success" in messages


async def test_scale_down_keeps_claims_and_recreated_pods_reuse_them(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """3 → 1 deletes web-2 then web-1; claims stay; back to 2, and a deleted web-0, reuse them."""
    await admin.create(rest.STATEFULSETS, _body(_sts(replicas=3)), namespace=NS)
    await _ready_all(admin, "web", ["web-0", "web-1", "web-2"])
    await admin.patch(rest.STATEFULSETS, "web", {"spec": {"replicas": 1}}, namespace=NS)
    await eventually(lambda: _has_pods(admin, "web", ["web-0"]))
    assert {"data-web-0", "data-web-1", "data-web-2"} <= set(await _claims(admin))
    claim_uid = (await _claims(admin))["data-web-1"]["metadata"]["uid"]
    await admin.patch(rest.STATEFULSETS, "web", {"spec": {"replicas": 2}}, namespace=NS)
    await eventually(lambda: _has_pods(admin, "web", ["web-0", "web-1"]))
    pod = (await _pods(admin, "web"))["web-1"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-web-1"
    assert (await _claims(admin))["data-web-1"]["metadata"]["uid"] == claim_uid
    old_uid = (await _pods(admin, "web"))["web-0"]["metadata"]["uid"]
    await admin.delete(rest.PODS, "web-0", namespace=NS)

    async def recreated() -> bool:
        found = (await _pods(admin, "web")).get("web-0")
        return found is not None and found["metadata"]["uid"] != old_uid

    await eventually(recreated)


async def test_parallel_creates_all_pods_without_waiting(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Parallel, 3 replicas, nothing ever Ready: all three pods exist."""
    await admin.create(rest.STATEFULSETS, _body(_sts(replicas=3, policy="Parallel")), namespace=NS)
    await eventually(lambda: _has_pods(admin, "web", ["web-0", "web-1", "web-2"]))


async def test_claims_deleted_with_scaled_down_pods_when_when_scaled_is_delete(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """whenScaled Delete: data-web-1 is owned by web-1 on scale-down, then collected."""
    sts = _sts(replicas=2, retention={"whenScaled": "Delete", "whenDeleted": "Retain"})
    await admin.create(rest.STATEFULSETS, _body(sts), namespace=NS)
    await _ready_all(admin, "web", ["web-0", "web-1"])
    await admin.patch(rest.STATEFULSETS, "web", {"spec": {"replicas": 1}}, namespace=NS)
    await eventually(lambda: _has_pods(admin, "web", ["web-0"]))

    async def claim_gone() -> bool:
        return _deleted(await _claims(admin), "data-web-1")

    await eventually(claim_gone)
    assert "data-web-0" in await _claims(admin)


async def test_claims_are_owned_by_the_set_when_when_deleted_is_delete(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """whenDeleted Delete: a plain owner reference to the set, so the collector removes it."""
    sts = _sts(replicas=1, retention={"whenDeleted": "Delete"})
    created = await admin.create(rest.STATEFULSETS, _body(sts), namespace=NS)
    await eventually(lambda: _has_pods(admin, "web", ["web-0"]))
    [ref] = (await _claims(admin))["data-web-0"]["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("StatefulSet", created["metadata"]["uid"])
    await admin.delete(rest.STATEFULSETS, "web", namespace=NS)

    async def claim_gone() -> bool:
        return _deleted(await _claims(admin), "data-web-0")

    await eventually(claim_gone)


async def test_a_partitioned_rolling_update_replaces_only_pods_above_the_partition(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """partition 1: web-1 gets the new image and revision; web-0 keeps the old; 2 revisions."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    await admin.create(rest.STATEFULSETS, _body(_sts(strategy=strategy)), namespace=NS)
    await _ready_all(admin, "web", ["web-0", "web-1"])
    first = (await _pods(admin, "web"))["web-1"]["metadata"]["uid"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}
    await admin.patch(rest.STATEFULSETS, "web", patch, namespace=NS, patch_type="strategic")

    async def updated() -> Object | None:
        pod = (await _pods(admin, "web")).get("web-1")
        if pod is None or pod["metadata"]["uid"] == first:
            return None
        return pod

    pod = await eventually(updated)
    assert pod["spec"]["containers"][0]["image"] == "nginx:2"
    await _make_ready(admin, "web-1")

    async def status() -> Object | None:
        found = (await admin.get(rest.STATEFULSETS, "web", namespace=NS)).get("status") or {}
        return found if found.get("updatedReplicas") == 1 and found.get("readyReplicas") else None

    found = await eventually(status)
    assert found["currentRevision"] != found["updateRevision"]
    assert pod["metadata"]["labels"][utils.REVISION_LABEL] == found["updateRevision"]
    web0 = (await _pods(admin, "web"))["web-0"]
    assert web0["spec"]["containers"][0]["image"] == "nginx:1"
    assert web0["metadata"]["labels"][utils.REVISION_LABEL] == found["currentRevision"]
    revisions = await admin.list(rest.CONTROLLERREVISIONS, namespace=NS)
    assert sorted(r["revision"] for r in revisions["items"]) == [1, 2]
