"""ServiceStrategy and the services table, against upstream behaviour."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kajitori.registry.core import services

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _service(**spec: Any) -> Object:
    svc: Object = {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2025-01-01T11:58:00Z",
        },
        "spec": {"selector": {"app": "web", "tier": "fe"}, "ports": [{"port": 80}], **spec},
    }
    services.STRATEGY.set_defaults(svc)
    return svc


def test_create_resets_status_and_never_allocates_a_cluster_ip() -> None:
    """The strategy fills IP families but leaves clusterIP to the allocator."""
    svc = _service()
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    services.STRATEGY.prepare_for_create(svc)
    assert svc["status"] == {"loadBalancer": {}}
    assert "clusterIP" not in svc["spec"]
    assert (svc["spec"]["ipFamilyPolicy"], svc["spec"]["ipFamilies"]) == ("SingleStack", ["IPv4"])


def test_update_without_cluster_ip_keeps_the_allocated_values() -> None:
    """Re-applying a manifest without clusterIP or nodePort keeps the allocated ones."""
    old = _service(type="NodePort", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    old["metadata"]["resourceVersion"] = "3"
    services.STRATEGY.prepare_for_create(old)
    new = _service(type="NodePort")
    new["metadata"]["resourceVersion"] = "3"
    services.STRATEGY.prepare_for_update(new, old)
    assert new["spec"]["clusterIPs"] == ["10.96.0.10"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert list(services.STRATEGY.validate_update(new, old)) == []


def test_changing_to_cluster_ip_drops_node_ports() -> None:
    """Switching NodePort -> ClusterIP clears nodePort instead of failing validation."""
    old = _service(type="NodePort", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    services.STRATEGY.prepare_for_update(new, old)
    assert "nodePort" not in new["spec"]["ports"][0]


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        pytest.param(
            {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]},
            {},
            ["ClusterIP", "10.96.0.10", "<none>", "80/TCP"],
            id="cluster-ip",
        ),
        pytest.param(
            {"clusterIP": "None", "clusterIPs": ["None"], "ports": []},
            {},
            ["ClusterIP", "None", "<none>", "<none>"],
            id="headless",
        ),
        pytest.param(
            {
                "type": "NodePort",
                "clusterIPs": ["10.96.0.11"],
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            },
            {},
            ["NodePort", "10.96.0.11", "<none>", "80:30080/TCP"],
            id="node-port",
        ),
        pytest.param(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"]},
            {},
            ["LoadBalancer", "10.96.0.12", "<pending>", "80/TCP"],
            id="lb-pending",
        ),
        pytest.param(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"]},
            {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}},
            ["LoadBalancer", "10.96.0.12", "203.0.113.7", "80/TCP"],
            id="lb-ready",
        ),
        pytest.param(
            {"type": "ExternalName", "externalName": "example.com", "ports": []},
            {},
            ["ExternalName", "<none>", "example.com", "<none>"],
            id="external-name",
        ),
    ],
)
def test_service_table_cells(spec: Object, status: Object, cells: list[str]) -> None:
    """TYPE, CLUSTER-IP, EXTERNAL-IP and PORT(S) follow upstream's printService."""
    svc = _service(**spec)
    svc["status"] = status
    row = services.service_row(svc, NOW)
    assert list(row[1:5]) == cells
    assert (row[0], row[5], row[6]) == ("web", "2m", "app=web,tier=fe")


def test_service_resource_declaration() -> None:
    """services: short name svc, category all, status subresource, create on update."""
    info = services.RESOURCE
    assert (info.short_names, info.categories, info.subresource_names) == (
        ("svc",),
        ("all",),
        ("status",),
    )
    assert info.strategy.allow_create_on_update()
    assert [c.name for c in info.table.columns] == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
        "Age",
        "Selector",
    ]
