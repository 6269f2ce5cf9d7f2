"""The kubelet process: simulated nodes talking to an API server.

Composition root for ``kubelet.KubeletHost``. Two ways in:

* ``start_in_process(app, ca, nodes=N)`` — what ``kajitori up --nodes N
  --runtime simulated`` does: N nodes named as kind names its workers
  (``kajitori-worker``, ``kajitori-worker2``, ...), one host, calling the API
  server's ASGI app directly. The host reads nodes and pods as
  ``system:kajitori:simulated-kubelets``; each node writes as
  ``system:node:<name>``, so the Node authorizer and NodeRestriction hold;
* ``run(kubeconfig_path, node_name, stop_event)`` — ``kajitori kubelet``:
  one node over HTTPS, as the kubeconfig's user;
* ``run_nodes(kubeconfig_path, node_configs(N), stop_event)`` — ``kajitori
  kubelet --nodes N``: N simulated nodes over HTTPS in one process, as KWOK
  runs them, named as ``up`` names its workers. The same ``KubeletHost``
  (one pod informer for all nodes); every node writes as the kubeconfig's
  one user, meant to be ``<data-dir>/node-simulator.kubeconfig``'s
  ``system:kajitori:node-simulator`` (decision 0049);
* ``start_in_process(app, ca, nodes=N, runtime="oci", network=...)`` — ``up
  --runtime oci`` on its node network (``kubelet/network/node_network.py``):
  per node an oci runtime, a kubelet API on InternalIP:10250 inside the
  node's namespace and a kube-proxy there (decision 0031).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import shutil
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kajitori.auth import pki
from kajitori.client import kubeconfig, rest, transport
from kajitori.cmd import kubelet_api
from kajitori.cmd import proxy as proxy_cmd
from kajitori.kubelet import kubelet, node_status, oci_streams, resource_metrics, streaming
from kajitori.kubelet.network import node_network
from kajitori.kubelet.runtimes import interface, simulated
from kajitori.kubelet.runtimes.oci import rootless as oci_rootless
from kajitori.kubelet.runtimes.oci import runc, sandbox_network
from kajitori.kubelet.runtimes.oci import runtime as oci_runtime
from kajitori.proxy import proxier

RUNTIMES = ("simulated", "oci")
# Where the oci runtime keeps pods, containers and their logs (as /var/lib/kubelet).
OCI_ROOT = Path("/var/lib/kajitori/oci")
CLUSTER_NAME = "kajitori"
# kind's node network is 172.18.0.0/16 and its first node is .2.
NODE_NETWORK = ipaddress.ip_network("172.18.0.0/16")
# Containers of simulated pods spend this long in ContainerCreating, as real ones do briefly.
DEFAULT_START_SECONDS = 0.5


WORKER_PREFIX = f"{CLUSTER_NAME}-worker"
FIRST_NODE_IP = str(NODE_NETWORK.network_address + 2)


def worker_name(index: int, prefix: str = WORKER_PREFIX) -> str:
    """kind's worker names: ``kajitori-worker``, ``kajitori-worker2``, ..."""
    return prefix + (str(index + 1) if index else "")


def node_configs(
    count: int, *, prefix: str = WORKER_PREFIX, first_ip: str = FIRST_NODE_IP
) -> list[node_status.NodeConfig]:
    """``count`` simulated workers with InternalIPs counted up from ``first_ip`` (172.18.0.2)."""
    base = int(ipaddress.ip_address(first_ip))
    return [
        node_status.NodeConfig(
            name=worker_name(i, prefix), internal_ip=str(ipaddress.ip_address(base + i))
        )
        for i in range(count)
    ]


def oci_root() -> Path:
    """The oci runtime's root: KAJITORI_OCI_ROOT gives a test its own, never adopting others' pods.

    Not root: the rootless runtime's, under $XDG_DATA_HOME (~/.local/share/kajitori/oci, 0033).
    """
    default = OCI_ROOT if os.geteuid() == 0 else oci_rootless.default_root()
    return Path(os.environ.get("KAJITORI_OCI_ROOT") or default)


def _pod_getter(host: kubelet.KubeletHost) -> Callable[[str, str], dict[str, Any] | None]:
    """Looks a pod up in one kubelet's pod cache (a function per host: the caller loops)."""
    return lambda namespace, name: host.pods.indexer.get(f"{namespace}/{name}")


def new_runtime(
    name: str,
    *,
    start_seconds: float = DEFAULT_START_SECONDS,
    data_dir: Path | None = None,
    node: node_network.Node | None = None,
) -> interface.Runtime:
    if name == "oci":
        # Real containers under runc (root only). Images are pulled into <data-dir>/images
        # (KAJITORI_OCI_IMAGES=busybox: only the host's busybox, for machines with no registry).
        # With ``node`` (up's node network, decision 0031) the runtime is that node's: its own
        # root under the oci root, and pods on a pod network inside the node's namespace;
        # without, one root and loopback-only pods.
        root = oci_root()
        network = None
        if node is not None:
            root = root / node.name
            network = sandbox_network.NetworkOptions(
                host_netns=node.netns, state_dir=root / "cni", node_ip=node.address
            )
        busybox_only = os.environ.get("KAJITORI_OCI_IMAGES") == "busybox"
        return oci_runtime.new_runtime(
            root,
            image_store=None if busybox_only else (data_dir or oci_root()) / "images",
            network=network,
        )
    if name != "simulated":
        raise ValueError(f"unknown runtime {name!r} (known: {', '.join(RUNTIMES)})")
    return simulated.SimulatedRuntime(start_delay=start_seconds)


async def start_in_process(
    app: transport.ASGIApp,
    ca: pki.CertAndKey,
    *,
    nodes: int,
    runtime: str = "simulated",
    lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
    serve_api: bool | None = None,
    streams: streaming.StreamingRuntime | None = None,
    data_dir: Path | None = None,
    network: node_network.NodeNetwork | None = None,
) -> kubelet.KubeletHost:
    """Register ``nodes`` simulated nodes and run their kubelets in the background.

    ``serve_api`` (default: up to ``kubelet_api.DEFAULT_MAX_SERVED_NODES``
    nodes) gives each node a kubelet API on a loopback InternalIP, serving
    ``streams`` (default: the runtime's own if it offers them, else
    synthetic logs and no exec); see docs/decisions/0028. With ``network``
    (``up --runtime oci``'s node network, already set up) the nodes are its
    nodes, each with a runtime, a kube-proxy and a kubelet API of its own
    inside its namespace (``_start_networked``, decision 0031).
    """
    if network is not None:
        return await _start_networked(app, ca, network, lease_duration, data_dir)
    credentials = pki.issue_simulated_kubelet_cert(ca)
    client = rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)
    configs = node_configs(nodes)
    node_certs = pki.issue_node_certs(ca, [config.name for config in configs])
    if serve_api is None:
        serve_api = nodes <= kubelet_api.DEFAULT_MAX_SERVED_NODES
    apis: list[kubelet_api.NodeAPI] = []
    if serve_api:
        addresses = [(c.name, kubelet_api.loopback_ip(i)) for i, c in enumerate(configs)]
        apis = await kubelet_api.bind(ca, addresses)
        configs = [
            dataclasses.replace(c, internal_ip=api.address, kubelet_port=api.port)
            for c, api in zip(configs, apis, strict=True)
        ]
    container_runtime = new_runtime(runtime, data_dir=data_dir)

    def client_for(name: str) -> rest.Client:
        return client.as_identity(node_certs[name].cert_pem)

    host = kubelet.KubeletHost(
        client, configs, container_runtime, lease_duration=lease_duration, client_for=client_for
    )
    if apis:
        if streams is None:
            # A runtime offering streams says so with a ``streams`` attribute.
            streams = getattr(container_runtime, "streams", None) or _streams_for(
                runtime, container_runtime
            )
        kubelet_api.attach(
            apis,
            get_pod=lambda namespace, name: host.pods.indexer.get(f"{namespace}/{name}"),
            list_pods=host.pods.indexer.list,
            runtime=streams,
            client_for=client_for,
            usage=usage_source(runtime),
        )
        _APIS[host] = apis
    else:
        # No HTTPS listener: the built-in metrics-server reads these nodes in process.
        usage = usage_source(runtime)
        _LOCAL_METRICS[host] = {
            c.name: resource_metrics.ResourceMetrics(
                c.name, list_pods=host.pods.indexer.list, source=usage
            )
            for c in configs
        }
    await host.start()
    return host


def local_resource_metrics(host: kubelet.KubeletHost) -> Callable[[str], bytes | None]:
    """``/metrics/resource`` of ``host``'s nodes that serve no kubelet API (else None)."""
    nodes = _LOCAL_METRICS.get(host, {})

    def read(name: str) -> bytes | None:
        found = nodes.get(name)
        return None if found is None else found.prometheus()

    return read


@dataclasses.dataclass
class _NetworkedNodes:
    """What ``_start_networked`` runs beside the first node's host, stopped with it."""

    hosts: list[kubelet.KubeletHost]
    runtimes: list[oci_runtime.OciRuntime]
    proxies: list[proxier.Proxier]
    routes: node_network.NodeRoutes
    client: rest.Client


async def _start_networked(
    app: transport.ASGIApp,
    ca: pki.CertAndKey,
    network: node_network.NodeNetwork,
    lease_duration: int,
    data_dir: Path | None,
) -> kubelet.KubeletHost:
    """One kubelet host, oci runtime, kubelet API and kube-proxy per node of ``network``.

    Each runtime's own root and node namespace keep pods, CNI state and
    podCIDR apart, as separate kind nodes do; the kubelet API listens on the
    node's InternalIP:10250 inside its namespace, so the API server reaches
    it over the bridge. ``NodeRoutes`` adds kindnet's routes between nodes, and the host's
    routes to each node's pods (so the API server reaches pods for pods/proxy and services/proxy).
    """
    credentials = pki.issue_simulated_kubelet_cert(ca)
    client = rest.Client.in_process(app, client_cert_pem=credentials.cert_pem)
    node_certs = pki.issue_node_certs(ca, [node.name for node in network.nodes])

    def client_for(name: str) -> rest.Client:
        return client.as_identity(node_certs[name].cert_pem)

    apis = await kubelet_api.bind(
        ca,
        [(node.name, node.address) for node in network.nodes],
        port=kubelet_api.KUBELET_PORT,
        netns={node.name: f"{sandbox_network.NETNS_DIR}/{node.netns}" for node in network.nodes},
    )
    runtime_version = runc.runtime_version()
    hosts: list[kubelet.KubeletHost] = []
    runtimes: list[oci_runtime.OciRuntime] = []
    proxies: list[proxier.Proxier] = []
    for node, api in zip(network.nodes, apis, strict=True):
        made = new_runtime("oci", data_dir=data_dir, node=node)
        assert isinstance(made, oci_runtime.OciRuntime)
        config = node_status.this_machine(
            node.name, node.address, runtime_version=runtime_version, kubelet_port=api.port
        )
        host = kubelet.KubeletHost(
            client, [config], made, lease_duration=lease_duration, client_for=client_for
        )
        kubelet_api.attach(
            [api],
            get_pod=_pod_getter(host),
            list_pods=host.pods.indexer.list,
            runtime=oci_streams.OciStreaming(made),
            client_for=client_for,
            usage=resource_metrics.CgroupUsage(),
        )
        hosts.append(host)
        runtimes.append(made)
        proxies.append(
            proxy_cmd.start_in_process(
                app, ca, netns=node.netns, cluster_cidr=network.cluster_cidr, node_name=node.name
            )
        )
    routes = node_network.NodeRoutes(client, network)
    routes.start()
    for host in hosts:
        await host.start()
    first = hosts[0]
    _APIS[first] = apis
    _NETWORKED[first] = _NetworkedNodes(hosts, runtimes, proxies, routes, client)
    return first


async def _stop_networked(nodes: _NetworkedNodes) -> None:
    """Stop everything of the node network's nodes; their pods go with the cluster, as kind's."""
    await nodes.routes.stop()
    for component in nodes.proxies:
        await proxy_cmd.stop(component)
    for host in nodes.hosts:
        await host.stop()
    for made in nodes.runtimes:
        for uid in made.get_pods():
            made.remove_pod(uid)  # kills the containers, DELs the sandbox, unmounts
        await made.aclose()
        manager = getattr(made.images, "manager", None)  # a registry client to close
        if manager is not None:
            await manager.client.aclose()
        if made.network is not None:  # IPAM reservations and the result cache
            shutil.rmtree(made.network.options.state_dir, ignore_errors=True)
    await nodes.client.aclose()


# The other nodes, runtimes and proxies of an in-process node network, stopped with its first host.
_NETWORKED: weakref.WeakKeyDictionary[kubelet.KubeletHost, _NetworkedNodes] = (
    weakref.WeakKeyDictionary()
)


def usage_source(name: str) -> resource_metrics.UsageSource:
    """Where a node's ``/metrics/resource`` reads its containers' usage, per runtime."""
    if name == "oci":
        return resource_metrics.CgroupUsage()
    return resource_metrics.SimulatedUsage()


def _streams_for(name: str, runtime: interface.Runtime) -> streaming.StreamingRuntime:
    if name == "oci":
        return oci_streams.OciStreaming(runtime)
    return streaming.SimulatedStreaming()


# The resource metrics of each in-process host's nodes without a kubelet API.
_LOCAL_METRICS: weakref.WeakKeyDictionary[
    kubelet.KubeletHost, dict[str, resource_metrics.ResourceMetrics]
] = weakref.WeakKeyDictionary()
# The kubelet API listeners of each in-process host, stopped with it.
_APIS: weakref.WeakKeyDictionary[kubelet.KubeletHost, list[kubelet_api.NodeAPI]] = (
    weakref.WeakKeyDictionary()
)


def node_apis(host: kubelet.KubeletHost) -> list[kubelet_api.NodeAPI]:
    """The kubelet API listeners of ``host`` (none when it serves no API)."""
    return _APIS.get(host, [])


async def stop(host: kubelet.KubeletHost) -> None:
    await kubelet_api.stop(_APIS.pop(host, []))
    _LOCAL_METRICS.pop(host, None)
    networked = _NETWORKED.pop(host, None)
    if networked is not None:
        await _stop_networked(networked)
        return
    await host.stop()
    closing = getattr(host.runtime, "aclose", None)
    if closing is not None:  # removals under way finish (oci); running containers stay
        await closing()
    await host.client.aclose()


async def run(
    kubeconfig_path: Path | str,
    node_name: str,
    stop_event: asyncio.Event,
    *,
    runtime: str = "simulated",
    internal_ip: str = FIRST_NODE_IP,
    lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
) -> None:
    """Run one kubelet for ``node_name`` over HTTPS until ``stop_event`` is set."""
    config = node_status.NodeConfig(name=node_name, internal_ip=internal_ip)
    await run_nodes(
        kubeconfig_path, [config], stop_event, runtime=runtime, lease_duration=lease_duration
    )


async def run_nodes(
    kubeconfig_path: Path | str,
    configs: Sequence[node_status.NodeConfig],
    stop_event: asyncio.Event,
    *,
    runtime: str = "simulated",
    lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
) -> None:
    """Run the kubelets of ``configs`` over HTTPS, all as the kubeconfig's user, until stopped.

    One node: it watches only its own Node and pods, so a ``system:node:<name>``
    kubeconfig is enough. Several: one pod watch for all of them (pods bound
    anywhere), so the user must read every pod and write every node's status,
    Lease and Events: ``system:kajitori:node-simulator`` (decision 0049).
    """
    config = kubeconfig.load_kubeconfig(kubeconfig_path)
    client = rest.Client.from_kubeconfig(config)
    event_client = rest.Client.from_kubeconfig(config)  # upstream's kubelet: one for Events
    host = kubelet.KubeletHost(
        client,
        list(configs),
        new_runtime(runtime),
        lease_duration=lease_duration,
        event_client=event_client,
    )
    try:
        await host.start()
        await stop_event.wait()
    finally:
        await stop(host)
        await event_client.aclose()
