"""The service-cidrs controller: guards ServiceCIDR deletion with a finalizer.

Mirrors upstream's pkg/controller/servicecidrs. Every ServiceCIDR gets the
``networking.k8s.io/service-cidr-finalizer`` and a Ready=True condition.
Once one is being deleted, the finalizer stays while some IPAddress the
Service IP allocator holds (``managed-by: ipallocator.k8s.io``) would be
left in no other ServiceCIDR; meanwhile Ready turns False with reason
OrphanIPAddress. When nothing would be orphaned (or another ServiceCIDR
covers all of it) the finalizer goes after a grace period, which lets API
servers stop allocating from it first. Events of other ServiceCIDRs that
overlap it, and of IPAddresses inside it, bring a ServiceCIDR back to the
queue. Conditions are written with server-side apply to ``/status`` as
``service-cidr-controller``, as upstream.

The planning (``blocking_addresses``, ``covering``) is pure and works on
plain lists, so it is tested without a cluster.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import pod_util
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SERVICE_CIDRS = rest.Resource("networking.k8s.io", "v1", "servicecidrs", False, "ServiceCIDR")
IP_ADDRESSES = rest.Resource("networking.k8s.io", "v1", "ipaddresses", False, "IPAddress")

CONTROLLER_NAME = "service-cidr-controller"
FINALIZER = "networking.k8s.io/service-cidr-finalizer"
MANAGED_BY_LABEL = "ipaddress.kubernetes.io/managed-by"
IP_ALLOCATOR = "ipallocator.k8s.io"
DELETION_GRACE_PERIOD = 10.0
READY_MESSAGE = "Kubernetes Service CIDR is ready"
ORPHAN_REASON = "OrphanIPAddress"
ORPHAN_MESSAGE = (
    "There are still IPAddresses referencing the ServiceCIDR, please remove them or create a "
    "new ServiceCIDR"
)
_APPLY = "application/apply-patch+yaml"


# ----- planning (pure) -------------------------------------------------------------


def networks(cidr: Object) -> list[Network]:
    """The parsed ``spec.cidrs`` (invalid entries cannot be stored; skipped anyway)."""
    found: list[Network] = []
    for text in (cidr.get("spec") or {}).get("cidrs") or []:
        try:
            found.append(ipaddress.ip_network(str(text)))
        except ValueError:
            continue
    return found


def _holds_address(network: Network, address: Address) -> bool:
    # The network and last addresses are never handed out, so they belong to no range.
    return (
        address.version == network.version
        and address in network
        and address not in (network.network_address, network.broadcast_address)
    )


def containing_address(cidrs: Iterable[Object], address: Address) -> list[str]:
    """Names of the ServiceCIDRs whose ranges hold ``address``."""
    return [_name(c) for c in cidrs if any(_holds_address(n, address) for n in networks(c))]


def containing_network(cidrs: Iterable[Object], network: Network) -> list[str]:
    """Names of the ServiceCIDRs one of whose ranges contains all of ``network``."""
    return [
        _name(c)
        for c in cidrs
        if any(n.version == network.version and network.subnet_of(n) for n in networks(c))  # type: ignore[arg-type]
    ]


def overlapping(cidrs: Iterable[Object], cidr: Object) -> list[str]:
    """Names of the ServiceCIDRs overlapping any range of ``cidr`` (itself included)."""
    mine = networks(cidr)
    return [
        _name(c)
        for c in cidrs
        if any(n.version == m.version and n.overlaps(m) for n in networks(c) for m in mine)  # type: ignore[arg-type]
    ]


def _allocated(ip: Object) -> Address | None:
    labels = (ip.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != IP_ALLOCATOR:
        return None
    try:
        return ipaddress.ip_address(_name(ip))
    except ValueError:
        return None


def blocking_addresses(cidr: Object, cidrs: list[Object], ips: Iterable[Object]) -> list[str]:
    """Allocated addresses that deleting ``cidr`` would leave in no ServiceCIDR.

    Empty when another ServiceCIDR covers each of its ranges (upstream's
    "has a parent" shortcut) or when every allocated address inside it is
    also inside another one.
    """
    name = _name(cidr)
    if all(set(containing_network(cidrs, n)) - {name} for n in networks(cidr)):
        return []
    blocking = []
    for ip in ips:
        address = _allocated(ip)
        if address is not None and containing_address(cidrs, address) == [name]:
            blocking.append(str(address))
    return blocking


def ready_condition(cidr: Object) -> Object | None:
    for condition in (cidr.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def _name(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# ----- the controller --------------------------------------------------------------


class ServiceCIDRsController(base.QueueController[str]):
    """Adds and removes the ServiceCIDR finalizer; ``clock`` and the grace period are injectable."""

    name = "service-cidrs"
    # Upstream: maxRetries 15.
    max_retries = 15

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        deletion_grace_period: float = DELETION_GRACE_PERIOD,
        clock: Callable[[], datetime.datetime] = pod_util.now,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.grace = deletion_grace_period
        self.clock = clock
        self.cidrs = self.watch(
            informers.informer(SERVICE_CIDRS),
            on_add=self._add_cidr,
            on_update=lambda _, new: self.enqueue(new),
            on_delete=self.enqueue,
        )
        self.ips = self.watch(
            informers.informer(IP_ADDRESSES), on_add=self._touch_ip, on_delete=self._touch_ip
        )

    def _add_cidr(self, cidr: Object) -> None:
        self.enqueue(cidr)
        for name in overlapping(self.cidrs.indexer.list(), cidr):
            self.enqueue_key(name)

    def _touch_ip(self, ip: Object) -> None:
        address = _allocated(ip)
        if address is None:
            return
        for name in containing_address(self.cidrs.indexer.list(), address):
            self.enqueue_key(name)

    async def sync(self, key: str) -> None:
        cidr = self.cidrs.indexer.get(key)
        if cidr is None:
            return
        deleted = (cidr.get("metadata") or {}).get("deletionTimestamp")
        if deleted:
            await self._sync_deleting(key, cidr, deleted)
            return
        if FINALIZER not in ((cidr.get("metadata") or {}).get("finalizers") or []):
            await self._patch_finalizers(key, {"finalizers": [FINALIZER]})
        await self._set_ready(cidr, "True", "", READY_MESSAGE)

    async def _sync_deleting(self, key: str, cidr: Object, deleted: str) -> None:
        blocking = blocking_addresses(cidr, self.cidrs.indexer.list(), self.ips.indexer.list())
        if blocking:
            log.info("ServiceCIDR %s: deletion blocked by IPAddress %s", key, blocking[0])
            await self._set_ready(cidr, "False", ORPHAN_REASON, ORPHAN_MESSAGE)
            return
        since = times.parse_time(deleted)
        if since is not None:
            left = self.grace - (self.clock() - since).total_seconds()
            if left > 0:
                raise base.RequeueAfter(left, f"servicecidr {key} deletable in {left:.1f}s")
        if FINALIZER in ((cidr.get("metadata") or {}).get("finalizers") or []):
            await self._patch_finalizers(key, {"$deleteFromPrimitiveList/finalizers": [FINALIZER]})

    async def _patch_finalizers(self, name: str, metadata: Object) -> None:
        try:
            await self.client.patch(
                SERVICE_CIDRS, name, {"metadata": metadata}, patch_type="strategic"
            )
        except rest.ApiError as exc:
            if not exc.not_found:
                raise

    async def _set_ready(self, cidr: Object, status: str, reason: str, message: str) -> None:
        current = ready_condition(cidr) or {}
        shown = (current.get("status"), current.get("reason") or "", current.get("message"))
        if shown == (status, reason, message):
            return
        condition = {
            "type": "Ready",
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": times.format_time(self.clock()),
        }
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "ServiceCIDR",
            "metadata": {"name": _name(cidr)},
            "status": {"conditions": [condition]},
        }
        path = SERVICE_CIDRS.path(name=_name(cidr), subresource="status")
        try:
            await self.client.request(
                "PATCH",
                path,
                body=body,
                params={"fieldManager": CONTROLLER_NAME, "force": "true"},
                content_type=_APPLY,
            )
        except rest.ApiError as exc:
            if not exc.not_found:
                raise
