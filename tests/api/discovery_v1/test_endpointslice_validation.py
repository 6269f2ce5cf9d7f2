"""Defaulting and validation of discovery.k8s.io/v1 EndpointSlices."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.discovery_v1 import defaults
from kajitori.api.discovery_v1.validation import endpointslices

Object = dict[str, Any]


def _slice(**fields: Any) -> Object:
    obj: Object = {
        "metadata": {
            "name": "web-abc12",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 80}],
        **fields,
    }
    defaults.set_defaults_endpoint_slice(obj)
    return obj


def _messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def test_ports_default_to_tcp_and_an_empty_name() -> None:
    """SetDefaults_EndpointPort fills protocol TCP and name "" and is idempotent."""
    obj = _slice(ports=[{"port": 53}])
    assert obj["ports"] == [{"port": 53, "name": "", "protocol": "TCP"}]
    again = copy.deepcopy(obj)
    defaults.set_defaults_endpoint_slice(again)
    assert again == obj


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="ipv4"),
        pytest.param(
            {"addressType": "IPv6", "endpoints": [{"addresses": ["2001:db8::5"]}]}, id="ipv6"
        ),
        pytest.param(
            {"addressType": "FQDN", "endpoints": [{"addresses": ["db.example.com"]}]}, id="fqdn"
        ),
        pytest.param({"endpoints": []}, id="no-endpoints"),
    ],
)
def test_well_formed_slices_are_valid(fields: Object) -> None:
    """Slices of each address type pass validation."""
    assert _messages(endpointslices.validate_endpoint_slice(_slice(**fields))) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"addressType": ""}, "addressType: Required value", id="no-address-type"),
        pytest.param(
            {"addressType": "IP"},
            'addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"',
            id="deprecated-type-on-create",
        ),
        pytest.param(
            {"endpoints": [{"addresses": []}]},
            "endpoints[0].addresses: Required value: must contain at least 1 address",
            id="no-addresses",
        ),
        pytest.param(
            {"endpoints": [{"addresses": [f"10.0.0.{i}" for i in range(101)]}]},
            "endpoints[0].addresses: Too many: 101: must have at most 100 items",
            id="too-many-addresses",
        ),
        pytest.param(
            {"endpoints": [{"addresses": ["2001:db8::1"]}]},
            'endpoints[0].addresses[0]: Invalid value: "2001:db8::1": must be a valid IPv4 address',
            id="ipv6-in-ipv4-slice",
        ),
        pytest.param(
            {"endpoints": [{"addresses": ["127.0.0.1"]}]},
            'endpoints[0].addresses[0]: Invalid value: "127.0.0.1": '
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
            id="loopback",
        ),
        pytest.param(
            {"addressType": "FQDN", "endpoints": [{"addresses": ["localhost"]}]},
            'endpoints[0].addresses[0]: Invalid value: "localhost": '
            "should be a domain with at least two segments separated by dots",
            id="single-label-fqdn",
        ),
        pytest.param(
            {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]},
            'ports[1].name: Duplicate value: "http"',
            id="duplicate-port-name",
        ),
        pytest.param(
            {"ports": [{"name": "dns", "port": 53, "protocol": "ICMP"}]},
            'ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
            id="bad-protocol",
        ),
    ],
)
def test_slice_mistakes_get_upstreams_messages(fields: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert _messages(endpointslices.validate_endpoint_slice(_slice(**fields))) == [message]


def test_address_type_is_immutable() -> None:
    """Changing addressType on update is refused as immutable."""
    old = _slice()
    old["metadata"]["resourceVersion"] = "3"
    new = _slice(addressType="IPv6", endpoints=[])
    new["metadata"]["resourceVersion"] = "3"
    assert _messages(endpointslices.validate_endpoint_slice_update(new, old)) == [
        'addressType: Invalid value: "IPv6": field is immutable'
    ]
