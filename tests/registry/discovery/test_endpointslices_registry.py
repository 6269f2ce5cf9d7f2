"""Registry declaration, strategy and table of discovery.k8s.io/v1 endpointslices."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kajitori.registry.discovery import endpointslices

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _slice(addresses: list[str], ports: list[Object]) -> Object:
    return {
        "metadata": {
            "name": "web-abc12",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
            "creationTimestamp": "2025-01-01T11:58:00Z",
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a]} for a in addresses],
        "ports": ports,
    }


def test_endpointslices_are_declared_as_upstream() -> None:
    """Namespaced, no short name or category, generation tracked, no status."""
    info = endpointslices.RESOURCE
    assert (info.group_version, info.namespaced, info.short_names, info.categories) == (
        "discovery.k8s.io/v1",
        True,
        (),
        (),
    )
    assert info.tracks_generation and info.status is None


@pytest.mark.parametrize(
    ("change", "bumps"),
    [
        pytest.param(
            lambda o: o["endpoints"].append({"addresses": ["10.0.0.9"]}), True, id="endpoints"
        ),
        pytest.param(lambda o: o["metadata"]["labels"].update(extra="1"), True, id="labels"),
        pytest.param(
            lambda o: o["metadata"].update(annotations={"a": "b"}), False, id="annotations"
        ),
    ],
)
def test_generation_bumps_on_content_and_label_changes(change: Any, bumps: bool) -> None:
    """Upstream bumps generation for anything but metadata, and for label changes."""
    old = _slice(["10.0.0.1"], [])
    new = copy.deepcopy(old)
    change(new)
    assert endpointslices.RESOURCE.strategy.bumps_generation(new, old) is bumps


@pytest.mark.parametrize(
    ("addresses", "ports", "cells"),
    [
        pytest.param(
            ["10.0.0.1", "10.0.0.2"],
            [{"name": "http", "port": 80}],
            ["web-abc12", "IPv4", "80", "10.0.0.1,10.0.0.2", "2m"],
            id="simple",
        ),
        pytest.param(
            [f"10.0.0.{i}" for i in range(1, 6)],
            [{"name": "a", "port": 1}, {"name": "b"}, {}, {"port": 4}],
            [
                "web-abc12",
                "IPv4",
                "1,b,* + 1 more...",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...",
                "2m",
            ],
            id="truncated",
        ),
        pytest.param([], [], ["web-abc12", "IPv4", "<unset>", "<unset>", "2m"], id="empty"),
    ],
)
def test_endpoint_slice_row_matches_kubectl(
    addresses: list[str], ports: list[Object], cells: list[Any]
) -> None:
    """NAME ADDRESSTYPE PORTS ENDPOINTS AGE with upstream's truncation."""
    assert [c.name for c in endpointslices.COLUMNS] == [
        "Name",
        "AddressType",
        "Ports",
        "Endpoints",
        "Age",
    ]
    assert list(endpointslices.endpoint_slice_row(_slice(addresses, ports), NOW)) == cells
