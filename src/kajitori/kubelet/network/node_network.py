"""The node network of ``kajitori up --runtime oci``: one host bridge, one network namespace per node.

What kind builds with Docker (a ``kind`` bridge network, one container per
node) and kindnet then programs, made from plain namespaces (decision 0031):

* a host bridge (``kajitori0`` for the default cluster) holding the first
  address of the node CIDR (``172.18.0.1/16`` by default, as kind's);
* per node a named network namespace (kind's node container) with ``lo`` up,
  ``eth0`` (a veth whose host end is on the bridge) at ``.2``, ``.3``, ...,
  the Node's InternalIP, ``ip_forward=1`` (inside the namespace only: the
  host's stays as it is, bridging is L2), the ``blackhole`` route for the
  Service CIDR, and an nftables table ``ip kajitori-node`` that masquerades
  pod traffic leaving ``eth0`` for anything outside the cluster CIDR (pods
  reach the host and other nodes as their node);
* no default route anywhere: nothing a pod sends can leave the machine;
* ``set_routes`` — kindnet's part: a route to each other node's podCIDR via
  that node's address (``NodeRoutes`` follows Nodes through an informer);
* ``set_host_routes`` — the same routes on the host, on the bridge, so the
  API server reaches pods (``pods/proxy``, ``services/proxy``) as a kind
  control plane does. Host to pod is locally originated traffic: the host's
  ``ip_forward`` stays as it is. Each cluster has its own cluster CIDR
  (``up --cluster-cidr``), so two clusters' routes never collide.

Names are derived from the cluster name, so several clusters can run at once:
the bridge and host-side veths (at most 15 characters, the kernel's limit)
carry ``kajitori`` for the default cluster and ``kj<6 hex of its hash>``
otherwise; namespaces are ``<cluster>-<node suffix>``. ``setup()`` first
removes whatever a crashed run of the same cluster left, ``teardown()``
removes everything (namespaces take their veths and nftables tables along).
Root and iproute2 + nftables only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import ipaddress
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kajitori.client import informer, rest
from kajitori.kubelet.network import pod_network

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_NAME = "kajitori"
DEFAULT_NODE_CIDR = "172.18.0.0/16"  # kind's node network
NODE_INTERFACE = "eth0"
MASQUERADE_TABLE = "kajitori-node"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


class NodeNetworkError(Exception):
    """A command that builds or removes the node network failed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """One node's place on the node network."""

    name: str  # the Node's name
    netns: str  # its network namespace (under /run/netns)
    host_veth: str  # the veth end on the host bridge
    address: str  # its InternalIP on the bridge's subnet


def short_prefix(cluster_name: str) -> str:
    """The link-name prefix: ``kajitori`` for the default cluster, else ``kj`` + 6 hex."""
    if cluster_name == DEFAULT_CLUSTER_NAME:
        return DEFAULT_CLUSTER_NAME
    return "kj" + hashlib.sha256(cluster_name.encode()).hexdigest()[:6]


def check_cluster_name(cluster_name: str) -> None:
    if not _NAME.match(cluster_name):
        raise ValueError(
            f"cluster name {cluster_name!r}: lower-case letters, digits and '-', at most 32"
        )


def check_cluster_cidr(cluster_cidr: str, *, node_cidr: str, service_cidr: str) -> None:
    """The pod network must be IPv4 and apart from the node and Service networks."""
    pods = ipaddress.ip_network(cluster_cidr)
    if pods.version != 4:
        raise ValueError(f"cluster CIDR {cluster_cidr}: only IPv4 is supported")
    for name, other in (("node CIDR", node_cidr), ("Service CIDR", service_cidr)):
        if pods.overlaps(ipaddress.ip_network(other)):
            raise ValueError(f"cluster CIDR {cluster_cidr} overlaps the {name} {other}")


class NodeNetwork:
    """The bridge and node namespaces of one cluster; ``await setup()``, ``await teardown()``."""

    def __init__(
        self,
        cluster_name: str,
        node_names: Sequence[str],
        *,
        node_cidr: str = DEFAULT_NODE_CIDR,
        cluster_cidr: str = "10.244.0.0/16",
        service_cidr: str = pod_network.SERVICE_CIDR,
    ) -> None:
        check_cluster_name(cluster_name)
        subnet = ipaddress.ip_network(node_cidr)
        if subnet.version != 4 or subnet.num_addresses < len(node_names) + 3:
            raise ValueError(f"node CIDR {node_cidr} cannot hold {len(node_names)} nodes")
        check_cluster_cidr(cluster_cidr, node_cidr=node_cidr, service_cidr=service_cidr)
        self.cluster_name = cluster_name
        self.subnet = subnet
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        prefix = short_prefix(cluster_name)
        self.bridge = f"{prefix}0"
        hosts = subnet.hosts()
        self.gateway = str(next(hosts))
        self.nodes = [
            Node(
                name=name,
                netns=_netns_name(cluster_name, name),
                host_veth=f"{prefix}v{index}",
                address=str(next(hosts)),
            )
            for index, name in enumerate(node_names)
        ]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    async def setup(self) -> None:
        """Build the bridge and every node namespace, replacing leftovers of a crashed run."""
        await self.teardown()
        prefix = f"{self.gateway}/{self.subnet.prefixlen}"
        await _ip("link", "add", "name", self.bridge, "type", "bridge")
        try:
            await _ip("addr", "add", prefix, "dev", self.bridge)
            await _ip("link", "set", self.bridge, "up")
            for node in self.nodes:
                await self._add_node(node)
        except BaseException:
            await self.teardown()
            raise

    async def _add_node(self, node: Node) -> None:
        ns = node.netns
        await _ip("netns", "add", ns)
        await _ip("-n", ns, "link", "set", "lo", "up")
        # The peer is born inside the namespace: the host has an eth0 of its own.
        await _ip(
            "link",
            "add",
            node.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            NODE_INTERFACE,
            "netns",
            ns,
        )
        await _ip("link", "set", node.host_veth, "master", self.bridge, "up")
        await _ip("-n", ns, "addr", "add", f"{node.address}/{self.subnet.prefixlen}", "dev", "eth0")
        await _ip("-n", ns, "link", "set", NODE_INTERFACE, "up")
        # Forwarding between eth0 and the pod bridge, inside the node only.
        await _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        await pod_network.ensure_service_blackhole(self.service_cidr, netns=ns)
        await _run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=self.masquerade_script())

    def masquerade_script(self) -> str:
        """Pod traffic leaving the node for anything outside the pod network takes its address."""
        return (
            f"add table ip {MASQUERADE_TABLE}\n"
            f"delete table ip {MASQUERADE_TABLE}\n"
            f"table ip {MASQUERADE_TABLE} {{\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat + 10; policy accept;\n"
            f'    oifname "{NODE_INTERFACE}" ip saddr {self.cluster_cidr}'
            f" ip daddr != {self.cluster_cidr} masquerade\n"
            "  }\n"
            "}\n"
        )

    async def set_routes(self, node: Node, routes: Mapping[str, str]) -> None:
        """Make ``node``'s routes to other nodes' podCIDRs exactly ``routes`` (CIDR → via)."""
        current = await _routes_via(node.netns, NODE_INTERFACE)
        for cidr, via in routes.items():
            if current.get(cidr) != via:
                await _ip("-n", node.netns, "route", "replace", cidr, "via", via, "dev", "eth0")
        for cidr in set(current) - set(routes):
            await _ip("-n", node.netns, "route", "del", cidr, check=False)

    async def set_host_routes(self, routes: Mapping[str, str]) -> None:
        """Make the host's gateway routes on the bridge exactly ``routes`` (podCIDR → node).

        Only podCIDRs inside the cluster CIDR via this cluster's nodes are
        taken: a Node object cannot steer the host's traffic elsewhere.
        """
        cluster = ipaddress.ip_network(self.cluster_cidr)
        addresses = {node.address for node in self.nodes}
        wanted = {
            cidr: via for cidr, via in routes.items() if via in addresses and _inside(cidr, cluster)
        }
        current = await _routes_via(None, self.bridge)
        for cidr, via in wanted.items():
            if current.get(cidr) != via:
                await _ip("route", "replace", cidr, "via", via, "dev", self.bridge)
        for cidr in set(current) - set(wanted):
            await _ip("route", "del", cidr, "dev", self.bridge, check=False)

    async def teardown(self) -> None:
        """Remove every namespace, veth and the bridge of this cluster (missing ones are fine).

        Also those of an earlier run of the same cluster with more nodes. The
        host's routes to pods are on the bridge: the kernel drops them with it.
        """
        namespaces, links = self._stale()
        for netns in sorted({*namespaces, *(n.netns for n in self.nodes)}):
            await _ip("netns", "del", netns, check=False)
        for link in sorted({*links, *(n.host_veth for n in self.nodes)}):
            if os.path.exists(f"/sys/class/net/{link}"):
                await _ip("link", "del", link, check=False)
        await _ip("link", "del", self.bridge, check=False)

    def _stale(self) -> tuple[list[str], list[str]]:
        """This cluster's namespaces and host veths that exist now, whatever the node count."""
        first = self.nodes[0].netns.rstrip("0123456789") if self.nodes else ""
        netns_name = re.compile(re.escape(first) + r"\d*$")
        veth_name = re.compile(re.escape(self.bridge[:-1]) + r"v\d+$")
        namespaces = [n for n in _listdir("/run/netns") if first and netns_name.match(n)]
        links = [n for n in _listdir("/sys/class/net") if veth_name.match(n)]
        return namespaces, links

    def leftovers(self) -> list[str]:
        """What of this cluster's network exists now (for tests): names of links and namespaces."""
        found = [n.netns for n in self.nodes if os.path.exists(f"/run/netns/{n.netns}")]
        for link in (self.bridge, *(n.host_veth for n in self.nodes)):
            if os.path.exists(f"/sys/class/net/{link}"):
                found.append(link)
        return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _netns_name(cluster_name: str, node_name: str) -> str:
    # kind names node containers <cluster>-worker...; our Nodes keep the kajitori- prefix.
    suffix = node_name.split("-", 1)[1] if "-" in node_name else node_name
    return f"{cluster_name}-{suffix}"


class NodeRoutes:
    """kindnet's routes: each node namespace, and the host, route podCIDRs via their node.

    Follows Nodes through an informer (``client`` needs list/watch on nodes)
    and resyncs the host and every node namespace whenever a Node's
    podCIDR or InternalIP changes.
    """

    def __init__(self, client: rest.Client, network: NodeNetwork) -> None:
        self.network = network
        self.factory = informer.InformerFactory(client, transform=informer.strip_managed_fields)
        self.informer = self.factory.informer(rest.NODES)
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        handler = informer.EventHandler(
            on_add=self._changed, on_update=self._changed, on_delete=self._changed
        )
        self.informer.add_event_handler(handler)

    def _changed(self, *_: Any) -> None:
        self._dirty.set()

    def start(self) -> None:
        self.factory.start()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.factory.stop()

    def wanted(self) -> dict[str, str]:
        """Every Node's podCIDR → its InternalIP."""
        routes: dict[str, str] = {}
        for node in self.informer.indexer.list():
            cidr = (node.get("spec") or {}).get("podCIDR")
            addresses = (node.get("status") or {}).get("addresses") or ()
            ip = next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), "")
            if cidr and ip:
                routes[cidr] = ip
        return routes

    async def _run(self) -> None:
        await self.factory.wait_for_sync()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not await self._sync(self.wanted()):
                self._dirty.set()  # retry, without spinning
                await asyncio.sleep(1.0)

    async def _sync(self, routes: Mapping[str, str]) -> bool:
        """Program the host and every node namespace; False if any of them failed."""
        ok = True
        try:
            await self.network.set_host_routes(routes)
        except NodeNetworkError as exc:
            log.error("host routes to pods: %s", exc)
            ok = False
        for node in self.network.nodes:
            own = {cidr: via for cidr, via in routes.items() if via != node.address}
            try:
                await self.network.set_routes(node, own)
            except NodeNetworkError as exc:
                log.error("node routes of %s: %s", node.name, exc)
                ok = False
        return ok


def _inside(cidr: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        block = ipaddress.ip_network(cidr)
    except ValueError:
        return False
    return block.version == network.version and block.subnet_of(network)  # type: ignore[arg-type]


async def _routes_via(netns: str | None, dev: str) -> dict[str, str]:
    """Gateway routes on ``dev`` (CIDR → via), in ``netns`` or on the host: the ones we own."""
    namespace = ("-n", netns) if netns else ()
    output = await _ip(*namespace, "-o", "route", "show", "dev", dev)
    routes: dict[str, str] = {}
    for line in output.splitlines():
        words = line.split()
        if "via" in words and words[0] != "default":
            routes[words[0]] = words[words.index("via") + 1]
    return routes


async def _ip(*args: str, check: bool = True) -> str:
    return await _run("ip", *args, check=check)


async def _run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(stdin.encode() if stdin is not None else None)
    text = output.decode(errors="replace").strip()
    if check and process.returncode != 0:
        raise NodeNetworkError(f"{' '.join(argv)}: {text}")
    return text
