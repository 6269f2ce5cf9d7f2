"""Validation of coordination.k8s.io/v1 Leases."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.coordination_v1.validation import leases

Object = dict[str, Any]


def _lease(**spec: Any) -> Object:
    return {
        "metadata": {"name": "node-a", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40, **spec},
    }


def test_a_node_heartbeat_lease_is_valid() -> None:
    """A typical kubelet lease passes validation."""
    assert list(leases.validate_lease(_lease(renewTime="2025-01-01T00:00:00.000000Z"))) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"leaseDurationSeconds": 0},
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
            id="zero-duration",
        ),
        pytest.param(
            {"leaseTransitions": -1},
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            id="negative-transitions",
        ),
        pytest.param(
            {"strategy": "Newest"},
            'spec.strategy.strategy: Unsupported value: "Newest": '
            'supported values: "OldestEmulationVersion"',
            id="unknown-strategy",
        ),
        pytest.param(
            {"preferredHolder": "node-b"},
            "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
            id="preferred-holder-without-strategy",
        ),
    ],
)
def test_lease_spec_mistakes_get_upstreams_messages(spec: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert [str(e) for e in leases.validate_lease(_lease(**spec))] == [message]


def test_custom_lease_strategies_must_be_qualified_names() -> None:
    """A strategy with a '/' is accepted when it is a qualified name."""
    assert list(leases.validate_lease(_lease(strategy="example.com/mine"))) == []


def test_lease_update_needs_a_resource_version_and_keeps_the_name() -> None:
    """Updates run ObjectMeta update checks on top of the spec checks."""
    old = _lease()
    old["metadata"]["resourceVersion"] = "5"
    new = _lease(leaseDurationSeconds=-1)
    new["metadata"]["name"] = "node-b"
    messages = [str(e) for e in leases.validate_lease_update(new, old)]
    assert "spec.leaseDurationSeconds: Invalid value: -1: must be greater than 0" in messages
    assert any(m.startswith("metadata.name: Invalid value") for m in messages)
    assert any(m.startswith("metadata.resourceVersion") for m in messages)
