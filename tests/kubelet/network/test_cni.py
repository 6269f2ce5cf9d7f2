"""CNI: Debian's bridge, host-local, loopback and portmap plugins, run per the spec into test netns.

Every plugin runs inside a test-made "node" namespace (``host_netns``), so the
bridge, the host-side veths and ``ip_forward`` never touch the host: the test
checks the host's namespaces, veths and bridges are the same before and after.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kajitori.kubelet.network import cni, pod_network
from kajitori.testing import netns

SKIP = netns.skip_reason("nft") or (
    None
    if cni.find_plugin("bridge", cni.DEFAULT_CNI_PATH)
    else "containernetworking-plugins missing"
)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

POD_CIDR = "10.244.201.0/24"
FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"


@pytest.fixture
async def spaces() -> AsyncIterator[netns.Namespaces]:
    """Test namespaces; afterwards the host has exactly the namespaces and links it had."""
    before = netns.host_counts()
    async with netns.Namespaces() as created:
        yield created
    assert netns.host_counts() == before


@pytest.fixture
async def node(spaces: netns.Namespaces, tmp_path: Path) -> AsyncIterator[pod_network.PodNetwork]:
    """A node namespace with the service blackhole, and the pod network whose plugins run in it."""
    node_ns = await spaces.add("node")
    await pod_network.ensure_service_blackhole(netns=node_ns)
    conflist = pod_network.pod_network_conflist(POD_CIDR, ipam_dir=tmp_path / "ipam")
    yield pod_network.PodNetwork(conflist, cache_dir=tmp_path / "cache", host_netns=node_ns)


async def _fetch(spaces: netns.Namespaces, client_ns: str, url: str) -> str:
    """GET ``url`` from inside ``client_ns``, retrying while the server starts."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            return await spaces.exec(client_ns, sys.executable, "-S", "-c", FETCH, url)
        except netns.CommandError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_two_pods_get_podcidr_ips_talk_over_the_bridge_and_del_frees_everything(
    spaces: netns.Namespaces, node: pod_network.PodNetwork, tmp_path: Path
) -> None:
    """ADD wires two pods into the bridge with podCIDR IPs; HTTP flows; DEL leaves nothing."""
    a, b = await spaces.add("a"), await spaces.add("b")
    status_a = await node.setup("sandbox-a", spaces.path(a), namespace="default", name="a")
    status_b = await node.setup("sandbox-b", spaces.path(b), namespace="default", name="b")
    subnet = ipaddress.ip_network(POD_CIDR)
    assert (
        ipaddress.ip_address(status_a.ip) in subnet and ipaddress.ip_address(status_b.ip) in subnet
    )
    assert status_a.ip != status_b.ip and status_a.ip != "10.244.201.1"
    assert status_a.result["interfaces"][0]["name"] == pod_network.BRIDGE
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello").write_text("from b\n")
    await spaces.spawn(
        b, sys.executable, "-m", "http.server", "8080", "--bind", status_b.ip,
        "--directory", str(tmp_path / "www"),
    )  # fmt: skip
    assert await _fetch(spaces, a, f"http://{status_b.ip}:8080/hello") == "from b\n\n"
    await node.pods.check_network(cni.RuntimeConf("sandbox-a", spaces.path(a)))
    reserved = sorted(
        p.name for p in (tmp_path / "ipam" / "kajitori").iterdir() if p.name[0] == "1"
    )
    assert reserved == sorted([status_a.ip, status_b.ip])

    await node.teardown("sandbox-a", spaces.path(a))
    await node.teardown("sandbox-b", spaces.path(b))
    await node.teardown("sandbox-b", spaces.path(b))  # DEL is idempotent
    assert not [p for p in (tmp_path / "ipam" / "kajitori").iterdir() if p.name[0] == "1"]
    assert not list((tmp_path / "cache").iterdir())
    node_ns = spaces.names[0]
    assert "veth" not in await spaces.exec(node_ns, "ip", "-o", "link", "show", "type", "veth")


async def test_host_port_is_reachable_on_the_gateway_through_portmap(
    spaces: netns.Namespaces, node: pod_network.PodNetwork, tmp_path: Path
) -> None:
    """A portMapping (hostPort 30080 -> 8080) DNATs node-side traffic into the pod."""
    a = await spaces.add("a")
    mapping = [{"hostPort": 30080, "containerPort": 8080, "protocol": "tcp"}]
    status = await node.setup("sb", spaces.path(a), namespace="ns", name="a", port_mappings=mapping)
    (tmp_path / "hello").write_text("hostport\n")
    await spaces.spawn(a, sys.executable, "-m", "http.server", "8080", "--directory", str(tmp_path))
    node_ns = spaces.names[0]
    assert await _fetch(spaces, node_ns, "http://10.244.201.1:30080/hello") == "hostport\n\n"
    cached = json.loads(next((tmp_path / "cache").glob("kajitori-sb-eth0.json")).read_text())
    assert cached["capabilityArgs"] == {"portMappings": mapping}
    await node.teardown("sb", spaces.path(a))
    assert status.ip not in {p.name for p in (tmp_path / "ipam" / "kajitori").iterdir()}


async def test_del_after_the_namespace_is_gone_still_releases_the_ip(
    spaces: netns.Namespaces, node: pod_network.PodNetwork, tmp_path: Path
) -> None:
    """A sandbox whose netns vanished first is still torn down without error."""
    a = await spaces.add("a")
    status = await node.setup("gone", spaces.path(a), namespace="default", name="a")
    await netns.run("ip", "netns", "del", a)
    spaces.names.remove(a)
    await node.teardown("gone", spaces.path(a))
    assert status.ip not in {p.name for p in (tmp_path / "ipam" / "kajitori").iterdir()}


async def test_gc_releases_cached_attachments_and_orphan_reservations(
    spaces: netns.Namespaces, node: pod_network.PodNetwork, tmp_path: Path
) -> None:
    """gc DELs dead sandboxes and drops host-local files no live sandbox owns."""
    a, b = await spaces.add("a"), await spaces.add("b")
    live = await node.setup("live", spaces.path(a), namespace="default", name="a")
    dead = await node.setup("dead", spaces.path(b), namespace="default", name="b")
    orphan = tmp_path / "ipam" / "kajitori" / "10.244.201.250"
    orphan.write_text("never-cached\r\neth0")
    released = await node.gc({"live"})
    assert released == ["10.244.201.250"]
    left = {p.name for p in (tmp_path / "ipam" / "kajitori").iterdir()}
    assert live.ip in left and dead.ip not in left
    assert node.pods.cached_container_ids() == {"live"}


@pytest.mark.parametrize(
    ("plugins", "expected"),
    [
        pytest.param(
            ({"type": "no-such-plugin"},),
            'plugin type="no-such-plugin" failed (add): failed to find plugin "no-such-plugin"',
            id="missing-plugin",
        ),
        pytest.param(
            ({"type": "bridge", "bridge": "kjbrbad", "ipam": {"type": "host-local"}},),
            'plugin type="bridge" failed (add): ',
            id="plugin-error-object",
        ),
    ],
)
async def test_add_failures_read_as_containerd_and_leave_nothing(
    spaces: netns.Namespaces, tmp_path: Path, plugins: tuple[cni.Object, ...], expected: str
) -> None:
    """A failing ADD raises upstream's sandbox message and rolls back its partial work."""
    node_ns, a = await spaces.add("node"), await spaces.add("a")
    network = pod_network.PodNetwork(
        cni.NetworkConfigList("kajitori", plugins), cache_dir=tmp_path, host_netns=node_ns
    )
    with pytest.raises(pod_network.NetworkSetupError) as raised:
        await network.setup("sb-1", spaces.path(a), namespace="default", name="a")
    assert str(raised.value).startswith(f'failed to setup network for sandbox "sb-1": {expected}')
    assert not list(tmp_path.glob("kajitori-*"))
    assert "eth0" not in await spaces.exec(a, "ip", "-o", "link")


async def test_service_blackhole_is_idempotent_and_removable(spaces: netns.Namespaces) -> None:
    """The service range is blackholed once however often it is ensured, and can be removed."""
    node_ns = await spaces.add("node")
    for _ in range(2):
        await pod_network.ensure_service_blackhole(netns=node_ns)
    routes = await spaces.exec(node_ns, "ip", "route", "show", "type", "blackhole")
    assert [line.strip() for line in routes.splitlines()] == ["blackhole 10.96.0.0/12"]
    unroutable = await spaces.exec(node_ns, "ip", "route", "get", "10.96.0.10", check=False)
    assert "Invalid argument" in unroutable
    await pod_network.remove_service_blackhole(netns=node_ns)
    await pod_network.remove_service_blackhole(netns=node_ns)
    assert not (await spaces.exec(node_ns, "ip", "route", "show", "type", "blackhole")).strip()
