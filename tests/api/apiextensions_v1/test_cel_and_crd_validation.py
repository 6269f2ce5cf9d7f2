"""CEL rules on custom resources and validation of CRDs themselves."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.apiextensions_v1 import cel, defaults, validation

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                {
                    "rule": "self.max < 100",
                    "messageExpression": "'max is ' + string(self.max)",
                    "fieldPath": ".max",
                },
                {"rule": "self.name == oldSelf.name", "message": "name is immutable"},
                {"rule": "!has(self.forbidden)", "reason": "FieldValueForbidden"},
            ],
            "properties": {
                "min": {"type": "integer"},
                "max": {"type": "integer"},
                "name": {"type": "string"},
                "forbidden": {"type": "string"},
            },
        }
    },
}


def _errors(spec: dict[str, Any], old_spec: dict[str, Any] | None = None) -> list[str]:
    old = None if old_spec is None else {"spec": old_spec}
    return [str(e) for e in cel.validate({"spec": spec}, SCHEMA, old)]


@pytest.mark.parametrize(
    ("spec", "old", "expected"),
    [
        pytest.param(
            {"min": 1, "max": 2, "name": "a"}, None, [], id="valid-create-skips-transition"
        ),
        pytest.param(
            {"min": 3, "max": 2, "name": "a"},
            None,
            ['spec: Invalid value: "object": min must not exceed max'],
            id="message",
        ),
        pytest.param(
            {"min": 1, "max": 200, "name": "a"},
            None,
            ['spec.max: Invalid value: "object": max is 200'],
            id="messageExpression-and-fieldPath",
        ),
        pytest.param(
            {"min": 1, "max": 2, "name": "b"},
            {"min": 1, "max": 2, "name": "a"},
            ['spec: Invalid value: "object": name is immutable'],
            id="transition-rule",
        ),
        pytest.param(
            {"min": 1, "max": 2, "name": "a", "forbidden": "x"},
            None,
            ["spec: Forbidden: failed rule: !has(self.forbidden)"],
            id="reason-and-default-message",
        ),
    ],
)
def test_rules_fail_with_upstreams_messages(
    spec: dict[str, Any], old: dict[str, Any] | None, expected: list[str]
) -> None:
    """Rules see self (and oldSelf on update); failures render as the apiserver's."""
    assert _errors(spec, old) == expected


def _crd(**spec_changes: Any) -> dict[str, Any]:
    crd: dict[str, Any] = {
        "metadata": {"name": "foos.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "foos", "kind": "Foo"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
                }
            ],
        },
    }
    crd["spec"].update(spec_changes)
    defaults.set_defaults_crd(crd)
    return crd


def _version(**changes: Any) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object"}},
    }
    version.update(changes)
    return version


def test_defaults_fill_singular_list_kind_and_conversion() -> None:
    """singular and listKind follow the kind; conversion strategy is None."""
    crd = _crd()
    assert crd["spec"]["names"] == {
        "plural": "foos",
        "kind": "Foo",
        "singular": "foo",
        "listKind": "FooList",
    }
    assert crd["spec"]["conversion"] == {"strategy": "None"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, [], id="valid"),
        pytest.param(
            {
                "versions": [
                    _version(
                        schema={
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {"spec": {"properties": {}}},
                            }
                        }
                    )
                ]
            },
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
                "must not be empty for specified object fields"
            ],
            id="non-structural",
        ),
        pytest.param(
            {"versions": [_version(schema={"openAPIV3Schema": {"type": "string"}})]},
            [
                'spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": '
                "must be object at the root"
            ],
            id="root-not-object",
        ),
        pytest.param(
            {"versions": [_version(), _version(name="v2")]},
            [
                "spec.versions: Invalid value: "
                + '[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object"}}},'
                + '{"name":"v2","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object"}}}]'
                + ": must have exactly one version marked as storage version"
            ],
            id="two-storage-versions",
        ),
        pytest.param(
            {"versions": [_version(schema=None)]},
            ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
            id="schema-required",
        ),
        pytest.param(
            {"scope": "Galaxy"},
            ['spec.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced"'],
            id="scope",
        ),
        pytest.param(
            {"group": "example"},
            [
                'metadata.name: Invalid value: "foos.example.com": must be spec.names.plural+"."+spec.group',
                'spec.group: Invalid value: "example": should be a domain with at least one dot',
            ],
            id="group-without-dot",
        ),
        pytest.param(
            {
                "versions": [
                    _version(
                        schema={
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-validations": [{"rule": "self.a +"}],
                            }
                        }
                    )
                ]
            },
            ["compilation failed"],
            id="cel-does-not-compile",
        ),
    ],
)
def test_crds_are_validated_with_upstreams_messages(
    changes: dict[str, Any], expected: list[str]
) -> None:
    """Names, scope, versions and structural schemas are checked as upstream does."""
    errs = [str(e) for e in validation.validate_crd(_crd(**changes))]
    if expected == ["compilation failed"]:
        assert len(errs) == 1
        assert errs[0].startswith(
            "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule: "
            'Invalid value: "self.a +": compilation failed:'
        )
    else:
        assert errs == expected


def test_protected_groups_need_the_approval_annotation() -> None:
    """A *.k8s.io group without api-approved.kubernetes.io is refused."""
    crd = _crd(group="things.k8s.io")
    crd["metadata"]["name"] = "foos.things.k8s.io"
    assert [str(e) for e in validation.validate_crd(crd)] == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups "
        'must have approval annotation "api-approved.kubernetes.io", see '
        "https://github.com/kubernetes/enhancements/pull/1111"
    ]
