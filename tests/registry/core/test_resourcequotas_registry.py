"""ResourceQuota and LimitRange registry wiring: status handling and tables."""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.registry.core import limitranges, resourcequotas
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

NOW = datetime.datetime(2024, 1, 1, 0, 5, tzinfo=datetime.UTC)


def test_quota_row_splits_requests_and_limits() -> None:
    """REQUEST lists non-limits resources sorted as "name: used/hard"; LIMIT the limits.* ones."""
    obj: Object = {
        "metadata": {"name": "q", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "status": {
            "hard": {"pods": "10", "limits.cpu": "4", "requests.cpu": "2", "limits.memory": "8Gi"},
            "used": {"pods": "3", "limits.cpu": "1"},
        },
    }
    assert list(resourcequotas.resource_quota_row(obj, NOW)) == [
        "q",
        "5m",
        "pods: 3/10, requests.cpu: 0/2",
        "limits.cpu: 1/4, limits.memory: 0/8Gi",
    ]
    assert [c["name"] for c in resourcequotas.RESOURCE.table.column_definitions] == [
        "Name",
        "Age",
        "Request",
        "Limit",
    ]


def test_quota_status_is_cleared_on_create_and_kept_on_update() -> None:
    """Only the quota controller (through /status) writes status."""
    obj: Object = {
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "1"}},
        "status": {"used": {"pods": "9"}},
    }
    resourcequotas.STRATEGY.prepare_for_create(obj)
    assert obj["status"] == {}
    new: Object = {"metadata": {"name": "q"}, "spec": {}, "status": {"used": {"pods": "9"}}}
    resourcequotas.STRATEGY.prepare_for_update(new, {"status": {"used": {"pods": "1"}}})
    assert new["status"] == {"used": {"pods": "1"}}
    assert resourcequotas.RESOURCE.short_names == ("quota",)
    assert resourcequotas.RESOURCE.subresource_names == ("status",)


def test_limit_ranges_use_the_default_table() -> None:
    """Upstream has no LimitRange printer: NAME and CREATED AT; short name "limits"."""
    assert limitranges.RESOURCE.table is tables.DEFAULT_TABLE
    assert limitranges.RESOURCE.short_names == ("limits",)


def test_limit_range_defaults_fill_container_defaults() -> None:
    """set_defaults applies upstream's LimitRange defaulting (default from max)."""
    obj: Object = {
        "metadata": {"name": "l"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]},
    }
    limitranges.STRATEGY.set_defaults(obj)
    item = obj["spec"]["limits"][0]
    assert (item["default"], item["defaultRequest"]) == ({"cpu": "1"}, {"cpu": "1"})
