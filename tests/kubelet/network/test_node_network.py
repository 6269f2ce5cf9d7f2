"""The node network of ``up --runtime oci`` on its own: built, rebuilt over leftovers, removed.

Builds a real bridge and node namespaces under a random cluster name and a
free 172.31.X.0/24 (decision 0031), then reads them back with ``ip`` and
``nft``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kajitori.controllers import nodeipam
from kajitori.kubelet.network import node_network
from kajitori.testing import node_network as testing_network

pytestmark = pytest.mark.skipif(
    testing_network.skip_reason() is not None, reason=testing_network.skip_reason() or ""
)

NODES = ("kajitori-worker", "kajitori-worker2")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_link_names_fit_the_kernel_limit_and_differ_per_cluster() -> None:
    """Bridge and veth names stay <= 15 characters; two clusters never share a name."""
    default = node_network.NodeNetwork("kajitori", NODES)
    assert default.bridge == "kajitori0" and default.gateway == "172.18.0.1"
    assert [n.address for n in default.nodes] == ["172.18.0.2", "172.18.0.3"]
    assert [n.netns for n in default.nodes] == ["kajitori-worker", "kajitori-worker2"]
    one = node_network.NodeNetwork("a-very-long-cluster-name-of-32ch", NODES)
    other = node_network.NodeNetwork("another", NODES)
    names = [one.bridge, *(n.host_veth for n in one.nodes)]
    assert all(len(name) <= 15 for name in names)
    assert not set(names) & {other.bridge, *(n.host_veth for n in other.nodes)}
    with pytest.raises(ValueError):
        node_network.NodeNetwork("Bad_Name", NODES)
    with pytest.raises(ValueError):
        node_network.NodeNetwork("ok", NODES, node_cidr="172.31.0.0/31")
    with pytest.raises(ValueError, match="overlaps the Service CIDR"):
        node_network.NodeNetwork("ok", NODES, cluster_cidr="10.96.0.0/16")
    with pytest.raises(ValueError, match="overlaps the node CIDR"):
        node_network.NodeNetwork("ok", NODES, cluster_cidr="172.16.0.0/12")


async def test_setup_over_leftovers_then_teardown_leaves_nothing() -> None:
    """Each node: lo, eth0 at its address, blackhole, masquerade, no default route; host untouched."""
    name, cidr = testing_network.cluster_name(), testing_network.free_node_cidr()
    pods = testing_network.free_cluster_cidr()
    block = pods.replace(".0.0/16", ".1.0/24")
    forward_before = IP_FORWARD.read_text()
    network = node_network.NodeNetwork(name, NODES, node_cidr=cidr, cluster_cidr=pods)
    try:
        await network.setup()
        await network.setup()  # a crashed run's leftovers are replaced, not an error
        first, second = network.nodes
        routes = sh("ip", "-n", first.netns, "-4", "route", "show")
        assert "blackhole 10.96.0.0/12" in routes and "default" not in routes
        assert f"src {first.address}" in routes
        assert "state UP" in sh("ip", "-n", first.netns, "link", "show", "eth0")
        assert "UP" in sh("ip", "-n", first.netns, "link", "show", "lo")
        table = sh("ip", "netns", "exec", first.netns, "nft", "list", "ruleset")
        assert f'oifname "eth0" ip saddr {pods} ip daddr != {pods} masquerade' in table
        assert f"{network.gateway}/24" in sh("ip", "-4", "addr", "show", network.bridge)
        # The two nodes and the host share one L2 segment: node 2 answers node 1 and the host.
        ping = ["busybox", "ping", "-c", "1", "-W", "2", second.address]
        assert subprocess.run(["ip", "netns", "exec", first.netns, *ping]).returncode == 0
        assert subprocess.run(ping, capture_output=True).returncode == 0
        await network.set_routes(first, {block: second.address})
        assert f"{block} via {second.address}" in sh("ip", "-n", first.netns, "route")
        await network.set_routes(first, {})
        assert block not in sh("ip", "-n", first.netns, "route")
        # The host: only podCIDRs inside the cluster CIDR, only via this cluster's nodes.
        await network.set_host_routes(
            {block: second.address, "192.0.2.0/24": second.address, pods: "192.0.2.1"}
        )
        host_routes = sh("ip", "-4", "route", "show", "dev", network.bridge)
        assert f"{block} via {second.address}" in host_routes
        assert "192.0.2." not in host_routes and f"{pods} " not in host_routes
        await network.set_host_routes({})
        assert block not in sh("ip", "-4", "route", "show")
        await network.set_host_routes({block: first.address})  # left for teardown to remove
        assert IP_FORWARD.read_text() == forward_before
        # A later run of the same cluster with fewer nodes removes the extra node too.
        smaller = node_network.NodeNetwork(name, NODES[:1], node_cidr=cidr)
        await smaller.setup()
        assert network.leftovers() == [first.netns, network.bridge, first.host_veth]
        await smaller.teardown()
    finally:
        await network.teardown()
    assert network.leftovers() == []
    assert cidr.rsplit(".", 1)[0] not in sh("ip", "-4", "route", "show")
    assert pods.rsplit(".", 2)[0] + "." not in sh("ip", "-4", "route", "show")


@pytest.mark.parametrize(
    ("cidr", "nodes", "message"),
    [
        ("10.250.0.0/16", 256, None),
        ("10.250.0.0/23", 3, "holds 2 nodes, not 3"),
        ("10.250.0.0/25", 1, "an IPv4 network of /24 or wider"),
        ("fd00::/48", 1, "an IPv4 network of /24 or wider"),
        ("10.250.0.1/16", 1, "has host bits set"),
    ],
)
def test_a_cluster_cidr_must_give_each_node_a_24(
    cidr: str, nodes: int, message: str | None
) -> None:
    if message is None:
        nodeipam.check_cluster_cidr(cidr, nodes)
    else:
        with pytest.raises(ValueError, match=message):
            nodeipam.check_cluster_cidr(cidr, nodes)


def test_up_refuses_an_unusable_cluster_cidr(tmp_path: Path) -> None:
    """Before the API server starts: exit 1 with the reason."""
    flags = ("--nodes", "3", "--cluster-cidr", "10.250.0.0/23")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kajitori",
            "up",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("kajitori: cannot start: cluster CIDR 10.250.0.0/23 holds 2")
