"""Node IPAM: gives every Node a pod CIDR from the cluster CIDR (upstream's range allocator).

Mirrors pkg/controller/nodeipam/ipam/range_allocator.go: the cluster CIDR
(kind's default ``10.244.0.0/16``) is cut into ``/24`` blocks; a Node
without ``spec.podCIDR`` gets the lowest free block, written as
``spec.podCIDR`` and ``spec.podCIDRs``; blocks already on Nodes are marked
used once the node informer has synced (before any allocation, so a
restarted controller never hands out a block twice), and a deleted Node's
block is released. When the range is exhausted the Node keeps no CIDR and
an event ``CIDRNotAvailable`` says so, as upstream. A block is chosen and
recorded without awaiting (one event loop, so no lock is needed); only the
patches run concurrently, one per worker.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_NODE_MASK = 24


def cluster_cidr_for(nodes: int) -> str:
    """The smallest block at 10.244.0.0 (kind's) or below giving ``nodes`` /24s.

    Above 256 nodes the /16 is too small; /14 at 10.244.0.0 holds 1024 and
    10.240.0.0/12 holds 4096, none overlapping the Service range 10.96.0.0/12.
    """
    for prefix, network in ((16, "10.244.0.0"), (14, "10.244.0.0"), (13, "10.240.0.0")):
        if nodes <= 2 ** (DEFAULT_NODE_MASK - prefix):
            return f"{network}/{prefix}"
    return "10.240.0.0/12"


def check_cluster_cidr(cluster_cidr: str, nodes: int) -> None:
    """A ValueError unless ``cluster_cidr`` is an IPv4 network with a /24 for each of ``nodes``."""
    network = ipaddress.ip_network(cluster_cidr)  # strict: no host bits
    if network.version != 4 or network.prefixlen > DEFAULT_NODE_MASK:
        raise ValueError(f"cluster CIDR {cluster_cidr}: an IPv4 network of /24 or wider")
    blocks = 2 ** (DEFAULT_NODE_MASK - network.prefixlen)
    if nodes > blocks:
        raise ValueError(f"cluster CIDR {cluster_cidr} holds {blocks} nodes, not {nodes}")


class CIDRSet:
    """The /``mask`` blocks of one cluster CIDR, used or free."""

    def __init__(self, cluster_cidr: str, mask: int = DEFAULT_NODE_MASK) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        self.mask = mask
        self.size = 2 ** (mask - self.network.prefixlen)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int | None:
        block = ipaddress.ip_network(cidr, strict=False)
        if block.prefixlen != self.mask or not block.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        offset = int(block.network_address) - int(self.network.network_address)
        return offset // block.num_addresses

    def occupy(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._used.add(index)

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._used.discard(index)

    def allocate_next(self) -> str | None:
        """The next free block after the last one handed out (wrapping), or ``None``."""
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = index + 1
                block_size = 2 ** (self.network.max_prefixlen - self.mask)
                address = self.network.network_address + index * block_size
                return f"{address}/{self.mask}"
        return None


class NodeIpamController(base.QueueController[str]):
    """Allocates ``spec.podCIDR`` to Nodes; ``run(workers)`` until ``shut_down``."""

    name = "nodeipam"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
        node_cidr_mask_size: int = DEFAULT_NODE_MASK,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.cidrs = CIDRSet(cluster_cidr, node_cidr_mask_size)
        # Blocks this controller wrote, until the informer shows them: a stale cache must not
        # make a node get a second block.
        self._assigned: dict[str, str] = {}
        self.nodes = self.watch(
            informers.informer(rest.NODES),
            on_add=self._add_node,
            on_update=lambda _, new: self._add_node(new),
            on_delete=self._delete_node,
        )

    def _add_node(self, node: Object) -> None:
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr:
            self.cidrs.occupy(cidr)
        else:
            self.enqueue(node)

    def _delete_node(self, node: Object) -> None:
        cidr = (node.get("spec") or {}).get("podCIDR")
        cidr = cidr or self._assigned.get(node["metadata"]["name"])
        self._assigned.pop(node["metadata"]["name"], None)
        if cidr:
            self.cidrs.release(cidr)

    async def sync(self, name: str) -> None:
        node = self.nodes.indexer.get(name)
        if node is None or (node.get("spec") or {}).get("podCIDR") or name in self._assigned:
            return
        cidr = self.cidrs.allocate_next()
        if cidr is None:
            self.recorder.event(
                node, "Normal", "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable"
            )
            raise RuntimeError(f"no pod CIDR left for node {name}")
        self._assigned[name] = cidr
        patch = {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        try:
            await self.client.patch(rest.NODES, name, patch)
        except Exception:
            del self._assigned[name]
            self.cidrs.release(cidr)
            raise
