"""Cluster DNS: records for Services, headless endpoints, SRV, pods and PTR, over UDP and TCP.

An in-process API server holds the objects; the DNS server listens on
127.0.0.1 on a free port; dnspython asks it, as a pod's resolver would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.dns import server
from kajitori.kubelet.network import dns as resolv

Object = dict[str, Any]
NS = "default"


async def _eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


def _slice(service: str, endpoints: list[Object], ports: list[Object]) -> Object:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


async def _populate(client: rest.Client) -> str:
    """web (ClusterIP), db (headless, StatefulSet-style hostnames), ext (ExternalName), a pod."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await client.create(rest.SERVICEACCOUNTS, account, namespace=NS)
    ports = [{"name": "http", "port": 80, "protocol": "TCP"}]
    web = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": ports},
    }
    created = await client.create(rest.SERVICES, web, namespace=NS)
    db_ports = [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    db = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": db_ports}}  # fmt: skip
    await client.create(rest.SERVICES, db, namespace=NS)
    endpoints = [
        {"addresses": ["10.244.1.10"], "hostname": "db-0", "conditions": {"ready": True}},
        {"addresses": ["10.244.1.11"], "hostname": "db-1", "conditions": {"ready": True}},
        {"addresses": ["10.244.1.12"], "hostname": "db-2", "conditions": {"ready": False}},
    ]
    await client.create(rest.ENDPOINTSLICES, _slice("db", endpoints, db_ports), namespace=NS)
    ext = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "db.example.org"}}  # fmt: skip
    await client.create(rest.SERVICES, ext, namespace=NS)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    await client.create(rest.PODS, pod, namespace=NS)
    status = {"status": {"podIP": "10.244.1.20", "podIPs": [{"ip": "10.244.1.20"}]}}
    await client.patch(rest.PODS, "p", status, namespace=NS, subresource="status")
    return str(created["spec"]["clusterIP"])


@pytest.fixture
async def cluster_dns(apiserver: APIServerProcess) -> AsyncIterator[tuple[server.ClusterDNS, str]]:
    """The DNS server on 127.0.0.1:<free port> over a populated API; yields it and web's IP."""
    assert apiserver.http is not None and apiserver.pki is not None
    client = rest.Client.in_process(
        apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem
    )
    web_ip = await _populate(client)
    component = server.ClusterDNS(client, host="127.0.0.1", port=0)
    await component.start()
    await component.wait_for_sync()
    try:
        yield component, web_ip
    finally:
        await component.stop()
        await client.aclose()


async def _ask(port: int, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    response = await send(query, "127.0.0.1", port=port, timeout=3)
    assert isinstance(response, dns.message.Message)
    return response


def _texts(response: dns.message.Message, rdtype: str | None = None) -> list[str]:
    return sorted(
        rdata.to_text()
        for rrset in response.answer
        if rdtype is None or rrset.rdtype == dns.rdatatype.from_text(rdtype)
        for rdata in rrset
    )


@pytest.mark.parametrize("tcp", [pytest.param(False, id="udp"), pytest.param(True, id="tcp")])
async def test_service_names_resolve_over_udp_and_tcp(
    cluster_dns: tuple[server.ClusterDNS, str], tcp: bool
) -> None:
    """A records for ClusterIP and headless Services, StatefulSet hostnames, and pods."""
    component, web_ip = cluster_dns
    port = component.port
    cases = {
        "web.default.svc.cluster.local": [web_ip],
        "kubernetes.default.svc.cluster.local": ["10.96.0.1"],
        "db.default.svc.cluster.local": ["10.244.1.10", "10.244.1.11"],
        "db-1.db.default.svc.cluster.local": ["10.244.1.11"],
        "10-244-1-20.default.pod.cluster.local": ["10.244.1.20"],
    }
    for name, expected in cases.items():
        response = await _ask(port, name, "A", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR, name
        assert _texts(response) == expected, name


async def test_srv_for_named_ports_of_cluster_ip_and_headless_services(
    cluster_dns: tuple[server.ClusterDNS, str],
) -> None:
    """SRV: the Service name as target; for headless, each ready endpoint with its A record."""
    component, _ = cluster_dns
    web = await _ask(component.port, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert _texts(web) == ["0 100 80 web.default.svc.cluster.local."]
    db = await _ask(component.port, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert _texts(db) == [
        "0 100 5432 db-0.db.default.svc.cluster.local.",
        "0 100 5432 db-1.db.default.svc.cluster.local.",
    ]
    assert sorted(r.to_text().split()[-1] for r in db.additional) == ["10.244.1.10", "10.244.1.11"]


async def test_cname_ptr_nxdomain_nodata_and_refused(
    cluster_dns: tuple[server.ClusterDNS, str],
) -> None:
    """ExternalName is a CNAME; PTR names a ClusterIP; unknown names are NXDOMAIN with SOA."""
    component, web_ip = cluster_dns
    port = component.port
    ext = await _ask(port, "ext.default.svc.cluster.local", "A")
    assert _texts(ext, "CNAME") == ["db.example.org."]
    reverse = ".".join(reversed(web_ip.split("."))) + ".in-addr.arpa"
    assert _texts(await _ask(port, reverse, "PTR")) == ["web.default.svc.cluster.local."]
    for name in (
        "nope.default.svc.cluster.local",
        "db-2.db.default.svc.cluster.local",  # not ready
        "10-244-9-9.default.pod.cluster.local",  # no such pod
        "10-244-1-20.other.pod.cluster.local",  # the pod is in another namespace
        "_nope._tcp.web.default.svc.cluster.local",
    ):
        response = await _ask(port, name, "A")
        assert response.rcode() == dns.rcode.NXDOMAIN, name
        assert response.authority and response.authority[0].rdtype == dns.rdatatype.SOA
    nodata = await _ask(port, "web.default.svc.cluster.local", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert (await _ask(port, "example.org", "A")).rcode() == dns.rcode.REFUSED


async def test_kubernetes_default_resolves_through_the_pod_resolv_conf(
    cluster_dns: tuple[server.ClusterDNS, str], tmp_path: Path
) -> None:
    """A resolver reading the kubelet's resolv.conf finds kubernetes.default by its search list."""
    component, _ = cluster_dns
    pod = {"metadata": {"namespace": "default"}, "spec": {}}
    config = resolv.pod_dns_config(pod, host=resolv.DNSConfig(), cluster_dns=("127.0.0.1",))
    resolv.write_resolv_conf(tmp_path / "resolv.conf", config)
    resolver = dns.asyncresolver.Resolver(filename=str(tmp_path / "resolv.conf"))
    resolver.port = component.port
    assert resolver.ndots == 5
    answer = await resolver.resolve("kubernetes.default", "A", search=True)
    assert [r.to_text() for r in answer] == ["10.96.0.1"]
    assert str(answer.qname) == "kubernetes.default.svc.cluster.local."
    short = await resolver.resolve("web", "A", search=True)
    assert str(short.qname) == "web.default.svc.cluster.local."


async def test_changes_reach_answers_through_the_informers(
    apiserver: APIServerProcess, cluster_dns: tuple[server.ClusterDNS, str]
) -> None:
    """A Service deleted from the API stops resolving."""
    component, _ = cluster_dns
    client = component.client
    await client.delete(rest.SERVICES, "web", namespace=NS)

    async def gone() -> bool:
        response = await _ask(component.port, "web.default.svc.cluster.local", "A")
        return response.rcode() == dns.rcode.NXDOMAIN

    await _eventually(gone)
