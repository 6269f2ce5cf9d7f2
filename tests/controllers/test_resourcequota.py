"""The resourcequota controller against a real in-process API server, as its ServiceAccount."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from tests.controllers.conftest import eventually

from kajitori.client import rest
from kajitori.cmd import controller_manager
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager

Object = dict[str, Any]
NS = "default"


def _start(apiserver: APIServerProcess, resync_period: float) -> manager.ControllerManager:
    assert apiserver.http is not None and apiserver.pki is not None
    return controller_manager.start_in_process(
        apiserver.http.app,
        apiserver.pki.ca,
        controllers=("resourcequota",),
        options={"resourcequota": {"resync_period": resync_period}},
    )


@pytest.fixture
async def controllers(apiserver: APIServerProcess) -> AsyncIterator[manager.ControllerManager]:
    """The controller with a resync too long to matter: only events drive it."""
    running = _start(apiserver, 3600.0)
    try:
        yield running
    finally:
        await controller_manager.stop(running)


async def _status_becomes(
    client: rest.Client, name: str, used: Mapping[str, str], hard: Mapping[str, str] | None = None
) -> Object:
    async def check() -> Object | None:
        found = await client.get(rest.RESOURCEQUOTAS, name, namespace=NS)
        status = found.get("status") or {}
        if status.get("used") == dict(used) and (hard is None or status.get("hard") == hard):
            return found
        return None

    result: Object = await eventually(check)
    return result


async def _quota(client: rest.Client, name: str, hard: dict[str, str], **spec: Any) -> Object:
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard, **spec},
    }
    return await client.create(rest.RESOURCEQUOTAS, body, namespace=NS)


def _pod(name: str, cpu: str = "") -> Object:
    container: Object = {"name": "c", "image": "nginx"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }


async def _finish(client: rest.Client, name: str, phase: str = "Succeeded") -> None:
    pod = await client.get(rest.PODS, name, namespace=NS)
    pod["status"] = {**(pod.get("status") or {}), "phase": phase}
    await client.update_status(rest.PODS, pod)


async def test_a_new_quota_counts_what_exists_and_skips_terminal_pods(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """status.hard copies spec.hard; terminal pods count in count/pods only; compute is summed."""
    await admin.create(rest.PODS, _pod("running", cpu="250m"), namespace=NS)
    await admin.create(rest.PODS, _pod("done", cpu="1"), namespace=NS)
    await _finish(admin, "done")
    hard = {"pods": "10", "count/pods": "10", "requests.cpu": "4", "limits.memory": "1Gi"}
    await _quota(admin, "compute", hard)
    await _status_becomes(
        admin,
        "compute",
        {"pods": "1", "count/pods": "2", "requests.cpu": "250m", "limits.memory": "0"},
        hard=hard,
    )


async def test_deleting_a_pod_gives_its_quota_back(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """Replenishment: after a delete the quota is recounted and the freed slot is usable."""
    await _quota(admin, "pods", {"pods": "1"})
    await _status_becomes(admin, "pods", {"pods": "0"})
    await admin.create(rest.PODS, _pod("first"), namespace=NS)
    await _status_becomes(admin, "pods", {"pods": "1"})
    with pytest.raises(rest.ApiError) as caught:
        await admin.create(rest.PODS, _pod("second"), namespace=NS)
    assert caught.value.code == 403
    await admin.delete(rest.PODS, "first", namespace=NS, grace_period_seconds=0)
    await _status_becomes(admin, "pods", {"pods": "0"})
    await admin.create(rest.PODS, _pod("second"), namespace=NS)


async def test_a_pod_turning_terminal_stops_counting(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A pod that Failed no longer holds pods or cpu, while it still exists."""
    await _quota(admin, "compute", {"pods": "5", "requests.cpu": "2"})
    await _status_becomes(admin, "compute", {"pods": "0", "requests.cpu": "0"})
    await admin.create(rest.PODS, _pod("job", cpu="1"), namespace=NS)
    await _status_becomes(admin, "compute", {"pods": "1", "requests.cpu": "1"})
    await _finish(admin, "job", "Failed")
    await _status_becomes(admin, "compute", {"pods": "0", "requests.cpu": "0"})


async def test_changing_spec_hard_is_reflected_in_status(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """A new hard name gets a hard value and its usage; a dropped one leaves status."""
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    await admin.create(rest.CONFIGMAPS, configmap, namespace=NS)
    await _quota(admin, "objects", {"configmaps": "3"})
    current = await _status_becomes(admin, "objects", {"configmaps": "1"}, hard={"configmaps": "3"})
    current["spec"]["hard"] = {"secrets": "4", "services": "2"}
    await admin.update(rest.RESOURCEQUOTAS, current, namespace=NS)
    # default holds the bootstrap ``kubernetes`` Service.
    await _status_becomes(
        admin, "objects", {"secrets": "0", "services": "1"}, hard={"secrets": "4", "services": "2"}
    )


async def test_scoped_quotas_and_count_names_through_discovery(
    admin: rest.Client, controllers: manager.ControllerManager
) -> None:
    """BestEffort counts only best-effort pods; count/deployments.apps is found via discovery."""
    await admin.create(rest.PODS, _pod("plain"), namespace=NS)
    await admin.create(rest.PODS, _pod("sized", cpu="100m"), namespace=NS)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    await admin.create(rest.DEPLOYMENTS, deployment, namespace=NS)
    await _quota(admin, "best-effort", {"pods": "5"}, scopes=["BestEffort"])
    await _quota(admin, "apps", {"count/deployments.apps": "2"})
    await _status_becomes(admin, "best-effort", {"pods": "1"})
    await _status_becomes(admin, "apps", {"count/deployments.apps": "1"})


async def test_the_periodic_resync_corrects_a_wrong_count(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """Usage written wrongly (no event says so) is recounted within one resync period."""
    running = _start(apiserver, 0.5)
    try:
        created = await _quota(admin, "pods", {"pods": "3"})
        await _status_becomes(admin, "pods", {"pods": "0"})
        current = await admin.get(rest.RESOURCEQUOTAS, created["metadata"]["name"], namespace=NS)
        current["status"]["used"] = {"pods": "3"}
        await admin.update_status(rest.RESOURCEQUOTAS, current)
        await _status_becomes(admin, "pods", {"pods": "0"})
    finally:
        await controller_manager.stop(running)
