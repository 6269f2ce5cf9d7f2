"""Service defaulting and validation against upstream's values and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import services

Object = dict[str, Any]


def _service(**spec: Any) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec},
    }


def _defaulted(service: Object) -> Object:
    defaults.set_defaults_service(service)
    return service


def test_service_defaults_match_upstream() -> None:
    """A minimal service gets ClusterIP, no affinity, TCP, targetPort=port, Cluster policy."""
    spec = _defaulted(_service())["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]


def test_node_port_and_load_balancer_defaults() -> None:
    """Externally reachable services get externalTrafficPolicy; LBs allocate node ports."""
    spec = _defaulted(_service(type="LoadBalancer"))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True


def test_client_ip_affinity_gets_the_default_timeout() -> None:
    """ClientIP affinity defaults its timeout to three hours."""
    spec = _defaulted(_service(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_a_defaulted_service_is_valid() -> None:
    """The common service manifest passes validation."""
    assert [str(e) for e in services.validate_service(_defaulted(_service()))] == []


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param(_service(ports=[]), "spec.ports: Required value", id="no-ports"),
        pytest.param(
            _service(ports=[{"port": 80}, {"port": 443}]),
            "spec.ports[0].name: Required value",
            id="names-required-for-several",
        ),
        pytest.param(
            _service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 443}]),
            'spec.ports[1].name: Duplicate value: "a"',
            id="duplicate-names",
        ),
        pytest.param(
            _service(ports=[{"port": 0}]),
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            id="port-zero",
        ),
        pytest.param(
            _service(type="Bogus"),
            'spec.type: Unsupported value: "Bogus": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            id="type",
        ),
        pytest.param(
            _service(ports=[{"port": 80, "nodePort": 30080}]),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            id="node-port-on-cluster-ip",
        ),
        pytest.param(
            _service(type="NodePort", ports=[{"port": 80, "nodePort": 80}]),
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
            id="node-port-range",
        ),
        pytest.param(
            _service(type="NodePort", clusterIP="None", clusterIPs=["None"]),
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services",
            id="headless-node-port",
        ),
        pytest.param(
            _service(type="ExternalName", ports=[]),
            "spec.externalName: Required value",
            id="external-name-missing",
        ),
        pytest.param(
            _service(clusterIP="10.0.0.300", clusterIPs=["10.0.0.300"]),
            'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
            id="bad-cluster-ip",
        ),
        pytest.param(
            _service(externalTrafficPolicy="Local"),
            'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services',
            id="etp-on-cluster-ip",
        ),
    ],
)
def test_typical_service_mistakes_get_upstreams_message(service: Object, expected: str) -> None:
    """Each common mistake is refused with upstream's field path and message."""
    service = _defaulted(copy.deepcopy(service))
    assert expected in [str(e) for e in services.validate_service(service)]


def test_headless_services_need_no_ports() -> None:
    """clusterIP None without ports is a valid headless service."""
    service = _defaulted(_service(ports=[], clusterIP="None", clusterIPs=["None"]))
    assert [str(e) for e in services.validate_service(service)] == []


@pytest.mark.parametrize(
    ("new_ips", "expected"),
    [
        pytest.param(
            [],
            "spec.clusterIPs[0]: Invalid value: []: primary clusterIP can not be unset",
            id="unset",
        ),
        pytest.param(
            ["10.96.0.11"],
            'spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set',
            id="change",
        ),
    ],
)
def test_the_primary_cluster_ip_is_immutable(new_ips: list[str], expected: str) -> None:
    """Once allocated, the cluster IP can be neither changed nor removed."""
    old = _defaulted(_service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"]))
    old["metadata"]["resourceVersion"] = "3"
    new = copy.deepcopy(old)
    new["spec"]["clusterIPs"] = new_ips
    new["spec"]["clusterIP"] = new_ips[0] if new_ips else ""
    assert expected in [str(e) for e in services.validate_service_update(new, old)]
