"""Defaulting for core/v1 objects: upstream's ``SetDefaults_*`` applied to wire dicts.

Owns every core/v1 default, for all core kinds (pods, services, secrets,
persistent volumes, ...), so there is exactly one place where "what does the
server fill in" is answered. Mirrors pkg/apis/core/v1/defaults.go plus the
declarative ``+default`` tags that upstream's generated ``zz_generated.defaults.go``
applies while walking nested structs (container ports TCP, RC replicas 1, ...).

Every function mutates its argument in place and is idempotent, so defaulting
an already defaulted object (an update, a patch result) changes nothing.

Two entry points matter to other API groups: ``set_defaults_pod_spec`` and
``set_defaults_pod_template_spec`` (Deployments, Jobs, ... embed pod templates).
Pod-only defaults (requests from limits, enableServiceLinks, host-network
ports) are in ``set_defaults_pod`` because upstream applies them to Pods and not
to templates: a Deployment's template comes back without ``enableServiceLinks``.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.machinery import quantity

Object = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINATION_MESSAGE_PATH_DEFAULT = "/dev/termination-log"
DEFAULT_VOLUME_MODE = 0o644  # 420: Secret/ConfigMap/DownwardAPI/Projected defaultMode
DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS = 10800
DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600
LABEL_METADATA_NAME = "kubernetes.io/metadata.name"
_MILLI_SCALE = -3

# Volume sources upstream defaults field-by-field (generated from +default tags
# and SetDefaults_* of the source types).
_VOLUME_SOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "secret": {"defaultMode": DEFAULT_VOLUME_MODE},
    "configMap": {"defaultMode": DEFAULT_VOLUME_MODE},
    "downwardAPI": {"defaultMode": DEFAULT_VOLUME_MODE},
    "projected": {"defaultMode": DEFAULT_VOLUME_MODE},
    "hostPath": {"type": ""},
    "iscsi": {"iscsiInterface": "default"},
    "rbd": {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"},
    "azureDisk": {
        "cachingMode": "ReadWrite",
        "fsType": "ext4",
        "readOnly": False,
        "kind": "Shared",
    },
    "scaleIO": {"storageMode": "ThinProvisioned", "fsType": "xfs"},
}

# Persistent volume sources share the shape of their pod-volume counterparts.
_PV_SOURCE_DEFAULTS = {
    key: _VOLUME_SOURCE_DEFAULTS[key]
    for key in ("hostPath", "iscsi", "rbd", "azureDisk", "scaleIO")
}


def _fill(obj: Object, defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if obj.get(key) is None:
            obj[key] = copy.deepcopy(value)


def _dict_items(value: Any) -> list[Object]:
    """The dict entries of a list field, skipping malformed ones validation will report."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _dict_at(obj: Object, key: str) -> Object | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


# --- images -------------------------------------------------------------------------


def image_tag(image: str) -> str:
    """The tag of an image reference as upstream's ``parsers.ParseImageName`` sees it.

    "latest" when neither tag nor digest is given; "" for a digest-only or an
    unparseable reference (upstream ignores the parse error and so defaults
    the pull policy to IfNotPresent).
    """
    if not image or image != image.strip():
        return ""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    # Repository path components must be lowercase; the registry host may not be.
    path = name.split("/", 1)[1] if "/" in name and _looks_like_host(name.split("/")[0]) else name
    if path != path.lower() or not path:
        return ""
    if not tag and not digest:
        return "latest"
    return tag


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def default_pull_policy(image: str) -> str:
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


# --- pods ---------------------------------------------------------------------------


def set_defaults_resource_list(resources: Any) -> None:
    """Round every quantity up to milli precision (``100u`` -> ``1m``), as upstream.

    Upstream's SetDefaults_ResourceList keeps finer values API-compatible by
    rounding instead of rejecting them. Canonical text is ``api.normalize``'s
    job, done at decode; values that do not parse are left for validation.
    """
    if not isinstance(resources, dict):
        return
    for name, value in resources.items():
        try:
            parsed = quantity.from_json(value)
        except quantity.QuantityError:
            continue
        rounded, exact = parsed.round_up(_MILLI_SCALE)
        if not exact:
            resources[name] = rounded.canonical()


def _set_defaults_resources(requirements: Any) -> None:
    if not isinstance(requirements, dict):
        return
    for key in ("limits", "requests"):
        set_defaults_resource_list(requirements.get(key))


def set_defaults_probe(probe: Object) -> None:
    _fill(probe, {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1})
    _fill(probe, {"failureThreshold": 3})
    _set_defaults_handler(probe)


def _set_defaults_handler(handler: Object) -> None:
    """Defaults of a probe or lifecycle handler's action (httpGet path/scheme, grpc service)."""
    http_get = _dict_at(handler, "httpGet")
    if http_get is not None:
        if not http_get.get("path"):
            http_get["path"] = "/"
        if not http_get.get("scheme"):
            http_get["scheme"] = "HTTP"
    grpc = _dict_at(handler, "grpc")
    if grpc is not None and grpc.get("service") is None:
        grpc["service"] = ""


def _set_defaults_env(env: Any) -> None:
    for var in _dict_items(env):
        value_from = _dict_at(var, "valueFrom")
        field_ref = _dict_at(value_from, "fieldRef") if value_from else None
        if field_ref is not None and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"


def set_defaults_container(container: Object) -> None:
    """SetDefaults_Container plus the generated walk into ports, env, probes, lifecycle."""
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(str(container.get("image") or ""))
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = TERMINATION_MESSAGE_PATH_DEFAULT
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in _dict_items(container.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    _set_defaults_env(container.get("env"))
    _set_defaults_resources(container.get("resources"))
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _dict_at(container, probe_key)
        if probe is not None:
            set_defaults_probe(probe)
    lifecycle = _dict_at(container, "lifecycle")
    if lifecycle is not None:
        for hook_key in ("postStart", "preStop"):
            hook = _dict_at(lifecycle, hook_key)
            if hook is not None:
                _set_defaults_handler(hook)


def _set_defaults_downward_items(items: Any) -> None:
    for item in _dict_items(items):
        field_ref = _dict_at(item, "fieldRef")
        if field_ref is not None and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"


def _set_defaults_projected(projected: Object) -> None:
    for source in _dict_items(projected.get("sources")):
        token = _dict_at(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = DEFAULT_TOKEN_EXPIRATION_SECONDS
        downward = _dict_at(source, "downwardAPI")
        if downward is not None:
            _set_defaults_downward_items(downward.get("items"))


def set_defaults_volume(volume: Object) -> None:
    """A volume without any source becomes an emptyDir; each source gets its defaults."""
    if not any(value is not None for key, value in volume.items() if key != "name"):
        volume["emptyDir"] = {}
    for key, defaults in _VOLUME_SOURCE_DEFAULTS.items():
        source = _dict_at(volume, key)
        if source is not None:
            _fill(source, defaults)
    if (downward := _dict_at(volume, "downwardAPI")) is not None:
        _set_defaults_downward_items(downward.get("items"))
    if (projected := _dict_at(volume, "projected")) is not None:
        _set_defaults_projected(projected)
    if (image := _dict_at(volume, "image")) is not None and not image.get("pullPolicy"):
        image["pullPolicy"] = default_pull_policy(str(image.get("reference") or ""))
    ephemeral = _dict_at(volume, "ephemeral")
    template = _dict_at(ephemeral, "volumeClaimTemplate") if ephemeral else None
    claim_spec = _dict_at(template, "spec") if template else None
    if claim_spec is not None:
        set_defaults_persistent_volume_claim_spec(claim_spec)


def set_defaults_pod_spec(spec: Object) -> None:
    """SetDefaults_PodSpec and everything nested in a PodSpec (templates included)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    if not spec.get("schedulerName"):
        spec["schedulerName"] = DEFAULT_SCHEDULER_NAME
    for volume in _dict_items(spec.get("volumes")):
        set_defaults_volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dict_items(spec.get(key)):
            set_defaults_container(container)
    set_defaults_resource_list(spec.get("overhead"))
    _set_defaults_resources(spec.get("resources"))


def set_defaults_pod_template_spec(template: Object) -> None:
    """Defaults of a PodTemplateSpec (``spec.template`` of workloads)."""
    spec = template.get("spec")
    if spec is None:
        spec = template["spec"] = {}
    if isinstance(spec, dict):
        set_defaults_pod_spec(spec)


def _requests_from_limits(container: Object) -> None:
    resources = _dict_at(container, "resources")
    limits = _dict_at(resources, "limits") if resources else None
    if resources is None or limits is None:
        return
    requests = resources.get("requests")
    if not isinstance(requests, dict):
        requests = resources["requests"] = {}
    for name, value in limits.items():
        requests.setdefault(name, value)


def _host_network_ports(containers: Any) -> None:
    for container in _dict_items(containers):
        for port in _dict_items(container.get("ports")):
            if not port.get("hostPort"):
                port["hostPort"] = port.get("containerPort")


def set_defaults_pod(pod: Object) -> None:
    """SetDefaults_Pod: the PodSpec defaults plus those only a Pod gets."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("containers", "initContainers"):
        for container in _dict_items(spec.get(key)):
            _requests_from_limits(container)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        _host_network_ports(spec.get("containers"))
        _host_network_ports(spec.get("initContainers"))
    set_defaults_pod_spec(spec)


def set_defaults_pod_template(obj: Object) -> None:
    """The ``PodTemplate`` kind."""
    template = obj.get("template")
    if isinstance(template, dict):
        set_defaults_pod_template_spec(template)


# --- workloads and networking -------------------------------------------------------


def set_defaults_replication_controller(rc: Object) -> None:
    """Selector and labels from the template's labels; replicas 1 (declarative default)."""
    spec = rc.get("spec")
    if not isinstance(spec, dict):
        spec = rc["spec"] = {}
    template = _dict_at(spec, "template")
    labels = _dict_at(template.get("metadata") or {}, "labels") if template else None
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = rc.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if template is not None:
        set_defaults_pod_template_spec(template)


def externally_accessible(spec: Object) -> bool:
    """Upstream's service.ExternallyAccessible: LB, NodePort, or ClusterIP with externalIPs."""
    service_type = spec.get("type")
    return service_type in ("LoadBalancer", "NodePort") or (
        service_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def _set_defaults_session_affinity(spec: Object) -> None:
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig") or {}
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS}
            }


def set_defaults_service(service: Object) -> None:
    """SetDefaults_Service. Cluster IPs, IP families and node ports are the allocator's."""
    spec = service.get("spec")
    if not isinstance(spec, dict):
        spec = service["spec"] = {}
    _set_defaults_session_affinity(spec)
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dict_items(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        # An unset, 0 or "" targetPort means "the same as port".
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        status = _dict_at(service, "status") or {}
        for ingress in _dict_items((status.get("loadBalancer") or {}).get("ingress")):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


def set_defaults_service_ip_families(
    service: Object, *, cluster_families: tuple[str, ...] = ("IPv4",)
) -> None:
    """What upstream's allocator (initIPFamilyFields) fills in, for a single-stack cluster.

    Not part of decode-time defaulting upstream: the service REST storage
    runs it on create/update before validation. Exposed here so the IP
    allocator and the strategy share one definition. ExternalName services
    get no families; headless selector-less services get RequireDualStack on
    dual-stack clusters, SingleStack here.
    """
    spec = service.get("spec")
    if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
        return
    if not spec.get("ipFamilyPolicy"):
        spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        families = list(cluster_families[:1])
        cluster_ip = spec.get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            families = ["IPv6" if ":" in cluster_ip else "IPv4"]
        spec["ipFamilies"] = families


def set_defaults_endpoints(endpoints: Object) -> None:
    for subset in _dict_items(endpoints.get("subsets")):
        for port in _dict_items(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


# --- nodes and namespaces -----------------------------------------------------------


def set_defaults_node(node: Object) -> None:
    """SetDefaults_NodeStatus: allocatable defaults to capacity."""
    status = _dict_at(node, "status")
    if status is None:
        return
    capacity = _dict_at(status, "capacity")
    if status.get("allocatable") is None and capacity is not None:
        status["allocatable"] = dict(capacity)
    set_defaults_resource_list(status.get("capacity"))
    set_defaults_resource_list(status.get("allocatable"))


def set_defaults_namespace(namespace: Object) -> None:
    """The ``kubernetes.io/metadata.name`` label, and phase Active."""
    meta = namespace.setdefault("metadata", {})
    name = meta.get("name")
    if name:
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels[LABEL_METADATA_NAME] = name
    status = namespace.get("status")
    if not isinstance(status, dict):
        status = namespace["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Active"


# --- configuration and storage ------------------------------------------------------


def set_defaults_secret(secret: Object) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"


def set_defaults_config_map(config_map: Object) -> None:
    """Nothing visible: upstream's empty ``data`` map is omitted when encoded."""


def set_defaults_service_account(service_account: Object) -> None:
    """ServiceAccounts have no defaults."""


def set_defaults_persistent_volume_claim_spec(spec: Object) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    _set_defaults_resources(spec.get("resources"))


def set_defaults_persistent_volume(pv: Object) -> None:
    spec = pv.get("spec")
    if not isinstance(spec, dict):
        spec = pv["spec"] = {}
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    for key, defaults in _PV_SOURCE_DEFAULTS.items():
        source = _dict_at(spec, key)
        if source is not None:
            _fill(source, defaults)
    set_defaults_resource_list(spec.get("capacity"))
    status = pv.get("status")
    if not isinstance(status, dict):
        status = pv["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"


def set_defaults_persistent_volume_claim(pvc: Object) -> None:
    spec = pvc.get("spec")
    if not isinstance(spec, dict):
        spec = pvc["spec"] = {}
    set_defaults_persistent_volume_claim_spec(spec)
    status = pvc.get("status")
    if not isinstance(status, dict):
        status = pvc["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"


def set_defaults_limit_range(limit_range: Object) -> None:
    """Container items: default from max, defaultRequest from default, then from min."""
    spec = limit_range.get("spec")
    if not isinstance(spec, dict):
        return
    for item in _dict_items(spec.get("limits")):
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            set_defaults_resource_list(item.get(key))
        if item.get("type") != "Container":
            continue
        default = item.get("default")
        if not isinstance(default, dict):
            default = item["default"] = {}
        default_request = item.get("defaultRequest")
        if not isinstance(default_request, dict):
            default_request = item["defaultRequest"] = {}
        for name, value in (item.get("max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            default_request.setdefault(name, value)
        for name, value in (item.get("min") or {}).items():
            default_request.setdefault(name, value)


def set_defaults_resource_quota(quota: Object) -> None:
    spec = quota.get("spec")
    if isinstance(spec, dict):
        set_defaults_resource_list(spec.get("hard"))
    status = quota.get("status")
    if isinstance(status, dict):
        set_defaults_resource_list(status.get("hard"))
        set_defaults_resource_list(status.get("used"))


def set_defaults_event(event: Object) -> None:
    """core/v1 Events have no defaults."""
