"""Defaulting and validation of networking.k8s.io/v1 NetworkPolicies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.networking_v1 import defaults
from kajitori.api.networking_v1.validation import networkpolicies

Object = dict[str, Any]


def _policy(**spec: Any) -> Object:
    obj: Object = {
        "metadata": {"name": "deny", "namespace": "default", "resourceVersion": "1"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}, **spec},
    }
    defaults.set_defaults_network_policy(obj)
    return obj


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        pytest.param({}, ["Ingress"], id="ingress-only"),
        pytest.param({"egress": [{}]}, ["Ingress", "Egress"], id="with-egress"),
        pytest.param({"policyTypes": ["Egress"]}, ["Egress"], id="explicit"),
    ],
)
def test_policy_types_default_as_upstream(spec: Object, types: list[str]) -> None:
    """Empty policyTypes become Ingress, plus Egress when egress rules exist."""
    obj = _policy(**spec)
    assert obj["spec"]["policyTypes"] == types
    again = copy.deepcopy(obj)
    defaults.set_defaults_network_policy(again)
    assert again == obj


def test_ports_default_to_tcp() -> None:
    """A port without protocol gets TCP."""
    obj = _policy(ingress=[{"ports": [{"port": 5432}]}])
    assert obj["spec"]["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert list(networkpolicies.validate_network_policy(obj)) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"policyTypes": ["Both"]},
            'spec.policyTypes[0]: Unsupported value: "Both": supported values: "Ingress", "Egress"',
            id="bad-policy-type",
        ),
        pytest.param(
            {"ingress": [{"from": [{}]}]},
            "spec.ingress[0].from[0]: Required value: must specify a peer",
            id="empty-peer",
        ),
        pytest.param(
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer",
            id="ipblock-and-selector",
        ),
        pytest.param(
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/8"]}}]}]},
            'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "11.0.0.0/8": '
            "must be a strict subset of `cidr`",
            id="except-outside",
        ),
        pytest.param(
            {"ingress": [{"ports": [{"port": 8080, "endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort: Invalid value: 80: "
            "must be greater than or equal to `port`",
            id="end-before-port",
        ),
        pytest.param(
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0/8"}}]}]},
            'spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0/8": '
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            id="bad-cidr",
        ),
    ],
)
def test_policy_mistakes_get_upstreams_messages(spec: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert [str(e) for e in networkpolicies.validate_network_policy(_policy(**spec))] == [message]


def test_stored_invalid_cidrs_stay_accepted_on_update() -> None:
    """A CIDR already in the old object is not re-validated (AllowCIDRsEvenIfInvalid)."""
    spec = {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0/8"}}]}]}
    old, new = _policy(**spec), _policy(**spec)
    new["metadata"]["labels"] = {"changed": "yes"}
    assert list(networkpolicies.validate_network_policy_update(new, old)) == []
