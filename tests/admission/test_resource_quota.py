"""ResourceQuota admission through an in-process API server (no controller: status set by hand)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kajitori.admission.plugins import resource_quota
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions, Store

Object = dict[str, Any]
NS = "default"


# Pods need ``default/default`` (admission) and no controller makes it here.
pytestmark = pytest.mark.usefixtures("module_namespace")


async def _quota(
    client: rest.Client, name: str, hard: dict[str, str], *, spec: Object | None = None
) -> Object:
    """A quota whose status the controller would have written: its hard, nothing used."""
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard, **(spec or {})},
    }
    created = await client.create(rest.RESOURCEQUOTAS, body, namespace=NS)
    created["status"] = {"hard": hard, "used": dict.fromkeys(hard, "0")}
    return await client.update_status(rest.RESOURCEQUOTAS, created)


async def _used(client: rest.Client, name: str) -> dict[str, str]:
    found = await client.get(rest.RESOURCEQUOTAS, name, namespace=NS)
    used: dict[str, str] = found["status"]["used"]
    return used


def _pod(name: str, *, resources: Object | None = None, **spec: Any) -> Object:
    container: Object = {"name": "nginx", "image": "nginx"}
    if resources is not None:
        container["resources"] = resources
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def _cpu(request: str, limit: str) -> Object:
    return {"requests": {"cpu": request}, "limits": {"cpu": limit}}


async def _refusal(client: rest.Client, resource: rest.Resource, body: Object) -> str:
    with pytest.raises(rest.ApiError) as caught:
        await client.create(resource, body, namespace=NS)
    assert caught.value.code == 403, caught.value
    return caught.value.message


async def _names(client: rest.Client, resource: rest.Resource) -> list[str]:
    listed = await client.list(resource, namespace=NS)
    return sorted(item["metadata"]["name"] for item in listed["items"])


async def test_object_counts_are_charged_and_the_one_too_many_is_forbidden(
    admin: rest.Client,
) -> None:
    """Each create raises status.used; past hard, 403 with upstream's text and nothing stored."""
    await _quota(admin, "compute-resources", {"pods": "2"})
    for name in ("a", "b"):
        await admin.create(rest.PODS, _pod(name), namespace=NS)
    assert await _used(admin, "compute-resources") == {"pods": "2"}
    message = await _refusal(admin, rest.PODS, _pod("c"))
    assert message == (
        'pods "c" is forbidden: exceeded quota: compute-resources, '
        "requested: pods=1, used: pods=2, limited: pods=2"
    )
    assert await _names(admin, rest.PODS) == ["a", "b"]
    assert await _used(admin, "compute-resources") == {"pods": "2"}


async def test_compute_quota_needs_every_container_to_state_it(admin: rest.Client) -> None:
    """A quota on requests.cpu and limits.cpu refuses a pod that does not say them."""
    await _quota(admin, "compute-resources", {"requests.cpu": "1", "limits.cpu": "2"})
    message = await _refusal(admin, rest.PODS, _pod("nginx"))
    assert message == (
        'pods "nginx" is forbidden: failed quota: compute-resources: '
        "must specify limits.cpu for: nginx; requests.cpu for: nginx"
    )
    assert await _names(admin, rest.PODS) == []


async def test_compute_requests_add_up_until_the_limit(admin: rest.Client) -> None:
    """requests.cpu and limits.cpu sum over pods; the one that would pass hard is refused."""
    await _quota(admin, "cpu", {"requests.cpu": "1", "limits.cpu": "2", "cpu": "1"})
    await admin.create(rest.PODS, _pod("one", resources=_cpu("600m", "1")), namespace=NS)
    assert await _used(admin, "cpu") == {"cpu": "600m", "requests.cpu": "600m", "limits.cpu": "1"}
    message = await _refusal(admin, rest.PODS, _pod("two", resources=_cpu("600m", "600m")))
    assert message == (
        'pods "two" is forbidden: exceeded quota: cpu, requested: cpu=600m,requests.cpu=600m, '
        "used: cpu=600m,requests.cpu=600m, limited: cpu=1,requests.cpu=1"
    )
    await admin.create(rest.PODS, _pod("three", resources=_cpu("400m", "1")), namespace=NS)
    assert await _used(admin, "cpu") == {"cpu": "1", "requests.cpu": "1", "limits.cpu": "2"}


async def test_racing_creates_never_pass_the_limit(admin: rest.Client) -> None:
    """Eight concurrent creates against pods=3: exactly three are stored and charged."""
    await _quota(admin, "pods", {"pods": "3"})
    results = await asyncio.gather(
        *(admin.create(rest.PODS, _pod(f"p{i}"), namespace=NS) for i in range(8)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, rest.ApiError)]
    assert len(refused) == 5 and all(r.code == 403 for r in refused)
    assert len(await _names(admin, rest.PODS)) == 3
    assert await _used(admin, "pods") == {"pods": "3"}


async def test_a_lost_compare_and_swap_rechecks_against_the_newer_usage(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """Another server charging the quota between our read and write makes us re-read and refuse."""
    await _quota(admin, "pods", {"pods": "1"})
    assert apiserver.registry is not None
    quotas = apiserver.registry.lookup("", "v1", "resourcequotas")
    pods = apiserver.registry.lookup("", "v1", "pods")
    assert quotas is not None and pods is not None
    racer = _RacingQuotas(quotas, admin)
    plugin = resource_quota.ResourceQuota(lambda *gvr: racer)  # type: ignore[arg-type,return-value]
    pod = _pod("late")
    pod["metadata"]["namespace"] = NS
    with pytest.raises(Exception) as caught:
        await plugin.validate(pods, "CREATE", pod, None, RequestContext())
    assert "exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1" in str(
        caught.value
    )
    assert racer.lists == 2  # the first answer was stale; the swap failed and we read again
    assert await _used(admin, "pods") == {"pods": "1"}


class _RacingQuotas:
    """The quotas store, where another writer takes the last unit right after our first read."""

    def __init__(self, store: Store, client: rest.Client) -> None:
        self.store = store
        self.client = client
        self.lists = 0

    async def list(self, namespace: str, opts: ListOptions) -> Any:
        result = await self.store.list(namespace, opts)
        if opts.limit:
            return result  # the plugin's "any quota here?" probe
        self.lists += 1
        if self.lists == 1:
            theirs = await self.client.get(rest.RESOURCEQUOTAS, "pods", namespace=NS)
            theirs["status"]["used"] = {"pods": "1"}
            await self.client.update_status(rest.RESOURCEQUOTAS, theirs)
        return result

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        return await self.store.update(*args, **kwargs)


async def test_scopes_choose_which_pods_a_quota_counts(admin: rest.Client) -> None:
    """BestEffort, NotBestEffort, Terminating and NotTerminating pick pods by QoS and deadline."""
    await _quota(admin, "best-effort", {"pods": "5"}, spec={"scopes": ["BestEffort"]})
    await _quota(admin, "burstable", {"pods": "5"}, spec={"scopes": ["NotBestEffort"]})
    await _quota(admin, "terminating", {"pods": "5"}, spec={"scopes": ["Terminating"]})
    await _quota(admin, "long-running", {"pods": "5"}, spec={"scopes": ["NotTerminating"]})
    await admin.create(rest.PODS, _pod("plain"), namespace=NS)
    await admin.create(
        rest.PODS, _pod("job", resources=_cpu("1", "1"), activeDeadlineSeconds=60), namespace=NS
    )
    assert await _used(admin, "best-effort") == {"pods": "1"}
    assert await _used(admin, "burstable") == {"pods": "1"}
    assert await _used(admin, "terminating") == {"pods": "1"}
    assert await _used(admin, "long-running") == {"pods": "1"}


async def test_priority_class_scope_selector(admin: rest.Client) -> None:
    """A scopeSelector on PriorityClass In [high] counts only pods of that class."""
    high = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "high"},
        "value": 1000,
    }
    await admin.create(rest.Resource("scheduling.k8s.io", "v1", "priorityclasses", False), high)
    selector = {
        "scopeSelector": {
            "matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}
            ]
        }
    }
    await _quota(admin, "high", {"pods": "1"}, spec=selector)
    await admin.create(rest.PODS, _pod("important", priorityClassName="high"), namespace=NS)
    await admin.create(rest.PODS, _pod("ordinary"), namespace=NS)
    message = await _refusal(admin, rest.PODS, _pod("another", priorityClassName="high"))
    assert "exceeded quota: high, requested: pods=1, used: pods=1, limited: pods=1" in message
    assert await _names(admin, rest.PODS) == ["important", "ordinary"]


def _service(name: str, kind: str, ports: int) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": kind,
            "selector": {"app": name},
            "ports": [{"name": f"p{i}", "port": 80 + i} for i in range(ports)],
        },
    }


async def test_services_count_node_ports_and_load_balancers(admin: rest.Client) -> None:
    """NodePort services cost one node port per port; LoadBalancers also one load balancer."""
    hard = {"services": "5", "services.nodeports": "2", "services.loadbalancers": "0"}
    await _quota(admin, "services", hard)
    await admin.create(rest.SERVICES, _service("web", "NodePort", 2), namespace=NS)
    assert await _used(admin, "services") == {
        "services": "1",
        "services.nodeports": "2",
        "services.loadbalancers": "0",
    }
    message = await _refusal(admin, rest.SERVICES, _service("more", "NodePort", 1))
    assert message == (
        'services "more" is forbidden: exceeded quota: services, requested: '
        "services.nodeports=1, used: services.nodeports=2, limited: services.nodeports=2"
    )
    balancer = _service("lb", "LoadBalancer", 1)
    balancer["spec"]["allocateLoadBalancerNodePorts"] = False  # so it needs no node port
    message = await _refusal(admin, rest.SERVICES, balancer)
    assert "requested: services.loadbalancers=1, used: services.loadbalancers=0" in message
    await admin.create(rest.SERVICES, _service("internal", "ClusterIP", 1), namespace=NS)
    assert (await _used(admin, "services"))["services"] == "2"


async def test_object_counts_by_count_name_and_classic_name(admin: rest.Client) -> None:
    """count/configmaps and configmaps both count ConfigMaps; count/<r>.<group> any resource."""
    hard = {"configmaps": "1", "count/configmaps": "5", "count/deployments.apps": "0"}
    await _quota(admin, "objects", hard)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}}
    await admin.create(rest.CONFIGMAPS, configmap, namespace=NS)
    assert await _used(admin, "objects") == {
        "configmaps": "1",
        "count/configmaps": "1",
        "count/deployments.apps": "0",
    }
    configmap["metadata"]["name"] = "two"
    message = await _refusal(admin, rest.CONFIGMAPS, configmap)
    assert message.endswith("requested: configmaps=1, used: configmaps=1, limited: configmaps=1")
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
    message = await _refusal(admin, rest.DEPLOYMENTS, deployment)
    assert message == (
        'deployments.apps "web" is forbidden: exceeded quota: objects, requested: '
        "count/deployments.apps=1, used: count/deployments.apps=0, "
        "limited: count/deployments.apps=0"
    )


def _claim(name: str, storage: str, storage_class: str = "") -> Object:
    spec: Object = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_claims_charge_storage_overall_and_per_storage_class(admin: rest.Client) -> None:
    """requests.storage counts every claim; <class>.storageclass... only that class's."""
    gold = "gold.storageclass.storage.k8s.io/requests.storage"
    await _quota(admin, "storage", {"requests.storage": "10Gi", gold: "3Gi"})
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, _claim("a", "2Gi", "gold"), namespace=NS)
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, _claim("b", "5Gi"), namespace=NS)
    assert await _used(admin, "storage") == {"requests.storage": "7Gi", gold: "2Gi"}
    message = await _refusal(admin, rest.PERSISTENTVOLUMECLAIMS, _claim("c", "2Gi", "gold"))
    assert message.endswith(f"requested: {gold}=2Gi, used: {gold}=2Gi, limited: {gold}=3Gi")
    assert await _names(admin, rest.PERSISTENTVOLUMECLAIMS) == ["a", "b"]


async def test_dry_run_is_checked_but_not_charged(admin: rest.Client) -> None:
    """A dry-run create is refused like a real one, and when it fits it charges nothing."""
    await _quota(admin, "pods", {"pods": "1"})
    await admin.request(
        "POST", rest.PODS.path(namespace=NS), body=_pod("a"), params={"dryRun": "All"}
    )
    assert await _used(admin, "pods") == {"pods": "0"}


async def test_a_quota_without_status_limits_nothing_yet(admin: rest.Client) -> None:
    """Hard limits are read from status, which only the controller fills in (as upstream)."""
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "fresh"},
        "spec": {"hard": {"pods": "0"}},
    }
    await admin.create(rest.RESOURCEQUOTAS, body, namespace=NS)
    await admin.create(rest.PODS, _pod("early"), namespace=NS)
    assert await _names(admin, rest.PODS) == ["early"]


async def test_a_quota_without_usage_for_what_it_tracks_refuses(admin: rest.Client) -> None:
    """status.hard names pods but status.used does not: upstream's "status unknown"."""
    created = await _quota(admin, "half", {"pods": "5"})
    created["status"]["used"] = {}
    await admin.update_status(rest.RESOURCEQUOTAS, created)
    message = await _refusal(admin, rest.PODS, _pod("early"))
    assert message == 'pods "early" is forbidden: status unknown for quota: half, resources: pods'


async def test_an_update_is_charged_only_its_increase(admin: rest.Client) -> None:
    """Turning a ClusterIP Service into a NodePort one costs its node ports, not a service."""
    await _quota(admin, "services", {"services": "1", "services.nodeports": "1"})
    service = await admin.create(rest.SERVICES, _service("web", "ClusterIP", 1), namespace=NS)
    assert await _used(admin, "services") == {"services": "1", "services.nodeports": "0"}
    service["spec"]["type"] = "NodePort"
    await admin.update(rest.SERVICES, service, namespace=NS)
    assert await _used(admin, "services") == {"services": "1", "services.nodeports": "1"}


async def _eventually(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_namespace_known_to_have_no_quota_costs_no_quota_read(
    apiserver: APIServerProcess, admin: rest.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the plugin's index has listed, only namespaces holding a quota read quotas."""
    assert apiserver.registry is not None
    quotas = apiserver.registry.lookup("", "v1", "resourcequotas")
    pods = apiserver.registry.lookup("", "v1", "pods")
    assert quotas is not None and pods is not None
    plugin = resource_quota.ResourceQuota(apiserver.registry.lookup)
    pod = _pod("free")
    pod["metadata"]["namespace"] = NS
    await plugin.validate(pods, "CREATE", pod, None, RequestContext())
    index = plugin._index
    assert index is not None
    await _eventually(lambda: index.synced)
    reads: list[str] = []
    real_list = quotas.list

    async def counting_list(namespace: str, opts: ListOptions) -> Any:
        reads.append(namespace)
        return await real_list(namespace, opts)

    monkeypatch.setattr(quotas, "list", counting_list)
    await plugin.validate(pods, "CREATE", pod, None, RequestContext())
    assert reads == []
    await _quota(admin, "pods", {"pods": "1"})
    await _eventually(lambda: index.counts.get(NS) == 1)
    await plugin.validate(pods, "CREATE", pod, None, RequestContext())
    assert NS in reads  # a namespace with a quota is checked against storage
    await admin.delete(rest.RESOURCEQUOTAS, "pods", namespace=NS)
    await _eventually(lambda: not index.counts.get(NS))
