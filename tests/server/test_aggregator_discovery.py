"""The aggregator's pure parts: discovery documents of remote groups, header escaping, the table.

No server: an ``APIServiceIndex`` is filled by hand, as its watch would fill it.
"""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.registry.apiregistration import apiservices
from kajitori.registry.generic.request import UserInfo
from kajitori.server.aggregator.discovery import RemoteDiscovery, resources_from_list
from kajitori.server.aggregator.index import APIServiceIndex
from kajitori.server.aggregator.proxy import forwarded_headers, identity_headers

Object = dict[str, Any]
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _remote(group: str, version: str, group_priority: int, version_priority: int) -> Object:
    return {
        "metadata": {"name": f"{version}.{group}"},
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": group_priority,
            "versionPriority": version_priority,
            "service": {"namespace": "ns", "name": "svc", "port": 443},
        },
    }


def _discovery(*objs: Object) -> RemoteDiscovery:
    index = APIServiceIndex(store=None)  # type: ignore[arg-type]
    index.objects = {o["metadata"]["name"]: o for o in objs}
    return RemoteDiscovery(index, transport=None)  # type: ignore[arg-type]


def test_groups_sort_by_priority_and_versions_by_priority_then_kube_order() -> None:
    """Highest groupPriorityMinimum first; within a group versionPriority, then GA > beta > alpha."""
    discovery = _discovery(
        _remote("low.example.com", "v1", 100, 10),
        _remote("high.example.com", "v1alpha1", 2000, 10),
        _remote("high.example.com", "v1beta1", 2000, 10),
        _remote("high.example.com", "v2", 2000, 5),
    )
    groups = discovery.api_groups(exclude={"apps"})
    assert [g["name"] for g in groups] == ["high.example.com", "low.example.com"]
    assert [v["version"] for v in groups[0]["versions"]] == ["v1beta1", "v1alpha1", "v2"]
    assert groups[0]["preferredVersion"] == {
        "groupVersion": "high.example.com/v1beta1",
        "version": "v1beta1",
    }
    assert discovery.api_groups(exclude={"low.example.com", "high.example.com"}) == []
    assert discovery.api_group("missing.example.com") is None


def test_aggregated_items_hold_fetched_versions_with_their_freshness() -> None:
    """Only Available, fetched versions are listed; a failed refresh marks the document Stale."""
    v1, v2 = _remote("m.example.com", "v1", 100, 10), _remote("m.example.com", "v2", 100, 5)
    discovery = _discovery(v1, v2)
    discovery.documents["v1.m.example.com"] = ([{"resource": "things"}], False)
    discovery.documents["v2.m.example.com"] = ([{"resource": "others"}], True)
    assert discovery.aggregated_items(set()) == []  # neither is Available yet
    passed = {"type": "Available", "status": "True", "reason": "Passed"}
    v1["status"] = {"conditions": [passed]}
    del discovery.documents["v2.m.example.com"]
    v2["status"] = {"conditions": [passed]}  # Available, never fetched
    (item,) = discovery.aggregated_items(set())
    assert item == {
        "metadata": {"name": "m.example.com", "creationTimestamp": None},
        "versions": [
            {"version": "v1", "resources": [{"resource": "things"}], "freshness": "Stale"}
        ],
    }


def test_resource_list_becomes_aggregated_resources() -> None:
    """An APIResourceList (the legacy fallback) converts with subresources nested under their parent."""
    converted = resources_from_list(
        {
            "groupVersion": "m.example.com/v1",
            "resources": [
                {
                    "name": "pods",
                    "singularName": "pod",
                    "namespaced": True,
                    "kind": "PodMetrics",
                    "verbs": ["get", "list"],
                    "shortNames": ["pm"],
                },
                {"name": "pods/status", "namespaced": True, "kind": "PodMetrics", "verbs": ["get"]},
            ],
        }
    )
    assert converted == [
        {
            "resource": "pods",
            "responseKind": {"group": "m.example.com", "version": "v1", "kind": "PodMetrics"},
            "scope": "Namespaced",
            "singularResource": "pod",
            "verbs": ["get", "list"],
            "shortNames": ["pm"],
            "subresources": [
                {
                    "subresource": "status",
                    "responseKind": {
                        "group": "m.example.com",
                        "version": "v1",
                        "kind": "PodMetrics",
                    },
                    "verbs": ["get"],
                }
            ],
        }
    ]


def test_identity_headers_escape_extra_keys() -> None:
    """Upstream's headerKeyEscape: non-token bytes and '%' are percent-encoded; values are kept."""
    user = UserInfo(
        "alice",
        ("g1", "g2"),
        uid="u-1",
        extra=(("example.org/scopes", ("a b", "c")), ("100%", ("x",))),
    )
    assert identity_headers(user) == [
        ("X-Remote-User", "alice"),
        ("X-Remote-Uid", "u-1"),
        ("X-Remote-Group", "g1"),
        ("X-Remote-Group", "g2"),
        ("X-Remote-Extra-example.org%2Fscopes", "a b"),
        ("X-Remote-Extra-example.org%2Fscopes", "c"),
        ("X-Remote-Extra-100%25", "x"),
    ]


def test_credentials_and_identity_claims_are_not_forwarded() -> None:
    raw = [
        (b"Authorization", b"Bearer t"),
        (b"Impersonate-User", b"bob"),
        (b"X-Remote-Group", b"system:masters"),
        (b"Connection", b"keep-alive"),
        (b"Accept", b"application/json"),
        (b"Host", b"example"),
    ]
    assert forwarded_headers(raw) == [("accept", "application/json")]


def test_table_row_shows_service_and_reason() -> None:
    """NAME SERVICE AVAILABLE AGE; Unknown without a condition; the reason only when not True."""
    local = {
        "metadata": {"name": "v1.apps", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"group": "apps", "version": "v1"},
        "status": {"conditions": [apiservices.local_available_condition()]},
    }
    assert list(apiservices.api_service_row(local, NOW)) == ["v1.apps", "Local", "True", "60m"]
    remote = _remote("m.example.com", "v1", 100, 10)
    assert list(apiservices.api_service_row(remote, NOW))[1:3] == ["ns/svc", "Unknown"]
    remote["status"] = {"conditions": [{"type": "Available", "status": "False", "reason": "X"}]}
    assert list(apiservices.api_service_row(remote, NOW))[2] == "False (X)"
    remote["status"]["conditions"][0]["reason"] = ""
    assert list(apiservices.api_service_row(remote, NOW))[2] == "False"
