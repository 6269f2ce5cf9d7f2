"""``ObjectSource``: what the kubelet reads from the API for volumes and environment.

Upstream's kubelet reaches Secrets, ConfigMaps, claims, volumes,
ClusterTrustBundles and service-account tokens through managers over its own client, as
``system:node:<name>``; the Node authorizer lets it see exactly what pods
bound to the node use. The volume manager and the environment code only
see this small protocol, so they never import the server and tests can
give them a dict-backed source. ``None`` from a getter means "not found".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from kajitori.client import rest
from kajitori.machinery import times

Object = dict[str, Any]

CLUSTER_TRUST_BUNDLES = rest.Resource(
    "certificates.k8s.io", "v1", "clustertrustbundles", False, "ClusterTrustBundle"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    """A service-account token and when it expires (epoch seconds)."""

    token: str
    expires_at: float


class ObjectSource(Protocol):
    async def get_secret(self, namespace: str, name: str) -> Object | None: ...

    async def get_configmap(self, namespace: str, name: str) -> Object | None: ...

    async def get_pvc(self, namespace: str, name: str) -> Object | None: ...

    async def get_pv(self, name: str) -> Object | None: ...

    async def get_node(self, name: str) -> Object | None: ...

    async def list_services(self, namespace: str) -> list[Object]: ...

    async def get_cluster_trust_bundle(self, name: str) -> Object | None: ...

    async def list_cluster_trust_bundles(self) -> list[Object]: ...

    async def create_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: list[str],
        expiration_seconds: int,
        pod: Object,
    ) -> Token: ...

    async def event(self, pod: Object, kind: str, reason: str, message: str) -> None: ...


class ClientObjectSource:
    """An ``ObjectSource`` over a ``rest.Client`` (the node's own identity)."""

    def __init__(
        self,
        client: rest.Client,
        *,
        component: str = "kubelet",
        host: str = "",
        record_event: Callable[[Object, str, str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.record_event = record_event  # the kubelet's recorder, when it has one

    async def _get(self, resource: rest.Resource, name: str, namespace: str = "") -> Object | None:
        try:
            return await self.client.get(resource, name, namespace=namespace)
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def get_secret(self, namespace: str, name: str) -> Object | None:
        return await self._get(rest.SECRETS, name, namespace)

    async def get_configmap(self, namespace: str, name: str) -> Object | None:
        return await self._get(rest.CONFIGMAPS, name, namespace)

    async def get_pvc(self, namespace: str, name: str) -> Object | None:
        return await self._get(rest.PERSISTENTVOLUMECLAIMS, name, namespace)

    async def get_pv(self, name: str) -> Object | None:
        return await self._get(rest.PERSISTENTVOLUMES, name)

    async def get_node(self, name: str) -> Object | None:
        return await self._get(rest.NODES, name)

    async def list_services(self, namespace: str) -> list[Object]:
        listed = await self.client.list(rest.SERVICES, namespace=namespace)
        return list(listed.get("items") or [])

    async def get_cluster_trust_bundle(self, name: str) -> Object | None:
        return await self._get(CLUSTER_TRUST_BUNDLES, name)

    async def list_cluster_trust_bundles(self) -> list[Object]:
        # Upstream's kubelet keeps an informer of every bundle and filters locally.
        listed = await self.client.list(CLUSTER_TRUST_BUNDLES)
        return list(listed.get("items") or [])

    async def create_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: list[str],
        expiration_seconds: int,
        pod: Object,
    ) -> Token:
        meta = pod.get("metadata") or {}
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiration_seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                },
            },
        }
        path = rest.SERVICEACCOUNTS.path(
            namespace=namespace, name=service_account, subresource="token"
        )
        answer = await self.client.request("POST", path, body=body)
        status = answer.get("status") or {}
        stamp = status.get("expirationTimestamp")
        expires = times.parse_time(stamp)
        if expires is None:  # not the status in the message: it holds the token
            raise ValueError(f"TokenRequest answered expirationTimestamp {stamp!r}")
        return Token(str(status.get("token") or ""), expires.timestamp())

    async def event(self, pod: Object, kind: str, reason: str, message: str) -> None:
        if self.record_event is not None:
            self.record_event(pod, kind, reason, message)
            return
        meta = pod.get("metadata") or {}
        now = times.now_rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.client.create(rest.EVENTS, body, namespace=str(meta.get("namespace") or ""))
        except rest.ApiError:
            pass  # events are best effort, as upstream's recorder
