"""resource.k8s.io/v1 ResourceClaims and ResourceClaimTemplates as upstream 1.37 serves them.

In-process cluster over HTTPS, the official client and real kubectl:
discovery rows, request defaulting (ExactCount, count 1, toleration operator
Equal), a spec that never changes, ``resourceclaims/status`` with
upstream's status rules, NAME STATE AGE, and upstream's 422s for device
requests, CEL selectors, constraints and configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.kind_checks import (
    api_resource_row,
    causes,
    columns,
    refused,
    refused_raw,
    rows,
)

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
NS = "default"
_REF = "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def dra(cluster: InProcessCluster) -> Iterator[client.ResourceV1Api]:
    api = cluster.api_client()
    yield client.ResourceV1Api(api)
    api.close()


def raw(response: Any) -> Object:
    """The JSON of a call made with ``_preload_content=False``."""
    body: Object = json.loads(response.data)
    return body


def claim(name: str, *requests: Object, **devices: Any) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": {"devices": {"requests": list(requests), **devices}},
    }


def exactly(name: str = "gpu", **fields: Any) -> Object:
    return {"name": name, "exactly": {"deviceClassName": "gpu.example.com", **fields}}


def create(dra: client.ResourceV1Api, body: Object) -> Object:
    return raw(dra.create_namespaced_resource_claim(NS, body, _preload_content=False))


@pytest.mark.parametrize(
    ("plural", "namespaced", "kind"),
    [
        ("deviceclasses", "false", "DeviceClass"),
        ("resourceclaims", "true", "ResourceClaim"),
        ("resourceclaimtemplates", "true", "ResourceClaimTemplate"),
        ("resourceslices", "false", "ResourceSlice"),
        ("devicetaintrules", "false", "DeviceTaintRule"),
    ],
)
def test_kubectl_api_resources_lists_the_dra_kinds(
    cluster: InProcessCluster, plural: str, namespaced: str, kind: str
) -> None:
    # No short names and no categories upstream: the row goes name, version, scope, kind, verbs.
    row = api_resource_row(cluster, "resource.k8s.io", plural)
    assert row[:4] == [plural, "resource.k8s.io/v1", namespaced, kind]
    assert row[4:] == ["create,delete,deletecollection,get,list,patch,update,watch"]


def test_requests_are_defaulted(dra: client.ResourceV1Api) -> None:
    body = claim(
        "defaults",
        exactly(tolerations=[{"key": "a", "value": "b"}]),
        {
            "name": "alt",
            "firstAvailable": [
                {"name": "big", "deviceClassName": "gpu.example.com", "allocationMode": "All"},
                {"name": "small", "deviceClassName": "gpu.example.com"},
            ],
        },
    )
    created = create(dra, body)
    first, second = created["spec"]["devices"]["requests"]
    assert first["exactly"]["allocationMode"] == "ExactCount"
    assert first["exactly"]["count"] == 1
    assert first["exactly"]["tolerations"] == [{"key": "a", "operator": "Equal", "value": "b"}]
    big, small = second["firstAvailable"]
    assert (big["allocationMode"], "count" in big) == ("All", False)
    assert (small["allocationMode"], small["count"]) == ("ExactCount", 1)
    assert created["status"] == {}


def test_a_feature_off_in_1_37_loses_its_field(dra: client.ResourceV1Api) -> None:
    # DRADerivedAttributes is alpha and off in 1.37: the field is dropped, not refused.
    request = exactly(derivedAttributes=[{"name": "x", "expression": "1"}])
    created = create(dra, claim("derived", request))
    assert "derivedAttributes" not in created["spec"]["devices"]["requests"][0]["exactly"]


def test_status_is_written_through_the_status_endpoint_and_shown_as_state(
    cluster: InProcessCluster, dra: client.ResourceV1Api
) -> None:
    body = claim("life", exactly())
    body["status"] = {"reservedFor": [{"resource": "pods", "name": "p", "uid": "u1"}]}
    assert create(dra, body)["status"] == {}
    assert rows(cluster.kubectl("get", "resourceclaims", "life").stdout)[1][:2] == [
        "life",
        "pending",
    ]
    allocation = {
        "devices": {
            "results": [
                {"request": "gpu", "driver": "gpu.example.com", "pool": "node-1", "device": "gpu-0"}
            ]
        }
    }
    patch = {
        "status": {
            "allocation": allocation,
            "reservedFor": [{"resource": "pods", "name": "p", "uid": "u1"}],
        }
    }
    dra.patch_namespaced_resource_claim_status("life", NS, patch)
    # The main endpoint keeps the status as stored.
    dra.patch_namespaced_resource_claim("life", NS, {"status": {"reservedFor": None}})
    read = raw(dra.read_namespaced_resource_claim("life", NS, _preload_content=False))
    assert read["status"]["reservedFor"] == [{"resource": "pods", "name": "p", "uid": "u1"}]
    table = rows(cluster.kubectl("get", "resourceclaims", "life").stdout)
    assert table[0] == ["NAME", "STATE", "AGE"]
    assert table[1][:2] == ["life", "allocated,reserved"]
    assert columns(cluster, f"/apis/resource.k8s.io/v1/namespaces/{NS}/resourceclaims") == [
        ("Name", "string"),
        ("State", "string"),
        ("Age", "string"),
    ]
    # A status entry for a device that is not allocated is refused.
    bad = {
        "status": {"devices": [{"driver": "gpu.example.com", "pool": "node-1", "device": "gpu-9"}]}
    }
    status = refused(dra.patch_namespaced_resource_claim_status, "life", NS, bad)
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "status.devices[0]",
            "Invalid value: gpu.example.com/node-1/gpu-9: must be an allocated device in the claim",
        )
    ]
    # Once allocated, the allocation never changes.
    changed = json.loads(json.dumps(allocation))
    changed["devices"]["results"][0]["device"] = "gpu-1"
    status = refused(
        dra.patch_namespaced_resource_claim_status, "life", NS, {"status": {"allocation": changed}}
    )
    ((reason, path, message),) = causes(status)
    assert (reason, path) == ("FieldValueInvalid", "status.allocation")
    assert message.startswith(
        "Invalid value: resource.AllocationResult{Devices:resource.DeviceAllocationResult{"
    )
    assert message.endswith(": field is immutable")
    deleted = raw(dra.delete_namespaced_resource_claim("life", NS, _preload_content=False))
    assert deleted["kind"] == "ResourceClaim"


def test_reserved_for_needs_an_allocation(dra: client.ResourceV1Api) -> None:
    create(dra, claim("unallocated", exactly()))
    consumer = {"resource": "pods", "name": "p", "uid": "u1"}
    status = refused(
        dra.patch_namespaced_resource_claim_status,
        "unallocated",
        NS,
        {"status": {"reservedFor": [consumer, consumer, {"resource": "pods"}]}},
    )
    assert causes(status) == [
        ("FieldValueRequired", "status.reservedFor[2].name", "Required value"),
        ("FieldValueRequired", "status.reservedFor[2].uid", "Required value"),
        ("FieldValueDuplicate", "status.reservedFor[1]", 'Duplicate value: "u1"'),
        (
            "FieldValueForbidden",
            "status.reservedFor",
            "Forbidden: may not be specified when `allocated` is not set",
        ),
    ]


def test_the_spec_never_changes(cluster: InProcessCluster, dra: client.ResourceV1Api) -> None:
    create(dra, claim("fixed", exactly()))
    status = refused(
        dra.patch_namespaced_resource_claim,
        "fixed",
        NS,
        {"spec": {"devices": {"requests": [exactly("other")]}}},
    )
    assert status["message"].startswith(
        'ResourceClaim.resource.k8s.io "fixed" is invalid: spec: Invalid value: '
        "resource.ResourceClaimSpec{Devices:resource.DeviceClaim{Requests:[]resource.DeviceRequest{"
        'resource.DeviceRequest{Name:"other", Exactly:(*resource.ExactDeviceRequest)('
    )
    assert status["message"].endswith(": field is immutable")
    labelled = cluster.kubectl("label", "resourceclaim", "fixed", "team=a")
    assert "labeled" in labelled.stdout


_CLASS_NAME = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.mark.parametrize(
    ("requests", "devices", "expected"),
    [
        pytest.param(
            [{"name": "gpu"}],
            {},
            [
                (
                    "FieldValueRequired",
                    "spec.devices.requests[0]",
                    "Required value: exactly one of `exactly` or `firstAvailable` is required",
                )
            ],
            id="no-shape",
        ),
        pytest.param(
            [{**exactly(), "firstAvailable": [{"name": "a", "deviceClassName": "c"}]}],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0]",
                    "Invalid value: null: exactly one of `exactly` or `firstAvailable` is "
                    "required, but multiple fields are set",
                )
            ],
            id="both-shapes",
        ),
        pytest.param(
            [exactly(allocationMode="Some")],
            {},
            [
                (
                    "FieldValueNotSupported",
                    "spec.devices.requests[0].exactly.allocationMode",
                    'Unsupported value: "Some": supported values: "All", "ExactCount"',
                )
            ],
            id="allocation-mode",
        ),
        pytest.param(
            [exactly(allocationMode="All", count=2)],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.count",
                    "Invalid value: 2: must not be specified when allocationMode is 'All'",
                )
            ],
            id="count-with-all",
        ),
        pytest.param(
            [exactly(count=-1)],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.count",
                    "Invalid value: -1: must be greater than zero",
                )
            ],
            id="negative-count",
        ),
        pytest.param(
            [exactly(deviceClassName="GPU_class")],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.deviceClassName",
                    f'Invalid value: "GPU_class": {_CLASS_NAME}',
                )
            ],
            id="class-name",
        ),
        pytest.param(
            [exactly(selectors=[{"cel": {"expression": "device.driver =="}}])],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.selectors[0].cel.expression",
                    'Invalid value: "device.driver ==": compilation failed: ERROR: <input>:1:17: '
                    "Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', "
                    "'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, "
                    "IDENTIFIER}\n | device.driver ==\n | ................^",
                )
            ],
            id="cel-syntax",
        ),
        pytest.param(
            [exactly(selectors=[{"cel": {"expression": "pod.name == 'x'"}}, {}])],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.selectors[0].cel.expression",
                    "Invalid value: \"pod.name == 'x'\": compilation failed: ERROR: <input>:1:1: "
                    "undeclared reference to 'pod' (in container '')\n | pod.name == 'x'\n | ^",
                ),
                (
                    "FieldValueRequired",
                    "spec.devices.requests[0].exactly.selectors[1].cel",
                    "Required value",
                ),
            ],
            id="cel-undeclared-and-missing",
        ),
        pytest.param(
            [exactly(selectors=[{"cel": {"expression": "'gpu'"}}])],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.selectors[0].cel.expression",
                    "Invalid value: \"'gpu'\": must evaluate to bool or the unknown type, not string",
                )
            ],
            id="cel-not-bool",
        ),
        pytest.param(
            [exactly(), exactly()],
            {},
            [("FieldValueDuplicate", "spec.devices.requests[1]", 'Duplicate value: "gpu"')],
            id="duplicate-request",
        ),
        pytest.param(
            [exactly(f"r{i}") for i in range(33)],
            {},
            [
                (
                    "FieldValueTooMany",
                    "spec.devices.requests",
                    "Too many: 33: must have at most 32 items",
                )
            ],
            id="too-many-requests",
        ),
        pytest.param(
            [exactly()],
            {"constraints": [{"requests": ["gpu/x", "nic"], "matchAttribute": "model"}, {}]},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.constraints[0].requests[0]",
                    f'Invalid value: "gpu/x": {_REF}',
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices.constraints[0].requests[1]",
                    f'Invalid value: "nic": {_REF}',
                ),
                (
                    "FieldValueInvalid",
                    "spec.devices.constraints[0].matchAttribute",
                    'Invalid value: "model": a fully qualified name must be a domain and a name '
                    "separated by a slash",
                ),
                (
                    "FieldValueRequired",
                    "spec.devices.constraints[1]",
                    'Required value: exactly one of "matchAttribute" or "distinctAttribute" is '
                    "required, but multiple fields are set",
                ),
            ],
            id="constraints",
        ),
        pytest.param(
            [exactly()],
            {
                "config": [
                    {"requests": ["gpu"]},
                    {"opaque": {"driver": "gpu.example.com", "parameters": [1]}},
                ]
            },
            [
                ("FieldValueRequired", "spec.devices.config[0].opaque", "Required value"),
                (
                    "FieldValueInvalid",
                    "spec.devices.config[1].opaque.parameters",
                    'Invalid value: "<value omitted>": must be a valid JSON object',
                ),
            ],
            id="config",
        ),
        pytest.param(
            [
                exactly(
                    tolerations=[
                        {"key": "k", "operator": "Exists", "value": "v"},
                        {"operator": "Lt", "effect": "Evict"},
                    ]
                )
            ],
            {},
            [
                (
                    "FieldValueInvalid",
                    "spec.devices.requests[0].exactly.tolerations[0].value",
                    'Invalid value: "v": must be empty for operator `Exists`',
                ),
                (
                    "FieldValueNotSupported",
                    "spec.devices.requests[0].exactly.tolerations[1].operator",
                    'Unsupported value: "Lt": supported values: "Equal", "Exists"',
                ),
                (
                    "FieldValueNotSupported",
                    "spec.devices.requests[0].exactly.tolerations[1].effect",
                    'Unsupported value: "Evict": supported values: "NoExecute", "NoSchedule", "None"',
                ),
            ],
            id="tolerations",
        ),
    ],
)
def test_invalid_claims_are_refused_with_upstreams_causes(
    cluster: InProcessCluster,
    requests: list[Object],
    devices: Object,
    expected: list[tuple[str, str, str]],
) -> None:
    # Raw requests: the official client would refuse some of these bodies itself.
    path = f"/apis/resource.k8s.io/v1/namespaces/{NS}/resourceclaims"
    status = refused_raw(cluster, "POST", path, claim("bad", *requests, **devices))
    assert status["reason"] == "Invalid"
    assert causes(status) == expected


def template(name: str, spec: Object) -> Object:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"metadata": {"labels": {"app": "x"}}, "spec": spec},
    }


def test_templates_are_defaulted_checked_and_fixed(
    cluster: InProcessCluster, dra: client.ResourceV1Api
) -> None:
    created = raw(
        dra.create_namespaced_resource_claim_template(
            NS, template("tmpl", {"devices": {"requests": [exactly()]}}), _preload_content=False
        )
    )
    assert created["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1
    table = rows(cluster.kubectl("get", "resourceclaimtemplates").stdout)
    assert table[0] == ["NAME", "AGE"] and table[1][0] == "tmpl"
    bad = template("bad-tmpl", {"devices": {"requests": [{"name": "x"}]}})
    bad["spec"]["metadata"]["labels"] = {"bad key": "v"}
    status = refused(dra.create_namespaced_resource_claim_template, NS, bad)
    assert [c[:2] for c in causes(status)] == [
        ("FieldValueInvalid", "spec.metadata.labels"),
        ("FieldValueRequired", "spec.spec.devices.requests[0]"),
    ]
    status = refused(
        dra.patch_namespaced_resource_claim_template,
        "tmpl",
        NS,
        {"spec": {"metadata": {"labels": {"app": "y"}}}},
    )
    assert status["message"].startswith(
        'ResourceClaimTemplate.resource.k8s.io "tmpl" is invalid: spec: Invalid value: '
        "resource.ResourceClaimTemplateSpec{ObjectMeta:v1.ObjectMeta{"
    )
    assert status["message"].endswith(": field is immutable")


def test_server_side_apply_and_kubectl_explain(cluster: InProcessCluster) -> None:
    body = claim("applied", exactly(count=2))
    out = cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(body))
    assert "serverside-applied" in out.stdout
    got = json.loads(
        cluster.kubectl(
            "get", "resourceclaim", "applied", "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert got["spec"]["devices"]["requests"][0]["exactly"]["allocationMode"] == "ExactCount"
    managers = [m["manager"] for m in got["metadata"]["managedFields"]]
    assert managers == ["kubectl"]
    explained = cluster.kubectl("explain", "resourceclaims.spec.devices.requests.exactly.count")
    assert "FIELD: count <integer>" in explained.stdout


def test_a_new_allocation_is_checked(dra: client.ResourceV1Api, cluster: InProcessCluster) -> None:
    create(dra, claim("alloc", exactly()))
    allocation = {
        "devices": {
            "results": [
                {
                    "request": "nope",
                    "driver": "gpu.example.com",
                    "pool": "Pool_1",
                    "device": "gpu-0",
                }
            ],
            "config": [
                {"source": "FromPod", "opaque": {"driver": "d.example.com", "parameters": {}}}
            ],
        },
        "nodeSelector": {"nodeSelectorTerms": []},
    }
    path = f"/apis/resource.k8s.io/v1/namespaces/{NS}/resourceclaims/alloc/status"
    current = raw(dra.read_namespaced_resource_claim("alloc", NS, _preload_content=False))
    current["status"] = {"allocation": allocation}
    status = refused_raw(cluster, "PUT", path, current)
    assert [c[:2] for c in causes(status)] == [
        ("FieldValueInvalid", "status.allocation.devices.results[0].request"),
        ("FieldValueInvalid", "status.allocation.devices.results[0].pool"),
        ("FieldValueNotSupported", "status.allocation.devices.config[0].source"),
        ("FieldValueRequired", "status.allocation.nodeSelector.nodeSelectorTerms"),
    ]
    assert causes(status)[2][2] == (
        'Unsupported value: "FromPod": supported values: "FromClaim", "FromClass"'
    )
    assert causes(status)[3][2] == "Required value: must have at least one node selector term"


def test_deallocation_drops_the_devices_status(dra: client.ResourceV1Api) -> None:
    create(dra, claim("dealloc", exactly()))
    result = {"request": "gpu", "driver": "gpu.example.com", "pool": "node-1", "device": "gpu-0"}
    device = {"driver": "gpu.example.com", "pool": "node-1", "device": "gpu-0"}
    allocated = {"allocation": {"devices": {"results": [result]}}, "devices": [device]}
    dra.patch_namespaced_resource_claim_status("dealloc", NS, {"status": allocated})
    read = raw(dra.read_namespaced_resource_claim("dealloc", NS, _preload_content=False))
    # AllocatedDeviceStatus.conditions has no omitempty upstream: an absent list is null.
    assert read["status"]["devices"] == [{**device, "conditions": None}]
    # A merge patch clearing the allocation leaves the device entry in the body; the
    # server removes it with the allocation.
    dra.api_client.call_api(
        "PATCH",
        f"{dra.api_client.configuration.host}/apis/resource.k8s.io/v1/namespaces/{NS}"
        "/resourceclaims/dealloc/status",
        header_params={"Content-Type": "application/merge-patch+json"},
        body={"status": {"allocation": None}},
    ).read()
    read = raw(dra.read_namespaced_resource_claim("dealloc", NS, _preload_content=False))
    assert read["status"] == {}


def test_an_update_checks_metadata_as_create_and_as_update(dra: client.ResourceV1Api) -> None:
    # ValidateResourceClaimUpdate runs ValidateObjectMeta and ValidateObjectMetaUpdate, and
    # both check labels: the cause comes twice, the message (an aggregate) once.
    create(dra, claim("meta", exactly()))
    status = refused(
        dra.patch_namespaced_resource_claim, "meta", NS, {"metadata": {"labels": {"a b": "c"}}}
    )
    assert [c[:2] for c in causes(status)] == [("FieldValueInvalid", "metadata.labels")] * 2
    assert status["message"].count("metadata.labels") == 1
