"""Registry declarations, strategies and tables of networking.k8s.io/v1 resources."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.registry.networking import ingressclasses, ingresses, networkpolicies

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
CREATED = "2025-01-01T11:00:00Z"


def test_networking_resources_are_declared_as_upstream() -> None:
    """ing (status, generation), cluster-scoped ingressclasses, netpol (generation)."""
    assert (ingresses.RESOURCE.short_names, ingresses.RESOURCE.subresource_names) == (
        ("ing",),
        ("status",),
    )
    assert ingresses.RESOURCE.tracks_generation
    assert ingresses.RESOURCE.storage_prefix() == "/registry/ingress/"
    assert not ingressclasses.RESOURCE.namespaced
    assert ingressclasses.RESOURCE.short_names == ()
    assert networkpolicies.RESOURCE.short_names == ("netpol",)
    assert networkpolicies.RESOURCE.tracks_generation and networkpolicies.RESOURCE.status is None


def _ingress(hosts: list[str], **spec: Any) -> Object:
    return {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"rules": [{"host": h} if h else {} for h in hosts], **spec},
    }


@pytest.mark.parametrize(
    ("obj", "cells"),
    [
        pytest.param(
            _ingress(["a.example.com"], ingressClassName="nginx"),
            ["web", "nginx", "a.example.com", "", "80", "60m"],
            id="one-host",
        ),
        pytest.param(
            _ingress([], tls=[{"hosts": ["x"]}]),
            ["web", "<none>", "*", "", "80, 443", "60m"],
            id="no-rules-tls",
        ),
        pytest.param(
            _ingress(["a", "", "b", "c", "d"]),
            ["web", "<none>", "a,b,c + 2 more...", "", "80", "60m"],
            id="many-hosts",
        ),
    ],
)
def test_ingress_row_matches_kubectl(obj: Object, cells: list[Any]) -> None:
    """NAME CLASS HOSTS ADDRESS PORTS AGE."""
    assert [c.name for c in ingresses.COLUMNS] == [
        "Name",
        "Class",
        "Hosts",
        "Address",
        "Ports",
        "Age",
    ]
    assert list(ingresses.ingress_row(obj, NOW)) == cells


def test_ingress_address_lists_unique_ips_and_hostnames_sorted() -> None:
    """The ADDRESS cell joins the sorted set of load-balancer IPs or hostnames."""
    obj = _ingress(["a"])
    obj["status"] = {
        "loadBalancer": {
            "ingress": [{"ip": "192.0.2.9"}, {"hostname": "lb.example.com"}, {"ip": "192.0.2.9"}]
        }
    }
    assert ingresses.ingress_row(obj, NOW)[3] == "192.0.2.9,lb.example.com"


def test_ingress_create_resets_status() -> None:
    """Status sent to the main endpoint is dropped on create."""
    obj = _ingress(["a"])
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    ingresses.STRATEGY.prepare_for_create(obj)
    assert obj["status"] == {}


@pytest.mark.parametrize(
    ("parameters", "cell"),
    [
        pytest.param(None, "<none>", id="none"),
        pytest.param({"kind": "Params", "name": "p"}, "Params/p", id="core-group"),
        pytest.param(
            {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"},
            "Params.k8s.example.com/p",
            id="with-group",
        ),
    ],
)
def test_ingress_class_row_matches_kubectl(parameters: Object | None, cell: str) -> None:
    """NAME CONTROLLER PARAMETERS AGE."""
    spec: Object = {"controller": "k8s.io/ingress-nginx"}
    if parameters is not None:
        spec["parameters"] = parameters
    obj = {"metadata": {"name": "nginx", "creationTimestamp": CREATED}, "spec": spec}
    assert list(ingressclasses.ingress_class_row(obj, NOW)) == [
        "nginx",
        "k8s.io/ingress-nginx",
        cell,
        "60m",
    ]


@pytest.mark.parametrize(
    ("selector", "cell"),
    [
        pytest.param({}, "<none>", id="all-pods"),
        pytest.param({"matchLabels": {"app": "db"}}, "app=db", id="labels"),
    ],
)
def test_network_policy_row_matches_kubectl(selector: Object, cell: str) -> None:
    """NAME POD-SELECTOR AGE."""
    obj = {
        "metadata": {"name": "deny", "creationTimestamp": CREATED},
        "spec": {"podSelector": selector},
    }
    assert list(networkpolicies.network_policy_row(obj, NOW)) == ["deny", cell, "60m"]
