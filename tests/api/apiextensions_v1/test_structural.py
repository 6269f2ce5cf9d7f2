"""Structural schemas of custom resources: validation messages, pruning and defaulting."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.apiextensions_v1 import structural

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "format": "int32"},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "when": {"type": "string", "format": "date-time"},
                "count": {"type": "integer", "format": "int32"},
                "data": {"type": "string", "format": "byte"},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "tags": {
                    "type": "array",
                    "maxItems": 3,
                    "minItems": 1,
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "mode": {"type": "string", "default": "auto"},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        }
    },
}


def _errors(spec: dict[str, Any]) -> list[str]:
    return [str(e) for e in structural.validate({"spec": {"name": "ok", **spec}}, SCHEMA)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"replicas": "3"},
            'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
            id="type",
        ),
        pytest.param(
            {"replicas": -1},
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
            id="minimum",
        ),
        pytest.param(
            {"replicas": 11},
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
            id="maximum",
        ),
        pytest.param(
            {"color": "pink"},
            'spec.color: Unsupported value: "pink": supported values: "red", "blue"',
            id="enum",
        ),
        pytest.param(
            {"name": "abcdef"}, "spec.name: Too long: may not be more than 5 bytes", id="maxLength"
        ),
        pytest.param(
            {"name": "A"},
            "spec.name: Invalid value: \"A\": spec.name in body should match '^[a-z]+$'",
            id="pattern",
        ),
        pytest.param(
            {"when": "yesterday"},
            'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"',
            id="date-time",
        ),
        pytest.param(
            {"data": "!!"},
            'spec.data: Invalid value: "!!": spec.data in body must be of type byte: "!!"',
            id="byte",
        ),
        pytest.param(
            {"tags": ["a", "b", "c", "d"]},
            "spec.tags: Too many: 4: must have at most 3 items",
            id="maxItems",
        ),
        pytest.param(
            {"tags": []},
            "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
            id="minItems",
        ),
        pytest.param(
            {"tags": ["a", "a"]}, 'spec.tags[1]: Duplicate value: "a"', id="list-type-set"
        ),
        pytest.param(
            {"ports": [{"name": "x", "port": 1}, {"name": "x", "port": 2}]},
            'spec.ports[1]: Duplicate value: {"name":"x"}',
            id="list-type-map",
        ),
        pytest.param(
            {"port": True},
            'spec.port: Invalid value: "boolean": spec.port in body must be of type integer-or-string: "boolean"',
            id="int-or-string",
        ),
        pytest.param(
            {"color": None},
            'spec.color: Invalid value: "null": spec.color in body must be of type string: "null"',
            id="not-nullable",
        ),
        pytest.param(
            {"template": {"apiVersion": "v1"}},
            "spec.template.kind: Required value: must not be empty",
            id="embedded-resource",
        ),
        pytest.param(
            {"count": 2**40},
            f"spec.count: Invalid value: {2**40}: spec.count in body must be of type int32: {2**40}",
            id="int32",
        ),
    ],
)
def test_invalid_values_are_reported_as_upstream(spec: dict[str, Any], expected: str) -> None:
    """Each violated keyword yields one error with kube-openapi's wording."""
    assert _errors(spec) == [expected]


def test_valid_values_pass() -> None:
    """Accepted shapes: int-or-string both ways, nullable null, open maps, embedded objects."""
    spec = {
        "port": "http",
        "note": None,
        "labels": {"a": "b"},
        "free": {"anything": [1]},
        "template": {"apiVersion": "v1", "kind": "Pod"},
        "when": "2024-01-02T03:04:05Z",
    }
    assert _errors(spec) == []
    assert _errors({"port": 8080}) == []


def test_missing_required_fields_are_reported() -> None:
    """A required property absent from its object is "Required value"."""
    errs = structural.validate({"spec": {}}, SCHEMA)
    assert [str(e) for e in errs] == ["spec.name: Required value"]


def test_pruning_drops_undeclared_fields_and_keeps_preserved_ones() -> None:
    """Unknown fields go, with their paths; preserve-unknown-fields subtrees stay."""
    obj: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "a"},
        "spec": {"name": "a", "bogus": 1, "free": {"x": 1}, "ports": [{"name": "p", "zz": 2}]},
        "extra": True,
    }
    unknown = structural.prune(obj, SCHEMA)
    assert unknown == ["spec.bogus", "spec.ports[0].zz", "extra"]
    assert obj["spec"] == {"name": "a", "free": {"x": 1}, "ports": [{"name": "p"}]}


def test_defaults_fill_absent_fields_only() -> None:
    """A default applies where the field is missing, not where it is set."""
    obj: dict[str, Any] = {"spec": {"name": "a"}}
    structural.apply_defaults(obj, SCHEMA)
    assert obj["spec"]["mode"] == "auto"
    obj = {"spec": {"name": "a", "mode": "manual"}}
    structural.apply_defaults(obj, SCHEMA)
    assert obj["spec"]["mode"] == "manual"
