"""The kubelet process: simulated nodes talking to an API server.

Composition root for ``kubelet.KubeletHost``. Two ways in:

* ``start_in_process(app, ca, nodes=N)`` — what ``kajitori up --nodes N
  --runtime simulated`` does: N nodes named as kind names its workers
  (``kajitori-worker``, ``kajitori-worker2``, ...), one host, calling the API
  server's ASGI app directly. The host reads nodes and pods as
  ``system:kajitori:simulated-kubelets``; each node writes as
  ``system:node:<name>``, so the Node authorizer and NodeRestriction hold;
* ``run(kubeconfig_path, node_name, stop_event)`` — ``kajitori kubelet``:
  one node over HTTPS, as the kubeconfig's user.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import weakref
from pathlib import Path

from kajitori.auth import pki
from kajitori.client import kubeconfig, rest, transport
from kajitori.cmd import kubelet_api
from kajitori.kubelet import kubelet, node_status, oci_streams, streaming
from kajitori.kubelet.runtimes import interface, simulated
from kajitori.kubelet.runtimes.oci import runtime as oci_runtime
from kajitori.kubelet.runtimes.oci import sandbox_network

RUNTIMES = ("simulated", "oci")
# Where the oci runtime keeps pods, containers and their logs (as /var/lib/kubelet).
OCI_ROOT = Path("/var/lib/kajitori/oci")
CLUSTER_NAME = "kajitori"
# kind's node network is 172.18.0.0/16 and its first node is .2.
NODE_NETWORK = ipaddress.ip_network("172.18.0.0/16")
# Containers of simulated pods spend this long in ContainerCreating, as real ones do briefly.
DEFAULT_START_SECONDS = 0.5


def worker_name(index: int) -> str:
    """kind's worker names: ``kajitori-worker``, ``kajitori-worker2``, ..."""
    return f"{CLUSTER_NAME}-worker" + (str(index + 1) if index else "")


def node_configs(count: int) -> list[node_status.NodeConfig]:
    """``count`` simulated workers with InternalIPs counted up from 172.18.0.2."""
    base = int(NODE_NETWORK.network_address) + 2
    return [
        node_status.NodeConfig(name=worker_name(i), internal_ip=str(ipaddress.ip_address(base + i)))
        for i in range(count)
    ]


def new_runtime(
    name: str, *, start_seconds: float = DEFAULT_START_SECONDS, data_dir: Path | None = None
) -> interface.Runtime:
    if name == "oci":
        # Real containers under runc (root only). KAJITORI_OCI_ROOT gives a test its own root,
        # so it never adopts another run's pods. Images are pulled into <data-dir>/images
        # (KAJITORI_OCI_IMAGES=busybox: only the host's busybox, for machines with no registry).
        # Pods join a pod network only when KAJITORI_OCI_NODE_NETNS names a node network
        # namespace for the CNI plugins (decision 0027); by default they have loopback only.
        root = Path(os.environ.get("KAJITORI_OCI_ROOT") or OCI_ROOT)
        busybox_only = os.environ.get("KAJITORI_OCI_IMAGES") == "busybox"
        netns = os.environ.get("KAJITORI_OCI_NODE_NETNS")
        return oci_runtime.new_runtime(
            root,
            image_store=None if busybox_only else (data_dir or root) / "images",
            network=None
            if not netns
            else sandbox_network.NetworkOptions(host_netns=netns, state_dir=root / "cni"),
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
) -> kubelet.KubeletHost:
    """Register ``nodes`` simulated nodes and run their kubelets in the background.

    ``serve_api`` (default: up to ``kubelet_api.DEFAULT_MAX_SERVED_NODES``
    nodes) gives each node a kubelet API on a loopback InternalIP, serving
    ``streams`` (default: the runtime's own if it offers them, else
    synthetic logs and no exec); see docs/decisions/0028.
    """
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
        )
        _APIS[host] = apis
    await host.start()
    return host


def _streams_for(name: str, runtime: interface.Runtime) -> streaming.StreamingRuntime:
    if name == "oci":
        return oci_streams.OciStreaming(runtime)
    return streaming.SimulatedStreaming()


# The kubelet API listeners of each in-process host, stopped with it.
_APIS: weakref.WeakKeyDictionary[kubelet.KubeletHost, list[kubelet_api.NodeAPI]] = (
    weakref.WeakKeyDictionary()
)


def node_apis(host: kubelet.KubeletHost) -> list[kubelet_api.NodeAPI]:
    """The kubelet API listeners of ``host`` (none when it serves no API)."""
    return _APIS.get(host, [])


async def stop(host: kubelet.KubeletHost) -> None:
    await kubelet_api.stop(_APIS.pop(host, []))
    await host.stop()
    await host.client.aclose()


async def run(
    kubeconfig_path: Path | str,
    node_name: str,
    stop_event: asyncio.Event,
    *,
    runtime: str = "simulated",
    internal_ip: str = "172.18.0.2",
    lease_duration: int = node_status.DEFAULT_LEASE_DURATION,
) -> None:
    """Run one kubelet for ``node_name`` over HTTPS until ``stop_event`` is set."""
    client = rest.Client.from_kubeconfig(kubeconfig.load_kubeconfig(kubeconfig_path))
    config = node_status.NodeConfig(name=node_name, internal_ip=internal_ip)
    host = kubelet.KubeletHost(
        client, [config], new_runtime(runtime), lease_duration=lease_duration
    )
    try:
        await host.start()
        await stop_event.wait()
    finally:
        await stop(host)
