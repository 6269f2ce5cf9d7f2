"""The proxy: nftables rules from Services and EndpointSlices, and real traffic through them.

Rules are asserted as text (``rules.build_ruleset``); then, as root, a proxy
talking to an in-process API server programs a test-made "node" namespace
that routes between a client namespace and a backend namespace. Traffic only
ever goes to those namespaces; the host's own ruleset is never touched.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd import proxy as proxy_cmd
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.proxy import nftables, proxier, rules
from kajitori.testing import netns

Object = dict[str, Any]
FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"
CLUSTER_IP = "10.96.100.10"


def _service(name: str, **spec: Any) -> Object:
    body: Object = {
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    }
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": body}  # fmt: skip


def _slice(service: str, *endpoints: Object, port: int = 8080, name: str = "") -> Object:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service}-abc",
            "namespace": "default",
            "labels": {rules.SERVICE_NAME_LABEL: service},
        },
        "addressType": "IPv4",
        "endpoints": list(endpoints),
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }


def _ep(ip: str, *, ready: bool | None = True, terminating: bool = False, node: str = "") -> Object:
    conditions: Object = {"serving": True, "terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    endpoint: Object = {"addresses": [ip], "conditions": conditions}
    if node:
        endpoint["nodeName"] = node
    return endpoint


def _with_ip(service: Object, ip: str = CLUSTER_IP) -> Object:
    service["spec"]["clusterIP"] = ip
    return service


@pytest.mark.parametrize(
    ("services", "slices", "present", "absent"),
    [
        pytest.param(
            [_with_ip(_service("web"))],
            [_slice("web", _ep("10.244.1.5"), _ep("10.244.1.6"), _ep("10.244.1.7", ready=False))],
            [
                f"{CLUSTER_IP} . tcp . 80 : goto service-",
                "numgen random mod 2 vmap { 0 : goto endpoint-",
                "dnat to 10.244.1.5:8080",
                "dnat to 10.244.1.6:8080",
                "ip saddr 10.244.1.5 jump mark-for-masquerade",
            ],
            ["10.244.1.7"],
            id="cluster-ip-balances-over-ready-endpoints-with-hairpin-masquerade",
        ),
        pytest.param(
            [_with_ip(_service("web"))],
            [_slice("web", _ep("10.244.1.5", ready=False, terminating=True))],
            ["numgen random mod 1", "dnat to 10.244.1.5:8080"],
            [],
            id="serving-terminating-endpoints-when-none-is-ready",
        ),
        pytest.param(
            [_with_ip(_service("web"))],
            [],
            [f"elements = {{ {CLUSTER_IP} . tcp . 80 : goto reject-chain }}"],
            ["numgen"],
            id="no-endpoints-rejects",
        ),
        pytest.param(
            [_with_ip(_service("web", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}]))],
            [_slice("web", _ep("10.244.1.5"))],
            ["tcp . 30080 : goto external-", "jump mark-for-masquerade\n\t\tgoto service-"],
            [],
            id="node-port-masquerades-cluster-traffic",
        ),
        pytest.param(
            [_with_ip(_service("web", type="NodePort", externalTrafficPolicy="Local", ports=[{"name": "http", "port": 80, "nodePort": 30080}]))],
            [_slice("web", _ep("10.244.1.5", node="node-1"), _ep("10.244.2.5", node="node-2"))],
            ["numgen random mod 1 vmap { 0 : goto endpoint-"],
            [],
            id="local-traffic-policy-keeps-to-local-endpoints",
        ),
        pytest.param(
            [_with_ip(_service("headless"), "None"), _service("pending"), _with_ip(_service("ext", type="ExternalName", externalName="a.example"))],
            [_slice("headless", _ep("10.244.1.5"))],
            [],
            ["10.244.1.5", "headless", "pending", "ext"],
            id="headless-unallocated-and-external-name-are-not-programmed",
        ),
    ],
)  # fmt: skip
def test_ruleset_text(
    services: list[Object], slices: list[Object], present: list[str], absent: list[str]
) -> None:
    """The generated ruleset has the maps, chains and DNATs kube-proxy's nftables mode has."""
    ports = rules.service_ports(services, slices, node_name="node-1")
    text = rules.build_ruleset(ports, cluster_cidr="10.244.0.0/16", node_name="node-1")
    assert text.startswith("add table ip kajitori\ndelete table ip kajitori\ntable ip kajitori {")
    for fragment in present:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text


def test_ruleset_is_stable_for_the_same_input() -> None:
    """Same objects, same text: an unchanged cluster costs no nft call."""
    svc, eps = [_with_ip(_service("web"))], [_slice("web", _ep("10.244.1.6"), _ep("10.244.1.5"))]
    once = rules.build_ruleset(rules.service_ports(svc, eps))
    assert once == rules.build_ruleset(rules.service_ports(list(reversed(svc)), eps))


SKIP = netns.skip_reason("nft")
root_only = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await check()
        except netns.CommandError:
            result = None
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


@pytest.fixture
async def topology(tmp_path: Path) -> AsyncIterator[tuple[netns.Namespaces, str, str, str]]:
    """node routes between client (10.244.9.2) and backend (10.244.10.2, serving HTTP on 8080).

    Afterwards the host has the namespaces and links it had, and no ``kajitori`` table.
    """
    before = netns.host_counts()
    async with netns.Namespaces() as spaces:
        node, client, backend = [await spaces.add(n) for n in ("node", "client", "backend")]
        await spaces.veth(client, "c0", "10.244.9.2/24", node, "n0", "10.244.9.1/24")
        await spaces.veth(backend, "b0", "10.244.10.2/24", node, "n1", "10.244.10.1/24")
        await spaces.exec(client, "ip", "route", "add", "default", "via", "10.244.9.1")
        await spaces.exec(backend, "ip", "route", "add", "default", "via", "10.244.10.1")
        # Forwarding is on only inside the test's node namespace, which has no uplink.
        await spaces.exec(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        await spaces.exec(node, "ip", "route", "add", "blackhole", "10.96.0.0/12")
        (tmp_path / "hello").write_text("backend\n")
        await spaces.spawn(
            backend, sys.executable, "-m", "http.server", "8080", "--directory", str(tmp_path)
        )
        await _listening(spaces, backend, 8080)
        yield spaces, node, client, backend
    assert netns.host_counts() == before
    assert await nftables.Nftables().show() == ""


async def _listening(spaces: netns.Namespaces, namespace: str, port: int) -> None:
    """Wait until something in ``namespace`` accepts TCP on ``port`` (a server just spawned
    takes a while to start, longer on a busy machine with no bytecode cache)."""
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1).close()"
    for _ in range(100):
        try:
            await spaces.exec(namespace, sys.executable, "-S", "-c", probe)
            return
        except netns.CommandError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} in {namespace}")


@root_only
async def test_proxy_programs_cluster_ip_and_node_port_and_removes_its_table_on_stop(
    apiserver: APIServerProcess,
    admin: rest.Client,
    topology: tuple[netns.Namespaces, str, str, str],
) -> None:
    """Traffic to the ClusterIP and the NodePort reaches the backend; no endpoints rejects."""
    spaces, node, client, backend = topology
    assert apiserver.http is not None and apiserver.pki is not None
    web = _with_ip(_service("web", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080, "targetPort": 8080}]))  # fmt: skip
    await admin.create(rest.SERVICES, web, namespace="default")
    await admin.create(rest.ENDPOINTSLICES, _slice("web", _ep("10.244.10.2")), namespace="default")
    proxy = proxy_cmd.start_in_process(
        apiserver.http.app, apiserver.pki.ca, netns=node, cluster_cidr="10.244.0.0/16"
    )
    try:
        await _eventually(lambda: _has(proxy, "dnat to 10.244.10.2:8080"))
        listed = await proxy.nft.show()
        assert f"{CLUSTER_IP} . tcp . 80 : goto service-" in listed
        await _assert_kubernetes_service(admin, proxy)
        fetch = (sys.executable, "-S", "-c", FETCH)
        assert await spaces.exec(client, *fetch, f"http://{CLUSTER_IP}/hello") == "backend\n\n"
        assert await spaces.exec(client, *fetch, "http://10.244.9.1:30080/hello") == "backend\n\n"
        # Hairpin: the backend reaches itself through its own Service.
        assert await spaces.exec(backend, *fetch, f"http://{CLUSTER_IP}/hello") == "backend\n\n"

        await admin.delete(rest.ENDPOINTSLICES, "web-abc", namespace="default")
        await _eventually(lambda: _has(proxy, f"{CLUSTER_IP} . tcp . 80 : goto reject-chain"))
        refused = await spaces.exec(client, *fetch, f"http://{CLUSTER_IP}/hello", check=False)
        assert "Connection refused" in refused
    finally:
        await proxy_cmd.stop(proxy)
    assert await nftables.Nftables(netns=node).show() == ""


async def _has(proxy: proxier.Proxier, fragment: str) -> bool:
    return fragment in proxy.ruleset


async def _assert_kubernetes_service(admin: rest.Client, proxy: proxier.Proxier) -> None:
    """The ``kubernetes`` Service's 10.96.0.1:443 leads to the API server's own endpoint."""
    try:
        eps = await admin.get(rest.ENDPOINTSLICES, "kubernetes", namespace="default")
    except rest.ApiError:
        assert "10.96.0.1 . tcp . 443 : goto reject-chain" in proxy.ruleset
        return
    address = eps["endpoints"][0]["addresses"][0]
    port = eps["ports"][0]["port"]
    assert "10.96.0.1 . tcp . 443 : goto service-" in proxy.ruleset
    assert f"dnat to {address}:{port}" in proxy.ruleset


@root_only
async def test_kajitori_proxy_command_programs_a_netns_over_https_and_cleans_up_on_sigterm(
    apiserver: APIServerProcess,
) -> None:
    """``kajitori proxy --kubeconfig K --netns N`` syncs the table, then removes it on SIGTERM."""
    async with netns.Namespaces() as spaces:
        node = await spaces.add("node")
        table = nftables.Nftables(netns=node)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kajitori", "proxy",
            "--kubeconfig", str(apiserver.config.kubeconfig_path), "--netns", node,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            listed = await _eventually(table.show, timeout=20)
            assert "10.96.0.1 . tcp . 443" in listed
        finally:
            process.terminate()
            _, stderr = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0, stderr.decode()
        assert await table.show() == ""
