"""Cluster DNS records from Services, EndpointSlices and Pods (the DNS spec of kubernetes/dns).

Answers what CoreDNS's ``kubernetes`` plugin answers for the zone
``cluster.local`` (the Kubernetes DNS-Based Service Discovery spec):

* ``<svc>.<ns>.svc.<zone>`` A — the ClusterIP; for a headless Service one A
  per ready endpoint; an ExternalName Service is a CNAME to its name;
* ``<hostname>.<svc>.<ns>.svc.<zone>`` A — a headless Service's endpoint
  that carries a ``hostname`` (StatefulSet pods with a matching subdomain);
* ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV — per named port: the
  Service name as target, or each headless endpoint's own name
  (its hostname, else its dashed IP);
* ``a-b-c-d.<ns>.pod.<zone>`` A — only when a pod of that namespace has that
  IP (CoreDNS's ``pods verified``);
* ``d.c.b.a.in-addr.arpa`` PTR — ClusterIPs and headless endpoints.

``Records.lookup`` is pure over the informers' indexers: the name's
existence decides NXDOMAIN versus an empty NOERROR answer (NODATA), as the
spec requires. Records carry a 5 s TTL (the plugin's default).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import Any, Literal

from kajitori.client import informer

Object = dict[str, Any]
RecordType = Literal["A", "SRV", "CNAME", "PTR"]

ZONE = "cluster.local"
TTL = 5
SERVICE_INDEX = "service"
POD_IP_INDEX = "podIP"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One answer: ``data`` is an IP (A), a name (CNAME, PTR), or (port, target) for SRV."""

    name: str
    type: RecordType
    data: str
    port: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    exists: bool  # False: NXDOMAIN
    records: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


NXDOMAIN = Answer(False)


def index_slice_by_service(obj: Object) -> list[str]:
    meta = obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace') or ''}/{owner}"] if owner else []


def index_pod_by_ip(obj: Object) -> list[str]:
    status = obj.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or [] if entry.get("ip")]
    return ips or ([status["podIP"]] if status.get("podIP") else [])


class Records:
    """Resolve names in ``zone`` against indexers of Services, EndpointSlices and Pods."""

    def __init__(
        self,
        services: informer.Indexer,
        slices: informer.Indexer,
        pods: informer.Indexer,
        *,
        zone: str = ZONE,
    ) -> None:
        self.services = services
        self.slices = slices
        self.pods = pods
        self.zone = zone.strip(".").lower()
        slices.add_indexers({SERVICE_INDEX: index_slice_by_service})
        pods.add_indexers({POD_IP_INDEX: index_pod_by_ip})

    def in_zone(self, name: str) -> bool:
        name = name.strip(".").lower()
        return name == self.zone or name.endswith(("." + self.zone, ".in-addr.arpa"))

    def lookup(self, name: str, rtype: RecordType) -> Answer:
        """The answer for ``name`` (any case, with or without the final dot)."""
        name = name.strip(".").lower()
        if name.endswith(".in-addr.arpa"):
            return self._reverse(name, rtype)
        if name == self.zone:
            return Answer(True)
        labels = name[: -len(self.zone) - 1].split(".") if self.in_zone(name) else []
        if len(labels) >= 2 and labels[-1] == "svc":
            return self._service_name(labels[:-1], rtype)
        if len(labels) == 3 and labels[-1] == "pod":
            return self._pod(labels[0], labels[1], rtype)
        if len(labels) == 1 and labels[0] in ("svc", "pod"):
            return Answer(True)  # empty non-terminals exist
        return NXDOMAIN

    def _service_name(self, labels: list[str], rtype: RecordType) -> Answer:
        if len(labels) == 1:
            return Answer(bool(self.services.by_index(informer.NAMESPACE_INDEX, labels[0])))
        if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._srv(labels[0][1:], labels[1][1:], labels[2], labels[3], rtype)
        if len(labels) == 3:
            return self._endpoint_name(labels[0], labels[1], labels[2], rtype)
        if len(labels) != 2:
            return NXDOMAIN
        service = self.services.get(f"{labels[1]}/{labels[0]}")
        if service is None:
            return NXDOMAIN
        fqdn = f"{labels[0]}.{labels[1]}.svc.{self.zone}"
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").strip(".")
            return Answer(True, (Record(fqdn, "CNAME", target),))
        if rtype != "A":
            return Answer(True)
        return Answer(True, tuple(Record(fqdn, "A", ip) for ip in self._service_ips(service)))

    def _service_ips(self, service: Object) -> list[str]:
        cluster_ip = (service.get("spec") or {}).get("clusterIP") or ""
        if cluster_ip and cluster_ip != "None":
            return [cluster_ip] if _ipv4(cluster_ip) else []
        return sorted({ip for ip, _ in self._ready_endpoints(service)})

    def _ready_endpoints(self, service: Object) -> Iterable[tuple[str, Object]]:
        """(IPv4 address, endpoint) of each ready endpoint of ``service``'s slices."""
        meta = service.get("metadata") or {}
        key = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
        for eps in self.slices.by_index(SERVICE_INDEX, key):
            if eps.get("addressType", "IPv4") != "IPv4":
                continue
            for endpoint in eps.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for ip in (endpoint.get("addresses") or [])[:1]:
                    yield ip, endpoint

    def _endpoint_name(self, host: str, svc: str, namespace: str, rtype: RecordType) -> Answer:
        """``<hostname>.<svc>.<ns>.svc``: a headless Service's endpoint by hostname or dashed IP."""
        service = self.services.get(f"{namespace}/{svc}")
        if service is None or (service.get("spec") or {}).get("clusterIP") not in ("None", None):
            return NXDOMAIN
        fqdn = f"{host}.{svc}.{namespace}.svc.{self.zone}"
        ips = sorted(
            {ip for ip, ep in self._ready_endpoints(service) if _endpoint_host(ip, ep) == host}
        )
        if not ips:
            return NXDOMAIN
        records = tuple(Record(fqdn, "A", ip) for ip in ips) if rtype == "A" else ()
        return Answer(True, records)

    def _srv(
        self, port_name: str, proto: str, svc: str, namespace: str, rtype: RecordType
    ) -> Answer:
        service = self.services.get(f"{namespace}/{svc}")
        if service is None:
            return NXDOMAIN
        spec = service.get("spec") or {}
        port = next(
            (
                p
                for p in spec.get("ports") or []
                if (p.get("name") or "") == port_name
                and (p.get("protocol") or "TCP").lower() == proto
            ),
            None,
        )
        if port is None:
            return NXDOMAIN
        owner = f"_{port_name}._{proto}.{svc}.{namespace}.svc.{self.zone}"
        if rtype != "SRV":
            return Answer(True)
        base = f"{svc}.{namespace}.svc.{self.zone}"
        if spec.get("clusterIP") not in ("None", None):
            return Answer(True, (Record(owner, "SRV", base, int(port["port"])),))
        return self._headless_srv(service, owner, base, port_name, proto)

    def _headless_srv(
        self, service: Object, owner: str, base: str, port_name: str, proto: str
    ) -> Answer:
        records, additional = [], []
        for ip, endpoint in sorted(self._ready_endpoints(service), key=lambda e: e[0]):
            number = _slice_port(self.slices, service, ip, port_name, proto)
            if number is None:
                continue
            target = f"{_endpoint_host(ip, endpoint)}.{base}"
            records.append(Record(owner, "SRV", target, number))
            additional.append(Record(target, "A", ip))
        return Answer(True, tuple(records), tuple(additional))

    def _pod(self, dashed: str, namespace: str, rtype: RecordType) -> Answer:
        ip = dashed.replace("-", ".")
        if not _ipv4(ip):
            return NXDOMAIN
        pods = self.pods.by_index(POD_IP_INDEX, ip)
        if not any((p.get("metadata") or {}).get("namespace") == namespace for p in pods):
            return NXDOMAIN
        fqdn = f"{dashed}.{namespace}.pod.{self.zone}"
        return Answer(True, (Record(fqdn, "A", ip),) if rtype == "A" else ())

    def _reverse(self, name: str, rtype: RecordType) -> Answer:
        octets = name[: -len(".in-addr.arpa")].split(".")
        ip = ".".join(reversed(octets))
        if len(octets) != 4 or not _ipv4(ip):
            return NXDOMAIN
        for service in self.services.list():
            meta = service.get("metadata") or {}
            base = f"{meta.get('name')}.{meta.get('namespace')}.svc.{self.zone}"
            if (service.get("spec") or {}).get("clusterIP") == ip:
                return Answer(True, (Record(name, "PTR", base),) if rtype == "PTR" else ())
            for endpoint_ip, endpoint in self._ready_endpoints(service):
                if endpoint_ip == ip and (service.get("spec") or {}).get("clusterIP") == "None":
                    target = f"{_endpoint_host(ip, endpoint)}.{base}"
                    return Answer(True, (Record(name, "PTR", target),) if rtype == "PTR" else ())
        return NXDOMAIN


def _endpoint_host(ip: str, endpoint: Object) -> str:
    return str(endpoint.get("hostname") or ip.replace(".", "-"))


def _slice_port(
    slices: informer.Indexer, service: Object, ip: str, port_name: str, proto: str
) -> int | None:
    meta = service.get("metadata") or {}
    key = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
    for eps in slices.by_index(SERVICE_INDEX, key):
        if not any(ip in (e.get("addresses") or []) for e in eps.get("endpoints") or []):
            continue
        for port in eps.get("ports") or []:
            if (port.get("name") or "") == port_name and (
                port.get("protocol") or "TCP"
            ).lower() == proto:
                return int(port["port"])
    return None


def _ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False
