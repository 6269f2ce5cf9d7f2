"""Downward API formatting: labels and annotations maps, fields, resources with divisors."""

from __future__ import annotations

import pytest

from kajitori.kubelet.volumes import downward

POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u",
        "labels": {"b": "2", "a": 'say "hi"'},
        "annotations": {"k": "v"},
    },
    "spec": {"nodeName": "n1"},
    "status": {"hostIP": "192.168.0.1"},
}


def test_labels_are_sorted_quoted_lines_without_trailing_newline() -> None:
    assert downward.field_value(POD, "metadata.labels") == 'a="say \\"hi\\""\nb="2"'
    assert downward.field_value(POD, "metadata.annotations") == 'k="v"'
    assert downward.field_value(POD, "metadata.labels['b']") == "2"


def test_simple_fields_and_unsupported_paths() -> None:
    assert downward.field_value(POD, "metadata.namespace") == "ns"
    assert downward.field_value(POD, "spec.nodeName") == "n1"
    assert downward.field_value(POD, "status.podIP") == ""
    with pytest.raises(ValueError, match="unsupported fieldPath"):
        downward.field_value(POD, "spec.containers")


@pytest.mark.parametrize(
    ("resource", "divisor", "expected"),
    [
        ("limits.cpu", None, "1"),  # 250m rounds up to one core
        ("limits.cpu", "1m", "250"),
        ("requests.memory", "1Mi", "32"),
        ("limits.memory", None, str(64 * 1024 * 1024)),
        ("limits.ephemeral-storage", "1Gi", "10"),  # unset: the node's allocatable
    ],
)
def test_resources_round_up_by_divisor(resource: str, divisor: str | None, expected: str) -> None:
    container = {
        "resources": {
            "limits": {"cpu": "250m", "memory": "64Mi"},
            "requests": {"memory": "32Mi"},
        }
    }
    ref = {"resource": resource, **({"divisor": divisor} if divisor else {})}
    allocatable = {"ephemeral-storage": "10Gi"}
    assert downward.resource_value(ref, container, allocatable) == expected
