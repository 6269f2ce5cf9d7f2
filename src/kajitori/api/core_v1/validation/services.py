"""Validation of Services (upstream ValidateService / ValidateServiceUpdate).

Owns the rules users typically trip over: ports required (except headless
and ExternalName), port names required and unique once there are several,
headless vs. type, ExternalName's CNAME, session affinity, traffic policies,
node port range, and that an allocated cluster IP never changes.
Allocation itself (cluster IPs from the service CIDR, node ports) is not
validation and lives with the allocator.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1 import validation as common
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
NODE_PORT_RANGE = (30000, 32767)
_LB_ONLY = "may only be used when `type` is 'LoadBalancer'"


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def is_headless(spec: Object) -> bool:
    return spec.get("clusterIP") == "None" or (spec.get("clusterIPs") or [None])[0] == "None"


def _validate_port(
    port: Object, *, require_name: bool, seen: set[str], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(field.required(path.child("name")))
    elif name:
        errs.extend(common.dns1123_label(name, path.child("name")))
        if name in seen:
            errs.append(field.duplicate(path.child("name"), name))
        seen.add(name)
    errs.extend(common.port_num(port.get("port"), path.child("port")))
    errs.extend(common.protocol(port.get("protocol"), path.child("protocol")))
    errs.extend(common.port_num_or_name(port.get("targetPort"), path.child("targetPort")))
    if port.get("appProtocol") is not None:
        errs.extend(common.qualified_name(port["appProtocol"], path.child("appProtocol")))
    return errs


def _validate_ports(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    ports = _items(spec.get("ports"))
    seen_names: set[str] = set()
    node_ports: set[tuple[Any, Any]] = set()
    port_keys: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port_path = path.index(i)
        errs.extend(
            _validate_port(port, require_name=len(ports) > 1, seen=seen_names, path=port_path)
        )
        node_port = port.get("nodePort") or 0
        if node_port and spec.get("type") == "ClusterIP":
            errs.append(
                field.forbidden(
                    port_path.child("nodePort"), "may not be used when `type` is 'ClusterIP'"
                )
            )
        if node_port:
            if (port.get("protocol"), node_port) in node_ports:
                errs.append(field.duplicate(port_path.child("nodePort"), node_port))
            node_ports.add((port.get("protocol"), node_port))
            errs.extend(validate_node_port_range(node_port, port_path.child("nodePort")))
        key = (port.get("protocol"), port.get("port"))
        if key in port_keys:
            errs.append(field.duplicate(port_path, {"port": key[1], "protocol": key[0]}))
        port_keys.add(key)
    return errs


def validate_node_port_range(
    node_port: Any, path: field.Path, *, port_range: tuple[int, int] = NODE_PORT_RANGE
) -> field.ErrorList:
    """What the node port allocator answers for a port outside the service node port range."""
    lo, hi = port_range
    if isinstance(node_port, int) and not lo <= node_port <= hi:
        detail = f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
        return field.ErrorList([field.invalid(path, node_port, detail)])
    return field.ErrorList()


def _validate_type_rules(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    service_type = spec.get("type")
    cluster_ips = spec.get("clusterIPs") or []
    if service_type in ("LoadBalancer", "NodePort") and is_headless(spec):
        value = cluster_ips[0] if cluster_ips else "None"
        detail = f"may not be set to 'None' for {service_type} services"
        errs.append(field.invalid(path.child("clusterIPs").index(0), value, detail))
    if service_type == "ExternalName":
        for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key):
                errs.append(
                    field.forbidden(path.child(key), "may not be set for ExternalName services")
                )
        cname = (spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs.extend(common.dns1123_subdomain(cname, path.child("externalName")))
        else:
            errs.append(field.required(path.child("externalName")))
    return errs


def _validate_session_affinity(spec: Object, path: field.Path) -> field.ErrorList:
    affinity = spec.get("sessionAffinity")
    errs = common.enum(affinity, path.child("sessionAffinity"), SESSION_AFFINITIES)
    config = spec.get("sessionAffinityConfig")
    config_path = path.child("sessionAffinityConfig")
    if affinity == "ClientIP":
        client_ip = _dict(_dict(config).get("clientIP"))
        if config is None or not client_ip:
            errs.append(field.required(config_path, "when session affinity type is ClientIP"))
        else:
            timeout = client_ip.get("timeoutSeconds")
            if not isinstance(timeout, int) or not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
                detail = f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"
                errs.append(
                    field.invalid(config_path.child("clientIP", "timeoutSeconds"), timeout, detail)
                )
    elif affinity == "None" and config is not None:
        errs.append(field.forbidden(config_path, "must not be set when session affinity is None"))
    return errs


def _validate_cluster_ips(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    cluster_ips = spec.get("clusterIPs") or []
    ips_path = path.child("clusterIPs")
    if cluster_ips and spec.get("clusterIP") != cluster_ips[0]:
        detail = "first value must match `clusterIP`"
        errs.append(field.invalid(ips_path.index(0), cluster_ips[0], detail))
    for i, ip in enumerate(cluster_ips):
        if ip == "None" and i == 0:
            if len(cluster_ips) > 1:
                errs.append(
                    field.invalid(ips_path, cluster_ips, "'None' must be the first and only value")
                )
            continue
        errs.extend(common.ip_address(ip, ips_path.index(i)))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errs.append(field.not_supported(path.child("ipFamilyPolicy"), policy, IP_FAMILY_POLICIES))
    families = spec.get("ipFamilies") or []
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            errs.append(field.not_supported(path.child("ipFamilies").index(i), family, IP_FAMILIES))
        elif family in families[:i]:
            errs.append(field.duplicate(path.child("ipFamilies").index(i), family))
    if policy == "SingleStack" and len(families) > 1:
        errs.append(
            field.invalid(
                path.child("ipFamilies"),
                families,
                "when multiple IP families are specified, `ipFamilyPolicy` may not be `SingleStack`",
            )
        )
    return errs


def _validate_traffic_policies(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    external = spec.get("externalTrafficPolicy")
    if not defaults.externally_accessible(spec):
        if external:
            errs.append(
                field.invalid(
                    path.child("externalTrafficPolicy"),
                    external,
                    "may only be set for externally-accessible services",
                )
            )
    else:
        errs.extend(common.enum(external, path.child("externalTrafficPolicy"), TRAFFIC_POLICIES))
    internal = spec.get("internalTrafficPolicy")
    if internal is None:
        if spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer"):
            errs.append(field.required(path.child("internalTrafficPolicy")))
    elif internal not in TRAFFIC_POLICIES:
        errs.append(
            field.not_supported(path.child("internalTrafficPolicy"), internal, TRAFFIC_POLICIES)
        )
    return errs


def _validate_load_balancer_fields(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    is_lb = spec.get("type") == "LoadBalancer"
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges and not is_lb:
        errs.append(field.forbidden(path.child("LoadBalancerSourceRanges"), _LB_ONLY))
    if spec.get("allocateLoadBalancerNodePorts") is not None and not is_lb:
        errs.append(field.forbidden(path.child("allocateLoadBalancerNodePorts"), _LB_ONLY))
    if is_lb and spec.get("allocateLoadBalancerNodePorts") is None:
        # Upstream reports this one without the "spec." prefix.
        errs.append(field.required(field.Path("allocateLoadBalancerNodePorts")))
    return errs


def validate_service(service: Object) -> field.ErrorList:
    """ValidateService."""
    errs = objectmeta.validate_object_meta(
        _dict(service.get("metadata")),
        namespaced=True,
        name_validator=names.name_is_dns1035_label,
        path=field.Path("metadata"),
    )
    path = field.Path("spec")
    spec = _dict(service.get("spec"))
    if not spec.get("ports") and not is_headless(spec) and spec.get("type") != "ExternalName":
        errs.append(field.required(path.child("ports")))
    errs.extend(_validate_type_rules(spec, path))
    errs.extend(_validate_ports(spec, path.child("ports")))
    if spec.get("selector") is not None:
        errs.extend(objectmeta.validate_labels(_dict(spec["selector"]), path.child("selector")))
    errs.extend(_validate_session_affinity(spec, path))
    errs.extend(_validate_cluster_ips(spec, path))
    for i, ip in enumerate(spec.get("externalIPs") or ()):
        errs.extend(common.ip_address(ip, path.child("externalIPs").index(i)))
    errs.extend(common.enum(spec.get("type"), path.child("type"), SERVICE_TYPES))
    errs.extend(_validate_load_balancer_fields(spec, path))
    errs.extend(_validate_traffic_policies(spec, path))
    return errs


def validate_service_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateServiceUpdate: a set primary cluster IP may not change or be unset."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    new_spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    if "ExternalName" not in (new_spec.get("type"), old_spec.get("type")):
        old_ips, new_ips = old_spec.get("clusterIPs") or [], new_spec.get("clusterIPs") or []
        path = field.Path("spec", "clusterIPs").index(0)
        if old_ips and not new_ips:
            errs.append(field.invalid(path, new_ips, "primary clusterIP can not be unset"))
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.append(field.invalid(path, new_ips, "may not change once set"))
    errs.extend(validate_service(new))
    return errs


def validate_service_status_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateServiceStatusUpdate: load balancer ingress IPs must be IPs."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )
    ingress_path = field.Path("status", "loadBalancer", "ingress")
    ingresses = _items(_dict(_dict(new.get("status")).get("loadBalancer")).get("ingress"))
    for i, ingress in enumerate(ingresses):
        if ingress.get("ip"):
            errs.extend(common.ip_address(ingress["ip"], ingress_path.index(i).child("ip")))
    return errs
