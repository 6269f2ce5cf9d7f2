"""Objects every cluster has from its first second, created (if missing) at start.

As upstream's apiserver post-start hooks: the namespaces ``default``,
``kube-system``, ``kube-public`` and ``kube-node-lease``, the default RBAC
policy (auth.bootstrap_policy, reconciled on every start), and the
``kubernetes`` Service in ``default`` at the first address of the service
CIDR (10.96.0.1, kubeadm's convention) on port 443, with Endpoints and an
EndpointSlice pointing at this API server (``master_endpoints``), and the
``kubernetes`` ServiceCIDR holding that CIDR, marked Ready as upstream's
kubernetes-service-cidr-controller marks it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kajitori.auth import bootstrap_policy
from kajitori.machinery import errors
from kajitori.machinery.times import now_rfc3339
from kajitori.registry.core import service_allocator
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import Store
from kajitori.server import local_path_storage, master_endpoints
from kajitori.server.apis import APIRegistry

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KUBERNETES_SERVICE_IP = "10.96.0.1"
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))


async def _ensure(
    registry: APIRegistry, group: str, plural: str, namespace: str, obj: dict[str, Any]
) -> None:
    """Create ``obj`` unless it exists (a restart finds it stored and leaves it alone)."""
    store = registry.lookup(group, "v1", plural)
    if store is None:
        return
    try:
        await store.get(namespace, obj["metadata"]["name"])
        return
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
    try:
        await store.create(namespace, obj, RequestContext(user=_SYSTEM))
    except errors.StatusError as exc:
        if exc.code != 409:
            raise


async def ensure_initial_objects(
    registry: APIRegistry, *, api_port: int, api_address: str = "127.0.0.1"
) -> None:
    """Create what is missing, in two waves: the namespaces, then what lives in them.

    Within a wave nothing depends on anything else, so the writes go out
    together and share storage round trips (SQLite's group commit, etcd's
    batching) instead of waiting for each other: on a fresh data directory this
    is most of what start-up waits for. The RBAC policy is cluster-scoped and
    is reconciled alongside both waves.
    """
    namespaces = [("", "namespaces", "", _namespace(name)) for name in INITIAL_NAMESPACES]
    rest = [("", "services", "default", _kubernetes_service())]
    # kind's default StorageClass and its local-path provisioner's identity.
    for item in local_path_storage.objects():
        (namespaces if item[1] == "namespaces" else rest).append(item)
    stores = rbac_stores(registry)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(service_allocator.upgrade_legacy_records(registry.backend))
        if len(stores) == len(_RBAC_PLURALS):
            tasks.create_task(bootstrap_policy.reconcile(stores))
        await _ensure_all(registry, namespaces)
        tasks.create_task(_ensure_all(registry, rest))
        tasks.create_task(
            master_endpoints.reconcile(registry, api_address=api_address, api_port=api_port)
        )
        tasks.create_task(ensure_default_service_cidr(registry))


async def _ensure_all(
    registry: APIRegistry, items: list[tuple[str, str, str, dict[str, Any]]]
) -> None:
    async with asyncio.TaskGroup() as tasks:
        for group, plural, namespace, obj in items:
            tasks.create_task(_ensure(registry, group, plural, namespace, obj))


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


_RBAC_PLURALS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")


def rbac_stores(registry: APIRegistry) -> dict[str, Store]:
    """The four RBAC stores by plural, for the policy reconciler and the RBAC authorizer."""
    stores = {}
    for plural in _RBAC_PLURALS:
        store = registry.lookup("rbac.authorization.k8s.io", "v1", plural)
        if store is not None:
            stores[plural] = store
    return stores


def _kubernetes_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": KUBERNETES_SERVICE_IP,
            "clusterIPs": [KUBERNETES_SERVICE_IP],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "sessionAffinity": "None",
        },
    }


# Upstream's defaultservicecidr controller: its name (the status's field manager),
# the Ready condition it applies (with no reason), and the configured CIDRs.
SERVICE_CIDR_CONTROLLER = "kubernetes-service-cidr-controller"
DEFAULT_SERVICE_CIDR_READY = "Kubernetes default Service CIDR is ready"


async def ensure_default_service_cidr(
    registry: APIRegistry, cidrs: tuple[str, ...] = (service_allocator.SERVICE_CIDR,)
) -> None:
    """Create the ``kubernetes`` ServiceCIDR if missing, then mark it Ready.

    As upstream, Ready=True is set only while its CIDRs are this server's and
    no Ready condition is True or False yet; one being deleted is left to the
    service-cidrs controller.
    """
    store = registry.lookup("networking.k8s.io", "v1", "servicecidrs")
    if store is None:
        return
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "ServiceCIDR",
        "metadata": {"name": "kubernetes"},
        "spec": {"cidrs": list(cidrs)},
    }
    await _ensure(registry, "networking.k8s.io", "servicecidrs", "", body)
    current = await store.get("", "kubernetes")
    if current["metadata"].get("deletionTimestamp") or current["spec"].get("cidrs") != list(cidrs):
        return
    conditions = (current.get("status") or {}).get("conditions") or []
    if any(c.get("type") == "Ready" and c.get("status") in ("True", "False") for c in conditions):
        return
    ready = {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": now_rfc3339(),
        "reason": "",
        "message": DEFAULT_SERVICE_CIDR_READY,
    }
    others = [c for c in conditions if c.get("type") != "Ready"]
    current["status"] = {**(current.get("status") or {}), "conditions": [*others, ready]}
    ctx = RequestContext(user=_SYSTEM, field_manager=SERVICE_CIDR_CONTROLLER)
    try:
        await store.update("", "kubernetes", current, ctx, subresource="status")
    except errors.StatusError as exc:
        if exc.code != 409:  # another API server marked it meanwhile
            raise
