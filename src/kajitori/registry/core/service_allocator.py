"""ClusterIP and NodePort allocation for Services.

Upstream's service REST storage allocates a ClusterIP from the service CIDR
and NodePorts from 30000-32767 before the Service is stored, and releases
them when it goes. Since 1.33 upstream records each ClusterIP as an
``IPAddress`` object, so that allocation is an atomic create in storage and
several API servers sharing etcd never hand out one address twice. We do
the same for both kinds of allocation: every IP or port held is a key created
with create-if-absent (``/registry/ipaddresses/<ip>``,
``/registry/servicenodeports/<port>``) whose value names the Service holding
it; an IP's value is the ``networking.k8s.io/v1`` IPAddress upstream's
allocator creates, so ``kubectl get ipaddresses`` lists every ClusterIP.
Dynamic ClusterIPs come from the upper part of the range, leaving the low
addresses for the static ones people choose (upstream's split).

The service CIDR is kubeadm's 10.96.0.0/12 and the ``kubernetes`` Service
holds its first address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kajitori.machinery import errors, field
from kajitori.machinery.times import now_rfc3339
from kajitori.registry.generic.uids import new_uid
from kajitori.storage import interface as storage

Object = dict[str, Any]
Rollback = Callable[[], Awaitable[None]]

SERVICE_CIDR = "10.96.0.0/12"
NODE_PORT_RANGE = (30000, 32767)
IP_PREFIX = "/registry/ipaddresses/"
NODE_PORT_PREFIX = "/registry/servicenodeports/"
_ATTEMPTS = 64
_SERVICE_GK = errors.GroupKind("", "Service")


@dataclass(frozen=True, slots=True)
class _Needs:
    cluster_ip: str  # "" none, "auto" allocate, or a requested address
    node_ports: tuple[tuple[int, int], ...]  # (port index, requested port or 0)


def _wants_cluster_ip(spec: Object) -> bool:
    if spec.get("type") == "ExternalName":
        return False
    return spec.get("clusterIP") != "None"


def _wants_node_ports(spec: Object) -> bool:
    kind = spec.get("type")
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True)


def _needs(obj: Object) -> _Needs:
    spec = obj.get("spec") or {}
    ip = ""
    if _wants_cluster_ip(spec):
        ip = spec.get("clusterIP") or "auto"
    ports: list[tuple[int, int]] = []
    if _wants_node_ports(spec):
        for i, port in enumerate(spec.get("ports") or []):
            ports.append((i, int(port.get("nodePort") or 0)))
    return _Needs(ip, tuple(ports))


class ServiceAllocator:
    """Holds ClusterIPs and NodePorts as storage keys; one instance per API server."""

    def __init__(
        self, *, cidr: str = SERVICE_CIDR, node_ports: tuple[int, int] = NODE_PORT_RANGE
    ) -> None:
        self.network = ipaddress.ip_network(cidr)
        self.node_ports = node_ports

    # ----- the store calls these ------------------------------------------

    async def allocate(
        self, backend: storage.Backend, obj: Object, old: Object | None, *, dry_run: bool
    ) -> Rollback:
        """Fill in clusterIP(s) and nodePorts; returns how to undo if the write fails."""
        taken: list[str] = []
        try:
            await self._allocate(backend, obj, old, taken, dry_run=dry_run)
        except BaseException:
            await _release_keys(backend, taken)
            raise

        async def rollback() -> None:
            await _release_keys(backend, taken)

        return rollback

    async def release(
        self, backend: storage.Backend, obj: Object, keep: Object | None = None
    ) -> None:
        """Free what ``obj`` held and ``keep`` (its replacement, if any) no longer does."""
        held = _held_keys(obj)
        still = _held_keys(keep) if keep is not None else set()
        await _release_keys(backend, sorted(held - still))

    # ----- allocation ------------------------------------------------------

    async def _allocate(
        self,
        backend: storage.Backend,
        obj: Object,
        old: Object | None,
        taken: list[str],
        *,
        dry_run: bool,
    ) -> None:
        needs = _needs(obj)
        owner = _owner(obj)
        spec = obj.setdefault("spec", {})
        already = _held_keys(old) if old is not None else set()
        if needs.cluster_ip:
            ip = await self._cluster_ip(backend, needs.cluster_ip, owner, already, taken, dry_run)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        errs = field.ErrorList()
        for index, requested in needs.node_ports:
            port, problem = await self._node_port(
                backend, requested, owner, already, taken, dry_run
            )
            if problem:
                path = field.Path("spec", "ports").index(index).child("nodePort")
                errs.append(field.invalid(path, requested, problem))
                continue
            spec["ports"][index]["nodePort"] = port
        if errs:
            raise errors.invalid(_SERVICE_GK, obj["metadata"].get("name", ""), errs)

    async def _cluster_ip(
        self,
        backend: storage.Backend,
        requested: str,
        owner: Object,
        already: set[str],
        taken: list[str],
        dry_run: bool,
    ) -> str:
        if requested != "auto":
            problem = self._check_ip(requested)
            key = IP_PREFIX + requested
            if not problem and key not in already:
                problem = await _claim(backend, key, owner, taken, dry_run)
            if problem:
                raise errors.invalid(
                    _SERVICE_GK,
                    owner["name"],
                    [
                        field.invalid(
                            "spec.clusterIPs",
                            [requested],
                            f"failed to allocate IP {requested}: {problem}",
                        )
                    ],
                )
            return requested
        for ip in self._candidate_ips():
            if await _claim(backend, IP_PREFIX + ip, owner, taken, dry_run) is None:
                return ip
        raise errors.internal_error("failed to allocate a serviceIP: range is full")

    def _check_ip(self, text: str) -> str | None:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return f"the provided IP ({text}) is not a valid IP"
        if ip not in self.network or ip in (
            self.network.network_address,
            self.network.broadcast_address,
        ):
            return (
                f"the provided IP ({text}) is not in the valid range. "
                f"The range of valid IPs is {self.network}"
            )
        return None

    def _candidate_ips(self) -> list[str]:
        size = self.network.num_addresses
        # Dynamic allocation prefers the upper band (upstream: above 1/16 of the range).
        low = max(size // 16, 2)
        picks = random.sample(range(low, size - 1), k=min(_ATTEMPTS, size - 1 - low))
        return [str(self.network.network_address + i) for i in picks]

    async def _node_port(
        self,
        backend: storage.Backend,
        requested: int,
        owner: Object,
        already: set[str],
        taken: list[str],
        dry_run: bool,
    ) -> tuple[int, str | None]:
        low, high = self.node_ports
        if requested:
            if not low <= requested <= high:
                return requested, (
                    f"provided port is not in the valid range. The range of valid ports is {low}-{high}"
                )
            key = f"{NODE_PORT_PREFIX}{requested}"
            if key in already:
                return requested, None
            problem = await _claim(backend, key, owner, taken, dry_run)
            return requested, ("provided port is already allocated" if problem else None)
        for port in random.sample(range(low, high + 1), k=_ATTEMPTS):
            if await _claim(backend, f"{NODE_PORT_PREFIX}{port}", owner, taken, dry_run) is None:
                return port, None
        raise errors.internal_error("failed to allocate a nodePort: range is full")


def _owner(obj: Object) -> Object:
    meta = obj.get("metadata", {})
    return {"namespace": meta.get("namespace", ""), "name": meta.get("name", "")}


async def _claim(
    backend: storage.Backend, key: str, owner: Object, taken: list[str], dry_run: bool
) -> str | None:
    """Create the allocation key; None on success, a reason when someone holds it."""
    if dry_run:
        _, existing = await backend.get(key)
        return "provided IP is already allocated" if existing is not None else None
    value = orjson.dumps(_allocation_record(key, owner))
    try:
        await backend.create(key, value)
    except storage.KeyExistsError:
        return "provided IP is already allocated"
    taken.append(key)
    return None


def _allocation_record(key: str, owner: Object) -> Object:
    """What an allocation key holds: an IPAddress object for a ClusterIP, as upstream's
    allocator creates one (served as ``networking.k8s.io/v1 ipaddresses``), else its owner."""
    ref = {"resource": "services", **owner}
    if not key.startswith(IP_PREFIX):
        return {"parentRef": {"group": "", **ref}}
    ip = key.removeprefix(IP_PREFIX)
    family = "IPv6" if ":" in ip else "IPv4"
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip,
            "uid": new_uid(),
            "creationTimestamp": now_rfc3339(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": family,
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": ref},
    }


async def upgrade_legacy_records(backend: storage.Backend) -> int:
    """Rewrite ClusterIP keys stored by kajitori before IPAddresses were served; how many.

    Earlier versions kept only ``{"parentRef": ...}`` under an IP's key, which the
    ``ipaddresses`` resource (the same keys) cannot serve. Each such value becomes the
    IPAddress it stands for, guarded by its revision: a key released or rewritten in the
    meantime is left to whoever changed it.
    """
    upgraded, after = 0, ""
    while True:
        page = await backend.range(IP_PREFIX, start_after=after, limit=500)
        for kv in page.kvs:
            record = orjson.loads(kv.value)
            if "kind" in record or not isinstance(record.get("parentRef"), dict):
                continue
            owner = {k: v for k, v in record["parentRef"].items() if k not in ("group", "resource")}
            value = orjson.dumps(_allocation_record(kv.key, owner))
            with contextlib.suppress(storage.RevisionConflictError, storage.KeyNotFoundError):
                await backend.update(kv.key, value, expected_revision=kv.mod_revision)
                upgraded += 1
        if not page.more or not page.kvs:
            return upgraded
        after = page.kvs[-1].key


def _held_keys(obj: Object | None) -> set[str]:
    if obj is None:
        return set()
    spec = obj.get("spec") or {}
    keys = {IP_PREFIX + ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"}
    if spec.get("clusterIP") and spec["clusterIP"] != "None":
        keys.add(IP_PREFIX + spec["clusterIP"])
    if _wants_node_ports(spec):
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                keys.add(f"{NODE_PORT_PREFIX}{port['nodePort']}")
    return keys


async def _release_keys(backend: storage.Backend, keys: list[str]) -> None:
    for key in keys:
        try:
            await backend.delete(key)
        except storage.KeyNotFoundError:
            continue
