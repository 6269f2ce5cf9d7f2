"""Namespace and ServiceAccount registry wiring: prepare hooks, subresources, tables."""

from __future__ import annotations

import datetime
from typing import Any

from kajitori.registry.core import namespaces, serviceaccounts

Object = dict[str, Any]

NOW = datetime.datetime(2024, 1, 3, tzinfo=datetime.UTC)


def test_create_activates_and_adds_the_kubernetes_finalizer() -> None:
    """A new namespace is Active, finalized by "kubernetes", labelled with its name."""
    obj: Object = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": ["example.com/x"]},
        "status": {"phase": "Terminating"},
    }
    namespaces.STRATEGY.prepare_for_create(obj)
    assert obj["status"] == {"phase": "Active"}
    assert obj["spec"]["finalizers"] == ["example.com/x", "kubernetes"]
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}


def test_update_keeps_finalizers_status_and_name_label() -> None:
    """The main endpoint cannot change spec.finalizers, status or the name label."""
    old: Object = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    new: Object = {
        "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "other", "a": "b"}},
        "spec": {"finalizers": []},
        "status": {"phase": "Terminating"},
    }
    namespaces.STRATEGY.prepare_for_update(new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["status"] == {"phase": "Active"}
    assert new["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team", "a": "b"}


def test_finalize_changes_finalizers_but_not_status() -> None:
    """/finalize may empty spec.finalizers; status stays as stored."""
    old: Object = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating"},
    }
    new: Object = {
        "metadata": {"name": "team"},
        "spec": {"finalizers": []},
        "status": {"phase": "Active"},
    }
    namespaces.FINALIZE_STRATEGY.prepare_for_update(new, old)
    assert new["spec"] == {"finalizers": []}
    assert new["status"] == {"phase": "Terminating"}


def test_canonicalize_labels_generated_names() -> None:
    """A name from generateName gets its label after the name is known."""
    obj: Object = {"metadata": {"name": "ns-abcde", "generateName": "ns-"}}
    namespaces.STRATEGY.canonicalize(obj)
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "ns-abcde"}


def test_namespace_resource_declaration() -> None:
    """Cluster-scoped, "ns", status and finalize subresources, status.phase selector."""
    info = namespaces.RESOURCE
    assert (info.namespaced, info.short_names) == (False, ("ns",))
    assert info.subresource_names == ("status", "finalize")
    assert info.all_selectable_fields["status.phase"]({"status": {"phase": "Active"}}) == "Active"
    row = namespaces.namespace_row(
        {
            "metadata": {"name": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"phase": "Active"},
        },
        NOW,
    )
    assert list(row) == ["default", "Active", "2d"]


def test_service_account_table_counts_secrets() -> None:
    """NAME SECRETS AGE, short name "sa"."""
    obj: Object = {"metadata": {"name": "default", "creationTimestamp": "2024-01-02T00:00:00Z"}}
    assert list(serviceaccounts.service_account_row(obj, NOW)) == ["default", 0, "24h"]
    obj["secrets"] = [{"name": "t"}]
    assert serviceaccounts.service_account_row(obj, NOW)[1] == 1
    assert serviceaccounts.RESOURCE.short_names == ("sa",)
