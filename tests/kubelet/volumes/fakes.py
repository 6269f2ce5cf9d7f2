"""A dict-backed ``ObjectSource`` and object builders for volume and environment tests."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from kajitori.kubelet.volumes.source import Token

Object = dict[str, Any]


class DictSource:
    """An ObjectSource over dicts, recording events."""

    def __init__(
        self,
        objects: dict[tuple[str, str, str], Object],
        services: dict[str, list[Object]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.objects = objects
        self.services: dict[str, list[Object]] = services or {}
        self.events: list[tuple[str, str, str]] = []
        self.tokens = 0

    async def get_secret(self, namespace: str, name: str) -> Object | None:
        return self.objects.get(("Secret", namespace, name))

    async def get_configmap(self, namespace: str, name: str) -> Object | None:
        return self.objects.get(("ConfigMap", namespace, name))

    async def get_pvc(self, namespace: str, name: str) -> Object | None:
        return self.objects.get(("PersistentVolumeClaim", namespace, name))

    async def get_pv(self, name: str) -> Object | None:
        return self.objects.get(("PersistentVolume", "", name))

    async def get_node(self, name: str) -> Object | None:
        return self.objects.get(("Node", "", name))

    async def list_services(self, namespace: str) -> list[Object]:
        return self.services.get(namespace, [])

    async def get_cluster_trust_bundle(self, name: str) -> Object | None:
        return self.objects.get(("ClusterTrustBundle", "", name))

    async def list_cluster_trust_bundles(self) -> list[Object]:
        return [o for (kind, _, _), o in self.objects.items() if kind == "ClusterTrustBundle"]

    async def create_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: list[str],
        expiration_seconds: int,
        pod: Object,
    ) -> Token:
        self.tokens += 1
        return Token(f"token-{self.tokens}", self.clock() + expiration_seconds)

    async def event(self, pod: Object, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))


def secret(name: str, data: dict[str, str], namespace: str = "default") -> Object:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace},
        "data": encoded,
    }


def configmap(name: str, data: dict[str, str], namespace: str = "default") -> Object:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def service(name: str, ip: str, *ports: Object, namespace: str = "default") -> Object:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }
