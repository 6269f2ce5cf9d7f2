"""A pod's resolv.conf per dnsPolicy and dnsConfig, as upstream's kubelet writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet.network import dns

HOST = dns.parse_resolv_conf(
    "# generated\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\n"
    "options timeout:2 edns0\n"
)
CLUSTER_SEARCH = "search team-a.svc.cluster.local svc.cluster.local cluster.local"


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "team-a"}, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {},
            f"nameserver 10.96.0.10\n{CLUSTER_SEARCH} corp.example\noptions ndots:5\n",
            id="cluster-first-by-default",
        ),
        pytest.param(
            {"dnsPolicy": "ClusterFirst", "hostNetwork": True},
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\n"
            "options timeout:2 edns0\n",
            id="host-network-cluster-first-uses-the-host",
        ),
        pytest.param(
            {"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True},
            f"nameserver 10.96.0.10\n{CLUSTER_SEARCH} corp.example\noptions ndots:5\n",
            id="cluster-first-with-host-net",
        ),
        pytest.param(
            {"dnsPolicy": "Default"},
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\n"
            "options timeout:2 edns0\n",
            id="default-is-the-host",
        ),
        pytest.param(
            {
                "dnsPolicy": "None",
                "dnsConfig": {
                    "nameservers": ["192.0.2.1"],
                    "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
                },
            },
            "nameserver 192.0.2.1\nsearch ns1.svc.cluster-domain.example my.dns.search.suffix\n"
            "options ndots:2 edns0\n",
            id="none-with-dns-config",
        ),
        pytest.param(
            {
                "dnsConfig": {
                    "nameservers": ["10.96.0.10", "192.0.2.9", "192.0.2.10", "192.0.2.11"],
                    "searches": ["cluster.local", "extra.example"],
                    "options": [{"name": "ndots", "value": "1"}],
                }
            },
            "nameserver 10.96.0.10\nnameserver 192.0.2.9\nnameserver 192.0.2.10\n"
            f"{CLUSTER_SEARCH} corp.example extra.example\noptions ndots:1\n",
            id="dns-config-appends-dedups-overrides-and-limits",
        ),
    ],
)
def test_resolv_conf_follows_dns_policy(spec: dict[str, Any], expected: str) -> None:
    """Each dnsPolicy yields upstream's nameservers, search list and options."""
    assert dns.pod_dns_config(_pod(**spec), host=HOST).render() == expected


def test_cluster_first_without_cluster_dns_falls_back_to_the_host() -> None:
    """No cluster DNS configured: ClusterFirst behaves as Default, as upstream."""
    assert dns.pod_dns_config(_pod(), host=HOST, cluster_dns=()) == HOST


def test_search_list_is_capped_at_32_domains() -> None:
    """glibc's limits: 32 search domains at most."""
    many = [f"d{i}.example" for i in range(40)]
    config = dns.pod_dns_config(_pod(dnsPolicy="None", dnsConfig={"searches": many}), host=HOST)
    assert config.searches == tuple(many[:32])


def test_write_resolv_conf_replaces_the_file_atomically(tmp_path: Path) -> None:
    """The file is written whole, world-readable, replacing any previous one."""
    target = tmp_path / "pod" / "resolv.conf"
    dns.write_resolv_conf(target, dns.DNSConfig(("10.96.0.10",), ("a",), ("ndots:5",)))
    dns.write_resolv_conf(target, dns.pod_dns_config(_pod(), host=HOST))
    assert target.read_text().startswith("nameserver 10.96.0.10\nsearch team-a.svc")
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["resolv.conf"]
