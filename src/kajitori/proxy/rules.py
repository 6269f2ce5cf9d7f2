"""The nftables ruleset for a set of Services and EndpointSlices (kube-proxy's nftables mode).

Pure: ``build_ruleset`` turns the informers' objects into the text ``nft -f``
reads, so the whole shape can be asserted without a kernel. One table,
``ip kajitori``, holds everything; applying it is one transaction that
deletes and recreates the table (``proxy/nftables.py``). The layout follows
upstream's pkg/proxy/nftables/proxier.go:

* base chains ``nat-prerouting`` (dstnat) and ``nat-output`` (-100) jump to
  ``services``, which looks ``daddr . l4proto . dport`` up in the verdict map
  ``service-ips`` (ClusterIPs), and ``l4proto . dport`` in
  ``service-nodeports`` for packets to one of the node's own addresses
  (``fib daddr type local``; 127.0.0.0/8 excluded, as upstream's nftables
  mode does not serve NodePorts on localhost);
* ``service-<hash>-<ns>/<name>/<proto>/<port>`` picks an endpoint with
  ``numgen random mod N`` and jumps to ``endpoint-<hash>-...__<ip>/<port>``,
  which DNATs. Only ready endpoints are used (serving-and-terminating ones
  when none is ready, upstream's fallback);
* masquerade only where the reply would otherwise bypass us: an endpoint
  reaching its own Service (hairpin: ``ip saddr <endpoint>``), ClusterIP
  traffic from outside the cluster CIDR when one is configured, and
  NodePort traffic with ``externalTrafficPolicy: Cluster``. Marked packets
  are masqueraded in ``nat-postrouting``; the bridge's ``ipMasq`` stays off;
* a Service port without endpoints is rejected (``no-endpoint-services``,
  ``no-endpoint-nodeports``) from filter chains at priority -110, so clients
  fail fast instead of timing out, as upstream. Upstream rejects in the
  forward hook; we reject at prerouting (kernels since 5.x allow it), because
  the blackhole route for the service range drops an unmatched packet in
  routing, before the forward hook would see it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Object = Mapping[str, Any]

TABLE = "kajitori"
MASQ_MARK = "0x4000"  # kube-proxy's masquerade bit
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ServicePort:
    """One (Service, port) kube-proxy programs, with the endpoints it balances over."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # nft's spelling: tcp, udp, sctp
    cluster_ip: str
    port: int
    node_port: int
    external_local: bool
    endpoints: tuple[Endpoint, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name or self.port}"

    @property
    def chain(self) -> str:
        return f"service-{_hash(self.key)}-{self.key}"

    @property
    def external_chain(self) -> str:
        return f"external-{_hash(self.key)}-{self.key}"

    def endpoint_chain(self, endpoint: Endpoint) -> str:
        suffix = f"{self.key}__{endpoint.ip}/{endpoint.port}"
        return f"endpoint-{_hash(suffix)}-{suffix}"


def _hash(text: str) -> str:
    """Eight base32 characters of a SHA-256, as upstream keeps chain names unique and short."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]


def service_ports(
    services: Iterable[Object], slices: Iterable[Object], *, node_name: str = ""
) -> list[ServicePort]:
    """Every IPv4 ClusterIP Service port, with its ready endpoints, in a stable order."""
    by_service: dict[tuple[str, str], list[Object]] = {}
    for eps in slices:
        meta = eps.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner and eps.get("addressType", "IPv4") == "IPv4":
            by_service.setdefault((meta.get("namespace") or "", owner), []).append(eps)
    ports: list[ServicePort] = []
    for service in services:
        meta = service.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        ports.extend(_ports_of(service, by_service.get(key, []), node_name))
    return sorted(ports, key=lambda p: p.key)


def _ports_of(service: Object, slices: Sequence[Object], node_name: str) -> list[ServicePort]:
    spec = service.get("spec") or {}
    meta = service.get("metadata") or {}
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type") == "ExternalName" or not _is_ipv4(cluster_ip):
        return []  # headless ("None"), unallocated, or IPv6: nothing to program
    nodeports = spec.get("type") in ("NodePort", "LoadBalancer")
    local = spec.get("externalTrafficPolicy") == "Local"
    result = []
    for port in spec.get("ports") or []:
        protocol = _PROTOCOLS.get(port.get("protocol") or "TCP")
        if protocol is None:
            continue
        endpoints = _endpoints_for(slices, port.get("name") or "", port.get("protocol") or "TCP")
        result.append(
            ServicePort(
                namespace=meta.get("namespace") or "",
                name=meta.get("name") or "",
                port_name=port.get("name") or "",
                protocol=protocol,
                cluster_ip=cluster_ip,
                port=int(port["port"]),
                node_port=int(port.get("nodePort") or 0) if nodeports else 0,
                external_local=local and bool(node_name),
                endpoints=endpoints,
            )
        )
    return result


def _endpoints_for(slices: Sequence[Object], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """Ready endpoints for the named port; serving-terminating ones if none is ready."""
    ready: dict[tuple[str, int], Endpoint] = {}
    terminating: dict[tuple[str, int], Endpoint] = {}
    for eps in slices:
        number = next(
            (
                p.get("port")
                for p in eps.get("ports") or []
                if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
            ),
            None,
        )
        if number is None:
            continue
        for endpoint in eps.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            node = endpoint.get("nodeName") or ""
            for ip in (endpoint.get("addresses") or [])[:1]:  # one address per endpoint (IPv4)
                found = Endpoint(ip, int(number), node)
                if conditions.get("ready") is not False:
                    ready[(ip, int(number))] = found
                elif conditions.get("serving") and conditions.get("terminating"):
                    terminating[(ip, int(number))] = found
    chosen = ready or terminating
    return tuple(chosen[k] for k in sorted(chosen))


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def build_ruleset(
    ports: Sequence[ServicePort],
    *,
    table: str = TABLE,
    cluster_cidr: str = "",
    node_name: str = "",
) -> str:
    """The ``nft -f`` script that replaces ``table`` with the rules for ``ports``."""
    chains: list[str] = []
    service_ips: list[str] = []
    nodeports: list[str] = []
    no_endpoint_ips: list[str] = []
    no_endpoint_nodeports: list[str] = []
    for sp in ports:
        endpoints = sp.endpoints
        cluster_key = f"{sp.cluster_ip} . {sp.protocol} . {sp.port}"
        if not endpoints:
            no_endpoint_ips.append(f"{cluster_key} : goto reject-chain")
            if sp.node_port:
                no_endpoint_nodeports.append(f"{sp.protocol} . {sp.node_port} : goto reject-chain")
            continue
        chains.extend(_service_chains(sp, cluster_cidr))
        service_ips.append(f"{cluster_key} : goto {sp.chain}")
        if sp.node_port:
            nodeports.append(f"{sp.protocol} . {sp.node_port} : goto {sp.external_chain}")
            chains.append(_external_chain(sp, node_name))
    header = f"add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n"
    body = [
        _map("service-ips", "ipv4_addr . inet_proto . inet_service", service_ips),
        _map("service-nodeports", "inet_proto . inet_service", nodeports),
        _map("no-endpoint-services", "ipv4_addr . inet_proto . inet_service", no_endpoint_ips),
        _map("no-endpoint-nodeports", "inet_proto . inet_service", no_endpoint_nodeports),
        *_fixed_chains(),
        *chains,
    ]
    return header + "".join(body) + "}\n"


def _map(name: str, key_type: str, elements: Sequence[str]) -> str:
    text = f"\tmap {name} {{\n\t\ttype {key_type} : verdict\n"
    if elements:
        text += "\t\telements = { " + ", ".join(elements) + " }\n"
    return text + "\t}\n"


def _chain(name: str, rules: Sequence[str], hook: str = "") -> str:
    lines = ([f"\t\t{hook}; policy accept;"] if hook else []) + [f"\t\t{r}" for r in rules]
    return f"\tchain {name} {{\n" + "".join(f"{line}\n" for line in lines) + "\t}\n"


def _fixed_chains() -> list[str]:
    lookups = [
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
        "@service-nodeports",
    ]
    no_endpoints = ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]
    local_no_endpoints = [
        *no_endpoints,
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap "
        "@no-endpoint-nodeports",
    ]
    return [
        _chain("mark-for-masquerade", [f"meta mark set meta mark or {MASQ_MARK}"]),
        _chain(
            "masquerading",
            [
                f"meta mark & {MASQ_MARK} == 0 return",
                f"meta mark set meta mark xor {MASQ_MARK}",
                "masquerade fully-random",
            ],
        ),
        _chain("reject-chain", ["reject"]),
        _chain("services", lookups),
        _chain("nat-prerouting", ["jump services"], "type nat hook prerouting priority dstnat"),
        _chain("nat-output", ["jump services"], "type nat hook output priority -100"),
        _chain("nat-postrouting", ["jump masquerading"], "type nat hook postrouting priority srcnat"),
        _chain("filter-input", ["ct state new jump no-endpoints-local"], "type filter hook input priority -110"),
        _chain("filter-prerouting", ["ct state new jump no-endpoints"], "type filter hook prerouting priority -110"),
        _chain("filter-output", ["ct state new jump no-endpoints-local"], "type filter hook output priority -110"),
        _chain("no-endpoints", no_endpoints),
        _chain("no-endpoints-local", local_no_endpoints),
    ]  # fmt: skip


def _service_chains(sp: ServicePort, cluster_cidr: str) -> list[str]:
    rules = []
    if cluster_cidr:
        rules.append(
            f"ip daddr {sp.cluster_ip} {sp.protocol} dport {sp.port} "
            f"ip saddr != {cluster_cidr} jump mark-for-masquerade"
        )
    targets = ", ".join(
        f"{i} : goto {sp.endpoint_chain(endpoint)}" for i, endpoint in enumerate(sp.endpoints)
    )
    rules.append(f"numgen random mod {len(sp.endpoints)} vmap {{ {targets} }}")
    chains = [_chain(sp.chain, rules)]
    for endpoint in sp.endpoints:
        chains.append(
            _chain(
                sp.endpoint_chain(endpoint),
                [
                    f"ip saddr {endpoint.ip} jump mark-for-masquerade",  # hairpin
                    f"meta l4proto {sp.protocol} dnat to {endpoint.ip}:{endpoint.port}",
                ],
            )
        )
    return chains


def _external_chain(sp: ServicePort, node_name: str) -> str:
    """NodePort traffic: Cluster policy masquerades; Local keeps the source, local endpoints only."""
    if not sp.external_local:
        return _chain(sp.external_chain, ["jump mark-for-masquerade", f"goto {sp.chain}"])
    local = [e for e in sp.endpoints if e.node_name == node_name]
    if not local:
        return _chain(sp.external_chain, ["drop"])
    targets = ", ".join(f"{i} : goto {sp.endpoint_chain(e)}" for i, e in enumerate(local))
    return _chain(sp.external_chain, [f"numgen random mod {len(local)} vmap {{ {targets} }}"])
