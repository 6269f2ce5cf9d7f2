"""Serving the kubelet API (``kubelet/server.py``) of in-process nodes over HTTPS.

Composition only: a serving certificate per node from the cluster CA (for
the node's name and InternalIP, CN ``system:node:<name>`` as a kubelet's
CSR-issued one), client certificates verified against that CA, one
``server/http.py`` listener per node on the node's InternalIP and an
ephemeral port (advertised in ``status.daemonEndpoints``), and the
webhook-style authenticator and authorizer that ask the API server as the
node itself. See docs/decisions/0028-kubelet-api-and-streams.md. On ``up``'s
node network a node's listener is made inside its network namespace, on its
InternalIP and port 10250 (decision 0031).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import ipaddress
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kajitori.auth import pki
from kajitori.client import rest
from kajitori.kubelet import resource_metrics, streaming
from kajitori.kubelet import server as kubelet_server
from kajitori.server.http import HttpServer, make_server_ssl_context

# In-process nodes with a kubelet API get loopback InternalIPs, numbered as
# kind numbers its node network (172.18.0.2, ...): 127.18.0.2, 127.18.0.3, ...
# Linux routes all of 127.0.0.0/8 to lo, so each node listens on its own address.
LOOPBACK_NODE_NETWORK = ipaddress.ip_network("127.18.0.0/16")
# Above this many nodes ``kajitori up`` serves no kubelet API by default
# (one listening socket and one certificate per node).
DEFAULT_MAX_SERVED_NODES = 64
# The kubelet's port (--port), used on the node network where each node has its own address.
KUBELET_PORT = 10250
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def loopback_ip(index: int) -> str:
    return str(ipaddress.ip_address(int(LOOPBACK_NODE_NETWORK.network_address) + 2 + index))


@dataclasses.dataclass
class NodeAPI:
    """One node's listener."""

    name: str
    address: str
    server: HttpServer
    app: kubelet_server.KubeletServer | None = None

    @property
    def port(self) -> int:
        return self.server.port


class _LateApp:
    """The ASGI app of a listener bound before its kubelet exists (its port goes in the Node)."""

    def __init__(self) -> None:
        self.app: kubelet_server.KubeletServer | None = None

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if self.app is None:
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"kubelet starting"})
            return
        await self.app(scope, receive, send)


def listen_in_netns(netns_path: str, address: str, port: int) -> socket.socket:
    """A listening TCP socket on ``address:port`` inside the namespace at ``netns_path``.

    ``setns(2)`` moves only the calling thread, so a short-lived thread of
    its own makes the socket; the process's other threads never change
    namespace. (Python 3.11 has no ``os.setns``: through libc.)
    """
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY)
            try:
                if _LIBC.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns {netns_path}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(1024)
            sock.setblocking(False)
            made.append(sock)
        except BaseException as exc:  # reported in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=work, name="kubelet-api-netns")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


async def bind(
    ca: pki.CertAndKey,
    nodes: Sequence[tuple[str, str]],
    *,
    port: int = 0,
    netns: Mapping[str, str] | None = None,
) -> list[NodeAPI]:
    """Listen for each ``(name, address)`` with its own serving certificate.

    ``netns`` (node name → namespace path) puts a node's listener in its
    node network namespace instead of this process's.
    """
    apis: list[NodeAPI] = []
    with tempfile.TemporaryDirectory(prefix="kajitori-kubelet-pki-") as tmp:
        ca_path = Path(tmp) / "ca.crt"
        ca_path.write_bytes(ca.cert_pem)
        for name, address in nodes:
            pair = pki.issue_serving_cert(
                ca, dns_names=[name], ip_addresses=[address], common_name=f"system:node:{name}"
            )
            cert_path, key_path = Path(tmp) / f"{name}.crt", Path(tmp) / f"{name}.key"
            cert_path.write_bytes(pair.cert_pem)
            key_path.write_bytes(pair.key_pem)
            context = make_server_ssl_context(cert_path, key_path, ca_path)
            server: HttpServer
            if netns and name in netns:
                sock = await asyncio.to_thread(listen_in_netns, netns[name], address, port)
                server = HttpServer(
                    _LateApp(), host=address, port=port, ssl_context=context, sock=sock
                )
            else:
                server = HttpServer(_LateApp(), host=address, port=port, ssl_context=context)
            await server.start()
            apis.append(NodeAPI(name, address, server))
    return apis


def attach(
    apis: Sequence[NodeAPI],
    *,
    get_pod: Callable[[str, str], dict | None],  # type: ignore[type-arg]
    list_pods: Callable[[], list[dict]],  # type: ignore[type-arg]
    runtime: streaming.StreamingRuntime,
    client_for: Callable[[str], rest.Client],
    usage: resource_metrics.UsageSource | None = None,
) -> None:
    """Give each bound listener its kubelet app, asking the API server as the node.

    ``usage`` (the runtime's containers' usage) makes ``/metrics/resource`` and
    ``/stats/summary`` served.
    """
    for api in apis:
        client = client_for(api.name)
        metrics = None
        if usage is not None:
            metrics = resource_metrics.ResourceMetrics(api.name, list_pods=list_pods, source=usage)
        api.app = kubelet_server.KubeletServer(
            api.name,
            get_pod=get_pod,
            list_pods=list_pods,
            runtime=runtime,
            authenticator=kubelet_server.WebhookAuthenticator(client),
            authorizer=kubelet_server.WebhookAuthorizer(client, api.name),
            resource_metrics=metrics,
        )
        late = api.server.app
        assert isinstance(late, _LateApp)
        late.app = api.app


async def stop(apis: Sequence[NodeAPI], grace: float = 1.0) -> None:
    for api in apis:
        await api.server.shutdown(grace)
    # Streams that keep files of their own (the simulated runtime's logs) clean up.
    runtimes = {id(api.app.runtime): api.app.runtime for api in apis if api.app is not None}
    for runtime in runtimes.values():
        close = getattr(runtime, "close", None)
        if callable(close):
            close()
