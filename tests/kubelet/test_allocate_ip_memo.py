"""A simulated pod's address: the memoized CIDR arithmetic gives the old per-call answer."""

from __future__ import annotations

import ipaddress
import random

import pytest

from kajitori.kubelet import kubelet, node_status


def _reference(state: kubelet.NodeState, uid: str) -> str:
    """The unmemoized rule: the lowest free host address above the gateway."""
    if uid in state.pod_ips:
        return state.pod_ips[uid]
    network = ipaddress.ip_network(state.pod_cidr)
    taken = set(state.pod_ips.values())
    for offset in range(2, network.num_addresses - 1):
        candidate = str(network.network_address + offset)
        if candidate not in taken:
            return candidate
    raise RuntimeError("full")


@pytest.mark.parametrize("cidr", ["10.244.3.0/24", "10.244.0.0/29", "fd00:10:244:7::/124"])
def test_addresses_match_the_unmemoized_rule_through_frees_and_a_cidr_change(cidr: str) -> None:
    """Random allocations and frees (as pods come and go), then a new podCIDR: every
    address is the one the per-call rule gives, and a full CIDR still raises."""
    rng = random.Random(cidr)
    state = kubelet.NodeState(node_status.NodeConfig(name="n", internal_ip="172.18.0.2"))
    state.pod_cidr = cidr
    size = ipaddress.ip_network(cidr).num_addresses - 3  # .0, the gateway .1, broadcast
    live: list[str] = []
    for step in range(200):
        if live and (len(live) == size or rng.random() < 0.4):
            state.pod_ips.pop(live.pop(rng.randrange(len(live))))
            continue
        uid = f"uid-{step}"
        expected = _reference(state, uid)
        assert state.allocate_ip(uid) == expected
        assert state.allocate_ip(uid) == expected  # asked again: the same address
        live.append(uid)
    state.pod_cidr = "10.250.1.0/30"  # two host addresses, .2 only above the gateway
    state.pod_ips.clear()
    assert state.allocate_ip("a") == "10.250.1.2"
    with pytest.raises(RuntimeError, match="is full"):
        state.allocate_ip("b")
