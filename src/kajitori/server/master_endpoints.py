"""The ``default/kubernetes`` Endpoints and EndpointSlice: where pods reach this API server.

Also, for ``kajitori up``'s node network, the selector-less ``kube-system/kube-dns``
Service and its endpoints at the in-process cluster DNS (``reconcile_cluster_dns``).

Upstream's kube-apiserver maintains these itself (the master endpoint
reconciler, pkg/controlplane/reconcilers): the ``kubernetes`` Service has no
selector, so no controller fills them. At every start this module writes
them (creating, or updating when the address or port moved):

* Endpoints ``kubernetes``: one address, port ``https``, labelled
  ``endpointslice.kubernetes.io/skip-mirror: "true"``;
* EndpointSlice ``kubernetes``: IPv4, one ready endpoint, labelled
  ``kubernetes.io/service-name: kubernetes``.

The address is the one the server advertises. Like upstream's
``ResolveBindAddress``, a server bound to a loopback or unspecified address
advertises the host's default-route interface instead (Endpoints may not
hold loopback addresses); when the host has none, nothing is written.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.server.apis import APIRegistry

Object = dict[str, Any]

NAME = "kubernetes"
NAMESPACE = "default"
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))
# kube-system/kube-dns: kubeadm's ClusterIP (the 10th address of 10.96.0.0/12) and ports.
DNS_NAME = "kube-dns"
DNS_NAMESPACE = "kube-system"
CLUSTER_DNS_IP = "10.96.0.10"
DNS_PORTS: tuple[Object, ...] = (
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    {"name": "metrics", "port": 9153, "protocol": "TCP"},
)
# A documentation-range address: connecting a UDP socket sends nothing, it
# only asks the kernel which interface the default route leaves through.
_PROBE = ("192.0.2.1", 80)


def advertise_address(bind_address: str) -> str | None:
    """The IPv4 address to publish for ``bind_address``, or None when there is none."""
    address = ipaddress.ip_address(bind_address)
    if not (address.is_loopback or address.is_unspecified):
        return bind_address if _publishable(bind_address) else None
    chosen = _default_route_address()
    return chosen if chosen and _publishable(chosen) else None


def _default_route_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            return str(probe.getsockname()[0])
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return None


def _publishable(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return address.version == 4 and not (
        address.is_loopback or address.is_unspecified or address.is_link_local
    )


def endpoints(address: str, port: int) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [
            {
                "addresses": [{"ip": address}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ],
    }


def endpoint_slice(address: str, port: int) -> Object:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": NAME},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


async def reconcile(registry: APIRegistry, *, api_address: str, api_port: int) -> None:
    """Write both objects for this server (see the module docstring)."""
    address = advertise_address(api_address)
    if address is None:
        return
    await _write(registry, "", "endpoints", endpoints(address, api_port), ("subsets",))
    await _write(
        registry,
        "discovery.k8s.io",
        "endpointslices",
        endpoint_slice(address, api_port),
        ("endpoints", "ports"),
    )


async def _write(
    registry: APIRegistry, group: str, plural: str, wanted: Object, fields: tuple[str, ...]
) -> None:
    """Create ``wanted``, or update the stored one when any of ``fields`` differs."""
    store = registry.lookup(group, "v1", plural)
    if store is None:
        return
    ctx = RequestContext(user=_SYSTEM)
    namespace = wanted["metadata"].get("namespace", NAMESPACE)
    name = wanted["metadata"]["name"]
    try:
        current = await store.get(namespace, name)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        try:
            await store.create(namespace, wanted, ctx)
        except errors.StatusError as exc:
            if exc.code != 409:
                raise
        return
    if all(_normalized(current.get(f)) == _normalized(wanted.get(f)) for f in fields):
        return
    updated = {**current, **{f: wanted[f] for f in fields}}
    try:
        await store.update(namespace, name, updated, ctx)
    except errors.StatusError as exc:
        if exc.code != 409:
            raise
        # Another server of this cluster wrote it first; its address stands until our next start.


def dns_service() -> Object:
    """``kube-system/kube-dns`` as kubeadm's CoreDNS addon has it, without a selector."""
    ports = [{**p, "targetPort": p["port"]} for p in DNS_PORTS]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": DNS_NAME,
            "namespace": DNS_NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {"clusterIP": CLUSTER_DNS_IP, "ports": ports},
    }


def dns_endpoints(address: str) -> Object:
    body = endpoints(address, 53)
    body["metadata"].update(name=DNS_NAME, namespace=DNS_NAMESPACE)
    body["subsets"][0]["ports"] = _served_dns_ports()
    return body


def dns_endpoint_slice(address: str) -> Object:
    body = endpoint_slice(address, 53)
    body["metadata"].update(
        name=DNS_NAME, namespace=DNS_NAMESPACE, labels={"kubernetes.io/service-name": DNS_NAME}
    )
    body["ports"] = _served_dns_ports()
    return body


def _served_dns_ports() -> list[Object]:
    # The in-process DNS serves no metrics: 9153 stays without endpoints (rejected, not hung).
    return [dict(p) for p in DNS_PORTS if p["port"] == 53]


async def reconcile_cluster_dns(registry: APIRegistry, *, address: str) -> None:
    """The ``kube-dns`` Service, and its Endpoints and EndpointSlice at ``address`` (port 53).

    For ``kajitori up``'s in-process cluster DNS (decision 0031): like
    ``kubernetes``, the Service has no selector, so we write its endpoints.
    """
    await _write(registry, "", "services", dns_service(), ())
    await _write(registry, "", "endpoints", dns_endpoints(address), ("subsets",))
    await _write(
        registry,
        "discovery.k8s.io",
        "endpointslices",
        dns_endpoint_slice(address),
        ("endpoints", "ports"),
    )


def _normalized(value: Any) -> Any:
    # Defaulting may add fields (e.g. conditions); compare only what we set.
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in sorted(value.items()) if v not in (None, "")}
    return value
