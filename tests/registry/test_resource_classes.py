"""resource.k8s.io/v1 DeviceClasses and DeviceTaintRules as upstream 1.37 serves them.

In-process cluster over HTTPS, the official client and real kubectl:
DeviceClasses with a generation counting spec changes, CEL selectors
compiled at validation, opaque configuration and extended resource names,
NAME AGE; DeviceTaintRules (served: DRADeviceTaintRules is GA in 1.37) with
``timeAdded`` defaulted, a status written only through
``devicetaintrules/status`` and the default NAME CREATED AT table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import causes, columns, refused, refused_raw, rows

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"
RULES = "/apis/resource.k8s.io/v1/devicetaintrules"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def dra(cluster: InProcessCluster) -> Iterator[client.ResourceV1Api]:
    api = cluster.api_client()
    yield client.ResourceV1Api(api)
    api.close()


def device_class(name: str, **spec: Any) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": spec,
    }


def rule(name: str, **spec: Any) -> Object:
    body = {"taint": {"key": "example.com/broken", "effect": "NoExecute"}, **spec}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": name},
        "spec": body,
    }


def as_json(response: Any) -> Object:
    body: Object = json.loads(response.data)
    return body


def test_device_classes_count_spec_changes_and_print_name_age(
    cluster: InProcessCluster, dra: client.ResourceV1Api
) -> None:
    selector = {"cel": {"expression": 'device.driver == "gpu.example.com"'}}
    dra.create_device_class(device_class("gpu.example.com", selectors=[selector]))
    assert dra.read_device_class("gpu.example.com").metadata.generation == 1
    dra.patch_device_class("gpu.example.com", {"metadata": {"labels": {"a": "b"}}})
    assert dra.read_device_class("gpu.example.com").metadata.generation == 1
    dra.patch_device_class("gpu.example.com", {"spec": {"extendedResourceName": "example.com/gpu"}})
    assert dra.read_device_class("gpu.example.com").metadata.generation == 2
    table = rows(cluster.kubectl("get", "deviceclasses").stdout)
    assert table[0] == ["NAME", "AGE"] and table[1][0] == "gpu.example.com"
    assert columns(cluster, CLASSES) == [("Name", "string"), ("Age", "string")]
    deleted = as_json(dra.delete_device_class("gpu.example.com", _preload_content=False))
    assert deleted["kind"] == "DeviceClass"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"selectors": [{"cel": {"expression": "device.attributes['x'].y +"}}]},
            [
                (
                    "FieldValueInvalid",
                    "spec.selectors[0].cel.expression",
                    "Invalid value: \"device.attributes['x'].y +\": compilation failed: ERROR: "
                    "<input>:1:27: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', "
                    "'.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, "
                    "BYTES, IDENTIFIER}\n | device.attributes['x'].y +\n | ..........................^",
                )
            ],
            id="cel",
        ),
        pytest.param(
            {"selectors": [{"cel": {"expression": "x" * 10241}}]},
            [
                (
                    "FieldValueTooLong",
                    "spec.selectors[0].cel.expression",
                    "Too long: may not be more than 10240 bytes",
                )
            ],
            id="cel-too-long",
        ),
        pytest.param(
            {"config": [{"opaque": {"driver": "", "parameters": {"a": "x" * 10241}}}]},
            [
                ("FieldValueRequired", "spec.config[0].opaque.driver", "Required value"),
                (
                    "FieldValueInvalid",
                    "spec.config[0].opaque.driver",
                    'Invalid value: "": a lowercase RFC 1123 subdomain must consist of lower case '
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ),
                (
                    "FieldValueTooLong",
                    "spec.config[0].opaque.parameters",
                    "Too long: may not be more than 10240 bytes",
                ),
            ],
            id="config",
        ),
        pytest.param(
            {"extendedResourceName": "cpu"},
            [
                (
                    "FieldValueInvalid",
                    "spec.extendedResourceName",
                    'Invalid value: "cpu": must be a valid extended resource name',
                )
            ],
            id="extended-resource-name",
        ),
    ],
)
def test_invalid_classes_are_refused_with_upstreams_causes(
    cluster: InProcessCluster, spec: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused_raw(cluster, "POST", CLASSES, device_class("bad.example.com", **spec))
    assert causes(status) == expected


def test_taint_rules_default_time_added_and_keep_status_apart(
    cluster: InProcessCluster, dra: client.ResourceV1Api
) -> None:
    body = rule("broken", deviceSelector={"driver": "gpu.example.com", "pool": "node-1"})
    condition = {
        "type": "EvictionInProgress",
        "status": "False",
        "reason": "Completed",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    body["status"] = {"conditions": [condition]}
    created = as_json(dra.create_device_taint_rule(body, _preload_content=False))
    assert created["spec"]["taint"]["timeAdded"].endswith("Z")
    assert created["metadata"]["generation"] == 1
    assert created.get("status", {}) == {}
    dra.patch_device_taint_rule_status("broken", {"status": {"conditions": [condition]}})
    read = as_json(dra.read_device_taint_rule("broken", _preload_content=False))
    assert read["status"]["conditions"][0]["reason"] == "Completed"
    assert read["metadata"]["generation"] == 1
    status = refused(
        dra.patch_device_taint_rule_status,
        "broken",
        # Strategic merge keys conditions by type: eight more make nine.
        {"status": {"conditions": [{**condition, "type": f"C{i}"} for i in range(8)]}},
    )
    assert causes(status) == [
        ("FieldValueTooMany", "status.conditions", "Too many: 9: must have at most 8 items")
    ]
    table = rows(cluster.kubectl("get", "devicetaintrules").stdout)
    assert table[0] == ["NAME", "CREATED", "AT"] and table[1][0] == "broken"
    assert columns(cluster, RULES) == [("Name", "string"), ("Created At", "date")]


def test_invalid_taint_rules_are_refused(cluster: InProcessCluster) -> None:
    body = rule("bad", deviceSelector={"driver": "Bad_Driver", "device": "GPU 0"})
    body["spec"]["taint"] = {"key": "k", "value": "bad value", "effect": "Evict"}
    status = refused_raw(cluster, "POST", RULES, body)
    assert [c[:2] for c in causes(status)] == [
        ("FieldValueInvalid", "spec.deviceSelector.driver"),
        ("FieldValueInvalid", "spec.deviceSelector.device"),
        ("FieldValueInvalid", "spec.taint.value"),
        ("FieldValueNotSupported", "spec.taint.effect"),
    ]
    assert causes(status)[3][2] == (
        'Unsupported value: "Evict": supported values: "NoExecute", "NoSchedule", "None"'
    )
