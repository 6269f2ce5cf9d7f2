"""Validation of networking.k8s.io/v1 Ingresses."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.networking_v1.validation import ingresses

Object = dict[str, Any]

_BACKEND = {"service": {"name": "web", "port": {"number": 80}}}


def _ingress(rules: list[Object] | None = None, **spec: Any) -> Object:
    default_rules = [
        {
            "host": "web.example.com",
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": _BACKEND}]},
        }
    ]
    return {
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "9"},
        "spec": {"rules": default_rules if rules is None else rules, **spec},
    }


def _path(**fields: Any) -> list[Object]:
    return [
        {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": _BACKEND, **fields}]}}
    ]


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(_ingress(), id="host-rule"),
        pytest.param(_ingress(rules=[], defaultBackend=_BACKEND), id="default-backend-only"),
        pytest.param(_ingress(rules=[{"host": "*.example.com"}]), id="wildcard-host"),
        pytest.param(
            _ingress(tls=[{"hosts": ["web.example.com"], "secretName": "web-tls"}]), id="tls"
        ),
        pytest.param(_ingress(rules=_path(pathType="ImplementationSpecific", path="")), id="impl"),
    ],
)
def test_typical_ingresses_are_valid(obj: Object) -> None:
    """Common shapes pass validation."""
    assert [str(e) for e in ingresses.validate_ingress(obj)] == []


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(
            _ingress(rules=[]),
            "spec: Invalid value: []: either `defaultBackend` or `rules` must be specified",
            id="nothing-to-route",
        ),
        pytest.param(
            _ingress(rules=_path(pathType=None)),
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            id="no-path-type",
        ),
        pytest.param(
            _ingress(rules=_path(pathType="Regex")),
            'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": '
            'supported values: "Exact", "ImplementationSpecific", "Prefix"',
            id="bad-path-type",
        ),
        pytest.param(
            _ingress(rules=_path(path="/a/../b")),
            "spec.rules[0].http.paths[0].path: Invalid value: \"/a/../b\": must not contain '/../'",
            id="dot-dot",
        ),
        pytest.param(
            _ingress(rules=_path(backend={"service": {"name": "web", "port": {}}})),
            "spec.rules[0].http.paths[0].backend: Required value: port name or number is required",
            id="no-port",
        ),
        pytest.param(
            _ingress(rules=_path(backend={"service": {"name": "web", "port": {"number": 70000}}})),
            "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: "
            "must be between 1 and 65535, inclusive",
            id="bad-port",
        ),
        pytest.param(
            _ingress(rules=_path(backend={})),
            'spec.rules[0].http.paths[0].backend: Invalid value: "": '
            "resource or service backend is required",
            id="empty-backend",
        ),
        pytest.param(
            _ingress(rules=[{"host": "10.0.0.1"}]),
            'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
            id="ip-host",
        ),
    ],
)
def test_ingress_mistakes_get_upstreams_messages(obj: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert [str(e) for e in ingresses.validate_ingress(obj)] == [message]


def test_class_annotation_must_agree_with_class_name() -> None:
    """The legacy class annotation may not contradict spec.ingressClassName."""
    obj = _ingress(ingressClassName="nginx")
    obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "traefik"}
    assert [str(e) for e in ingresses.validate_ingress(obj)] == [
        'annotations.kubernetes.io/ingress.class: Invalid value: "traefik": '
        "must match `ingressClassName` when both are specified"
    ]


def test_status_hostname_may_not_be_an_ip() -> None:
    """The status endpoint checks load-balancer entries."""
    new = _ingress()
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "192.0.2.2"}]}}
    assert [str(e) for e in ingresses.validate_ingress_status_update(new, _ingress())] == [
        'status.loadBalancer.ingress[1].hostname: Invalid value: "192.0.2.2": '
        "must be a DNS name, not an IP address"
    ]
