"""The kubelet writes pod status as upstream's status manager: a strategic merge PATCH.

Against the suite's real in-process API server: each node's client calls the
server's ASGI app through a recorder, so the test sees every request the
kubelet makes (method, path, content type) as the server receives it. And a
pod deleted and recreated under the same name: the patch computed for the old
pod is refused and the new pod's status is left alone.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.kubelet.test_kubelet import eventually, pod

from kajitori.auth import pki
from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.kubelet import kubelet, status
from kajitori.kubelet.runtimes import simulated

Object = dict[str, Any]
STRATEGIC = "application/strategic-merge-patch+json"


class Recorder:
    """An ASGI app in front of the server's: remembers (method, path, content type)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            headers = dict(scope.get("headers") or ())
            content_type = headers.get(b"content-type", b"").decode()
            self.requests.append((scope["method"], scope["path"], content_type))
        await self.app(scope, receive, send)


@pytest.fixture
async def node_clients(apiserver: APIServerProcess) -> AsyncIterator[tuple[Recorder, Any]]:
    """Clients that act as ``system:node:<name>``, through one recorder."""
    assert apiserver.http is not None and apiserver.pki is not None
    recorder = Recorder(apiserver.http.app)
    names = [config.name for config in kubelet_cmd.node_configs(1)]
    certs = pki.issue_node_certs(apiserver.pki.ca, names)
    clients = {
        name: rest.Client.in_process(recorder, client_cert_pem=certs[name].cert_pem)
        for name in names
    }
    try:
        yield recorder, clients
    finally:
        for client in clients.values():
            await client.aclose()


async def test_status_writes_are_strategic_merge_patches_as_the_node(
    admin: rest.Client, node_clients: tuple[Recorder, dict[str, rest.Client]]
) -> None:
    recorder, clients = node_clients
    runtime = simulated.SimulatedRuntime(start_delay=0.2)
    host = kubelet.KubeletHost(
        admin, kubelet_cmd.node_configs(1), runtime, client_for=lambda name: clients[name]
    )
    await host.start()
    try:
        await admin.create(rest.PODS, pod("patched", "kajitori-worker"))

        async def running() -> Object | None:
            found = await admin.get(rest.PODS, "patched", namespace="default")
            return found if (found.get("status") or {}).get("phase") == "Running" else None

        found = await eventually(running)
    finally:
        await host.stop()
    writes = [
        r for r in recorder.requests if r[1] == "/api/v1/namespaces/default/pods/patched/status"
    ]
    assert writes, recorder.requests
    assert {(method, content_type) for method, _, content_type in writes} == {("PATCH", STRATEGIC)}
    assert not [r for r in recorder.requests if r[0] == "PUT" and "/pods/" in r[1]]
    # The patches built the status the kubelet generated, conditions in its order.
    state = found["status"]
    assert [c["type"] for c in state["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled",
    ]  # fmt: skip
    assert state["containerStatuses"][0]["state"]["running"]
    assert state["podIPs"] == [{"ip": state["podIP"]}]


async def test_a_patch_for_a_deleted_and_recreated_pod_leaves_the_new_pod_alone(
    admin: rest.Client, node_clients: tuple[Recorder, dict[str, rest.Client]]
) -> None:
    """The stale copy's patch is refused; the kubelet writes nothing into the new pod."""
    _, clients = node_clients
    (name,) = clients
    runtime = simulated.SimulatedRuntime(start_delay=0.0)
    host = kubelet.KubeletHost(
        admin, kubelet_cmd.node_configs(1), runtime, client_for=lambda node: clients[node]
    )  # not started: the test drives its status writes
    old = await admin.create(rest.PODS, pod("again", name))
    await admin.delete(rest.PODS, "again", namespace="default", grace_period_seconds=0)
    new = await admin.create(rest.PODS, pod("again", name))
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    now = time.time()
    runtime.sync_pod(old, now=now)
    runtime_status = runtime.get_pod_status(old["metadata"]["uid"], now=now)
    assert runtime_status is not None
    state = host.nodes[name]
    state.pod_cidr = "10.244.0.0/24"

    # As the informer held it: resourceVersion and uid of the old pod (409, retried later).
    with pytest.raises(rest.ApiError) as refused:
        await host._write_status(old, state, runtime_status, now)
    assert refused.value.conflict
    # The uid alone refuses it too (at the new pod's resourceVersion): a 409 on the uid
    # precondition, which the kubelet drops as upstream drops a recreated pod's status.
    meta = {**old["metadata"], "resourceVersion": new["metadata"]["resourceVersion"]}
    stale = {**old, "metadata": meta}
    body = status.status_patch(stale, {"phase": "Running"})
    with pytest.raises(rest.ApiError) as uid_refused:
        await clients[name].patch(
            rest.PODS, "again", body, namespace="default", patch_type="strategic",
            subresource="status",
        )  # fmt: skip
    assert uid_refused.value.conflict and kubelet._uid_refused(uid_refused.value)
    assert not kubelet._uid_refused(refused.value)
    await host._write_status(stale, state, runtime_status, now)  # dropped: no error

    after = await admin.get(rest.PODS, "again", namespace="default")
    assert after["metadata"]["uid"] == new["metadata"]["uid"]
    assert after["metadata"]["resourceVersion"] == new["metadata"]["resourceVersion"]
    assert (after.get("status") or {}).get("phase") == "Pending"
    assert "containerStatuses" not in after["status"]
