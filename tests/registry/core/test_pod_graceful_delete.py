"""A pod's delete with a grace period of 0 stores the pod marked, then deletes it.

Upstream's store treats pods as a graceful-deletion kind: BeforeDelete sets
``deletionTimestamp`` and ``deletionGracePeriodSeconds`` and the marked pod is
written even when the period is 0 (an unscheduled pod, ``--grace-period=0``,
the kubelet's final delete), and only then deleted. Watchers see MODIFIED,
then DELETED, and the delete answers with the marked pod. Kinds that are not
graceful (a ConfigMap) go at once. Each case runs over HTTPS against a real
API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from kajitori.client import kubeconfig
from kajitori.cmd.apiserver import APIServerProcess

PODS = "/api/v1/namespaces/default/pods"
Object = dict[str, Any]


@pytest.fixture
async def http(apiserver: APIServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    config = kubeconfig.load_kubeconfig(apiserver.config.kubeconfig_path)
    async with httpx.AsyncClient(base_url=config.server, verify=config.ssl_context()) as client:
        # An API server alone runs no service-account controller; pods need the account.
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        made = await client.post("/api/v1/namespaces/default/serviceaccounts", json=account)
        assert made.status_code == 201
        yield client


def pod(name: str, node: str = "") -> Object:
    spec: Object = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def created(http: httpx.AsyncClient, body: Object, path: str = PODS) -> str:
    response = await http.post(path, json=body)
    assert response.status_code == 201, response.text
    resource_version: str = response.json()["metadata"]["resourceVersion"]
    return resource_version


async def delete(http: httpx.AsyncClient, path: str, **options: Any) -> httpx.Response:
    return await http.request(
        "DELETE",
        path,
        content=orjson.dumps({"kind": "DeleteOptions", "apiVersion": "v1", **options}),
        headers={"Content-Type": "application/json"},
    )


async def events_after(http: httpx.AsyncClient, path: str, since: str, name: str) -> list[Object]:
    """The watch events of ``name`` after ``since``, until the stream's timeout."""
    response = await http.get(
        f"{path}?watch=1&resourceVersion={since}&fieldSelector=metadata.name={name}"
        "&timeoutSeconds=1"
    )
    assert response.status_code == 200
    return [orjson.loads(line) for line in response.content.splitlines()]


async def test_an_unscheduled_pod_is_marked_then_deleted(http: httpx.AsyncClient) -> None:
    since = await created(http, pod("floating"))
    response = await delete(http, f"{PODS}/floating")
    assert response.status_code == 200
    answered = response.json()["metadata"]
    assert answered["deletionGracePeriodSeconds"] == 0
    assert answered["deletionTimestamp"]
    events = await events_after(http, PODS, since, "floating")
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    marked = events[0]["object"]["metadata"]
    assert marked["deletionGracePeriodSeconds"] == 0
    assert marked["resourceVersion"] == answered["resourceVersion"]
    assert (await http.get(f"{PODS}/floating")).status_code == 404


async def test_shortening_a_pending_grace_to_zero_stores_it_first(
    http: httpx.AsyncClient,
) -> None:
    """The kubelet's final delete of a terminating pod: grace 30 → 0, stored, then gone."""
    await created(http, pod("bound", node="node-a"))
    first = await delete(http, f"{PODS}/bound", gracePeriodSeconds=30)
    assert first.json()["metadata"]["deletionGracePeriodSeconds"] == 30
    since = first.json()["metadata"]["resourceVersion"]
    final = await delete(http, f"{PODS}/bound", gracePeriodSeconds=0)
    assert final.status_code == 200
    assert final.json()["metadata"]["deletionGracePeriodSeconds"] == 0
    events = await events_after(http, PODS, since, "bound")
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["metadata"]["deletionGracePeriodSeconds"] == 0


async def test_a_pod_with_a_finalizer_stays_marked(http: httpx.AsyncClient) -> None:
    body = pod("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await created(http, body)
    response = await delete(http, f"{PODS}/held")
    assert response.status_code == 200
    kept = (await http.get(f"{PODS}/held")).json()["metadata"]
    assert kept["deletionGracePeriodSeconds"] == 0
    assert kept["finalizers"] == ["example.com/hold"]


async def test_a_dry_run_delete_answers_the_marked_pod_and_keeps_it(
    http: httpx.AsyncClient,
) -> None:
    await created(http, pod("dry"))
    response = await delete(http, f"{PODS}/dry?dryRun=All")
    assert response.status_code == 200
    assert response.json()["metadata"]["deletionGracePeriodSeconds"] == 0
    assert "deletionTimestamp" not in (await http.get(f"{PODS}/dry")).json()["metadata"]


async def test_a_kind_without_graceful_deletion_goes_at_once(http: httpx.AsyncClient) -> None:
    configmaps = "/api/v1/namespaces/default/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}}
    since = await created(http, body, configmaps)
    assert (await delete(http, f"{configmaps}/plain")).status_code == 200
    events = await events_after(http, configmaps, since, "plain")
    assert [e["type"] for e in events] == ["DELETED"]
