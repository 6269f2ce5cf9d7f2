"""Services in the API server: strategy, services/status, field selectors, table.

Owns: status reset on create; ``clusterIP``/``clusterIPs`` kept in step;
allocated values (cluster IPs, node ports, health check port) carried over
when an update omits them (upstream patchAllocatedValues), so re-applying a
manifest without ``clusterIP`` works; IP family fields filled for a
single-stack IPv4 cluster.

Not owned here: ALLOCATING cluster IPs (10.96.0.0/12) and node ports. That is
the service IP allocator's job (upstream's REST BeginCreate/BeginUpdate hooks),
which must run after ``prepare_for_create`` and before validation;
``ServiceStrategy`` never assigns an address. Mirrors
pkg/registry/core/service/strategy.go and printService.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import services as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.core import service_allocator
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


def normalize_cluster_ips(spec: Object, old_spec: Object | None = None) -> None:
    """Upstream NormalizeClusterIPs: make clusterIP and clusterIPs[0] agree."""
    cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if old_spec is not None and cluster_ip != old_spec.get("clusterIP"):
        # The user changed the singular field: it wins.
        spec["clusterIPs"] = [cluster_ip] if cluster_ip else []
        if not cluster_ip:
            spec.pop("clusterIPs")
        return
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif cluster_ips and not cluster_ip:
        spec["clusterIP"] = cluster_ips[0]


def _node_ports_by_key(spec: Object) -> dict[tuple[Any, Any], int]:
    return {
        (p.get("protocol"), p.get("port")): p["nodePort"]
        for p in spec.get("ports") or ()
        if isinstance(p, dict) and p.get("nodePort")
    }


def patch_allocated_values(spec: Object, old_spec: Object) -> None:
    """Carry allocated IPs and ports over an update that omits them (patchAllocatedValues)."""
    needs_cluster_ip = spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName"
    if needs_cluster_ip and not spec.get("clusterIP") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
        if old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if spec.get("type") in ("NodePort", "LoadBalancer") and old_spec.get("type") in (
        "NodePort",
        "LoadBalancer",
    ):
        old_ports = _node_ports_by_key(old_spec)
        for port in spec.get("ports") or ():
            key = (port.get("protocol"), port.get("port"))
            if isinstance(port, dict) and not port.get("nodePort") and key in old_ports:
                port["nodePort"] = old_ports[key]
    if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
        if spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def drop_type_dependent_fields(spec: Object, old_spec: Object) -> None:
    """Upstream dropTypeDependentFields: clear what the old type needed and the new one forbids."""
    if spec.get("type") == old_spec.get("type"):
        return
    if spec.get("type") == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    if spec.get("type") not in ("NodePort", "LoadBalancer"):
        for port in spec.get("ports") or ():
            if isinstance(port, dict):
                port.pop("nodePort", None)
    if spec.get("type") != "LoadBalancer":
        for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass", "healthCheckNodePort"):
            if spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    if not defaults.externally_accessible(spec) and spec.get(
        "externalTrafficPolicy"
    ) == old_spec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)


class ServiceStrategy(strategies.Strategy):
    """Create/update rules of ``services``; never allocates addresses (see module docstring)."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_service(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"loadBalancer": {}}
        spec = obj.setdefault("spec", {})
        normalize_cluster_ips(spec)
        defaults.set_defaults_service_ip_families(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        obj["status"] = old.get("status", {"loadBalancer": {}})
        spec, old_spec = obj.setdefault("spec", {}), old.get("spec") or {}
        normalize_cluster_ips(spec, old_spec)
        patch_allocated_values(spec, old_spec)
        drop_type_dependent_fields(spec, old_spec)
        defaults.set_defaults_service_ip_families(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_service(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_service_update(obj, old)

    def allow_create_on_update(self) -> bool:
        return True


class ServiceStatusStrategy(strategies.StatusStrategy):
    """``services/status``: only the load balancer status may change."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_service_status_update(obj, old)


# --- table --------------------------------------------------------------------------


def _selector_doc() -> str:
    node = definitions.definitions().get("io.k8s.api.core.v1.ServiceSpec", {})
    description: str = node.get("properties", {}).get("selector", {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Type", description="The type of the service."),
    tables.Column("Cluster-IP", description="The IP address of the service."),
    tables.Column("External-IP", description="The external IP address of the service."),
    tables.Column("Port(s)", description="The ports of the service."),
    tables.AGE_COLUMN,
    tables.Column("Selector", priority=1, description=_selector_doc()),
)


def format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: sorted "k=v,..." or "<none>"."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _load_balancer_ips(service: Object) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    return [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]


def external_ip(service: Object) -> str:
    """getServiceExternalIP (server side, so never truncated)."""
    spec = service.get("spec") or {}
    external_ips = list(spec.get("externalIPs") or ())
    service_type = spec.get("type")
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) or "<none>"
    if service_type == "LoadBalancer":
        return ",".join(_load_balancer_ips(service) + external_ips) or "<pending>"
    if service_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def port_string(ports: Any) -> str:
    pieces = []
    for port in ports or ():
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{port.get('protocol')}")
        else:
            pieces.append(f"{port.get('port')}/{port.get('protocol')}")
    return ",".join(pieces) or "<none>"


def service_row(service: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    spec = service.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ()
    return [
        tables.name(service),
        spec.get("type") or "",
        cluster_ips[0] if cluster_ips else "<none>",
        external_ip(service),
        port_string(spec.get("ports")),
        tables.age(service, now),
        format_labels(spec.get("selector")),
    ]


STRATEGY = ServiceStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Service",
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    plural="services",
    namespaced=True,
    short_names=("svc",),
    categories=("all",),
    strategy=STRATEGY,
    status=ServiceStatusStrategy(STRATEGY),
    selectable_fields={
        "spec.clusterIP": resource.nested_str("spec", "clusterIP"),
        "spec.type": resource.nested_str("spec", "type"),
    },
    table=tables.Table(columns=COLUMNS, row=service_row),
    allocator=service_allocator.ServiceAllocator(),
)
