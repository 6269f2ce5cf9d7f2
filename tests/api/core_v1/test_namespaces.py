"""Namespace and ServiceAccount validation against upstream's messages."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.core_v1.validation import namespaces, serviceaccounts

Object = dict[str, Any]


def namespace(name: str = "team-a", **extra: Any) -> Object:
    obj: Object = {"metadata": {"name": name, "resourceVersion": "1"}}
    obj.update(extra)
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(namespace(), [], id="valid"),
        pytest.param(
            namespace(spec={"finalizers": ["kubernetes", "example.com/x"]}), [], id="finalizers"
        ),
        pytest.param(
            namespace("a.b"),
            ['metadata.name: Invalid value: "a.b": must not contain dots'],
            id="dots-not-allowed",
        ),
        pytest.param(
            namespace("Team"),
            [
                'metadata.name: Invalid value: "Team": a lowercase RFC 1123 label must consist of '
                "lower case alphanumeric characters or '-', and must start and end with an "
                "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ],
            id="uppercase",
        ),
        pytest.param(
            namespace(spec={"finalizers": ["custom"]}),
            [
                'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer '
                "name nor is it fully qualified"
            ],
            id="unqualified-finalizer-without-index",
        ),
    ],
)
def test_validate_namespace(obj: Object, expected: list[str]) -> None:
    """Namespaces are cluster-scoped DNS-1123 labels with qualified finalizers."""
    assert [str(e) for e in namespaces.validate_namespace(obj)] == expected


def test_finalize_update_indexes_bad_finalizers() -> None:
    """/finalize reports each bad finalizer at its index (create does not)."""
    new = namespace(spec={"finalizers": ["kubernetes", "custom"]})
    errs = namespaces.validate_namespace_finalize_update(new, namespace())
    assert [e.field for e in errs] == ["spec.finalizers[1]"]


@pytest.mark.parametrize(
    ("deleted", "phase", "expected"),
    [
        pytest.param(False, "Active", [], id="active"),
        pytest.param(
            False,
            "Terminating",
            [
                "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
            ],
            id="terminating-without-deletion",
        ),
        pytest.param(True, "Terminating", [], id="terminating"),
        pytest.param(
            True,
            "Active",
            [
                "status.Phase: Invalid value: \"Active\": may only be 'Terminating' if `deletionTimestamp` is not empty"
            ],
            id="active-while-deleted",
        ),
    ],
)
def test_status_phase_follows_deletion(deleted: bool, phase: str, expected: list[str]) -> None:
    """The status subresource only accepts the phase matching the deletion state."""
    new = namespace(status={"phase": phase})
    old = namespace()
    if deleted:
        new["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"] = (
            "2024-01-01T00:00:00Z"
        )
    errs = namespaces.validate_namespace_status_update(new, old)
    assert [str(e) for e in errs] == expected


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("default", True, id="plain"),
        pytest.param("with.dots", True, id="subdomain"),
        pytest.param("Upper", False, id="uppercase"),
    ],
)
def test_service_account_names_are_dns_subdomains(name: str, valid: bool) -> None:
    """ServiceAccount names follow the DNS-1123 subdomain rule, in a namespace."""
    obj = {"metadata": {"name": name, "namespace": "default"}}
    assert (serviceaccounts.validate_service_account(obj) == []) is valid


def test_service_account_without_namespace_is_refused() -> None:
    """A namespaced kind needs metadata.namespace."""
    errs = serviceaccounts.validate_service_account({"metadata": {"name": "sa"}})
    assert [str(e) for e in errs] == ["metadata.namespace: Required value"]
