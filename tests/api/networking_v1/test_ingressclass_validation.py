"""Defaulting and validation of networking.k8s.io/v1 IngressClasses."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.networking_v1 import defaults
from kajitori.api.networking_v1.validation import ingressclasses

Object = dict[str, Any]


def _class(**spec: Any) -> Object:
    obj: Object = {
        "metadata": {"name": "nginx", "resourceVersion": "1"},
        "spec": {"controller": "k8s.io/ingress-nginx", **spec},
    }
    defaults.set_defaults_ingress_class(obj)
    return obj


def test_parameters_scope_defaults_to_cluster() -> None:
    """A parameters reference without scope gets Cluster and is valid."""
    obj = _class(parameters={"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"})
    assert obj["spec"]["parameters"]["scope"] == "Cluster"
    assert list(ingressclasses.validate_ingress_class(obj)) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"controller": ""}, "spec.controller: Required value", id="no-controller"),
        pytest.param(
            {"controller": "nginx"},
            'spec.controller: Invalid value: "nginx": '
            'must be a domain-prefixed path (such as "acme.io/foo")',
            id="not-domain-prefixed",
        ),
        pytest.param(
            {"parameters": {"kind": "Params", "name": "p", "scope": "Namespace"}},
            "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'",
            id="namespace-scope-without-namespace",
        ),
        pytest.param(
            {"parameters": {"kind": "Params", "name": "p", "namespace": "x"}},
            "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'",
            id="cluster-scope-with-namespace",
        ),
        pytest.param(
            {"parameters": {"name": "p"}},
            "spec.parameters.kind: Required value",
            id="no-kind",
        ),
    ],
)
def test_class_mistakes_get_upstreams_messages(spec: Object, message: str) -> None:
    """Each typical mistake is refused with upstream's path and text."""
    assert [str(e) for e in ingressclasses.validate_ingress_class(_class(**spec))] == [message]


def test_controller_is_immutable() -> None:
    """The controller may not change once set."""
    new = _class(controller="example.com/other")
    assert [str(e) for e in ingressclasses.validate_ingress_class_update(new, _class())] == [
        'spec.controller: Invalid value: "example.com/other": field is immutable'
    ]
