"""JSON bodies take the shape upstream's Go types give them, the same as protobuf bodies.

The acceptance check reuses the recording fake API server of test_protobuf:
for each ``kubectl create`` there, the protobuf body kubectl POSTs and the
JSON it prints with ``--dry-run=client`` (also stripped of everything Go
adds, as a hand-written manifest would be) must come out of ``go_shape``
exactly as ``protobuf.decode`` renders the protobuf body. A small kajitori
cluster then checks the request path: ``kubectl create`` (protobuf) and
``kubectl apply`` (JSON) of the same Deployment store the same thing.
"""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import pytest
from tests.api import test_protobuf

from kajitori.api import normalize, protobuf
from kajitori.api.core_v1 import defaults
from kajitori.machinery import quantity
from kajitori.testing.cluster import KajitoriCluster

# The recording fake API server and kubectl runner of test_protobuf, reused.
kubectl = test_protobuf.kubectl


def _kubectl_create_cases() -> list[Any]:
    """The ``kubectl create`` argument lists test_protobuf captures bodies for."""
    test = test_protobuf.test_decoding_kubectl_create_bodies_gives_what_kubectl_renders_as_json
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    cases: list[Any] = mark.args[1]
    return cases


def _shaped(obj: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    normalize.go_shape(result)
    return result


def _sparse(value: Any) -> Any:
    """What a person would write: no nulls and no empty objects."""
    if isinstance(value, dict):
        items = ((k, _sparse(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not None and v != {}}
    if isinstance(value, list):
        return [_sparse(v) for v in value]
    return value


def _capture(kubectl: Any, args: list[str]) -> tuple[bytes, dict[str, Any]]:
    home = pathlib.Path(kubectl.env["HOME"])
    args = [a.replace("BLOB", str(home / "blob.bin")) for a in args]
    _, _, body = kubectl.capture("create", *args)
    return body, kubectl.dry_run("create", *args)


# --- acceptance: the JSON path agrees with the protobuf path ------------------------------------


@pytest.mark.skipif(test_protobuf.shutil.which("kubectl") is None, reason="needs kubectl")
@pytest.mark.parametrize("args", _kubectl_create_cases())
def test_kubectl_json_shapes_exactly_as_its_protobuf_body_decodes(
    kubectl: Any, args: list[str]
) -> None:
    """go_shape of kubectl's JSON, full or sparse, equals protobuf.decode of its body."""
    body, rendered = _capture(kubectl, args)
    decoded = protobuf.decode(body)
    assert _shaped(rendered) == decoded
    assert _shaped(_sparse(rendered)) == decoded
    assert _shaped(decoded) == decoded


@pytest.mark.parametrize(
    "sample", [*(p.values[0] for p in test_protobuf._SAMPLES), test_protobuf._POD]
)
def test_shaping_agrees_with_the_protobuf_round_trip(sample: dict[str, Any]) -> None:
    """A JSON object shapes as its protobuf round trip decodes, which shaping leaves alone."""
    round_trip = protobuf.decode(protobuf.encode(sample))
    assert _shaped(sample) == round_trip
    assert _shaped(round_trip) == round_trip


def test_every_kind_without_fields_shapes_as_its_protobuf_round_trip() -> None:
    """For all kinds in the table, an empty object gets the zero shape protobuf decoding gives."""
    mismatched = []
    for key in protobuf._table().kinds:
        api_version, kind = key.rsplit("/", 1)
        obj = {"apiVersion": api_version, "kind": kind}
        if _shaped(obj) != protobuf.decode(protobuf.encode(obj)):
            mismatched.append(key)
    assert mismatched == []


# --- the rules ---------------------------------------------------------------------------------

_CONTAINER = {"name": "c", "image": "nginx"}


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            _pod({"containers": [_CONTAINER]}),
            {
                **_pod({"containers": [{**_CONTAINER, "resources": {}}]}),
                "status": {},
            },
            id="pod-container-without-resources-gets-empty-resources-and-status",
        ),
        pytest.param(
            _pod(
                {
                    "containers": [
                        {
                            **_CONTAINER,
                            "resources": {
                                "limits": {"cpu": 0.5, "memory": "1024Mi"},
                                "requests": {"cpu": 1, "memory": " 1.5Gi "},
                            },
                        }
                    ]
                }
            ),
            {
                **_pod(
                    {
                        "containers": [
                            {
                                **_CONTAINER,
                                "resources": {
                                    "limits": {"cpu": "500m", "memory": "1Gi"},
                                    "requests": {"cpu": "1", "memory": "1536Mi"},
                                },
                            }
                        ]
                    }
                ),
                "status": {},
            },
            id="quantities-become-canonical-strings",
        ),
        pytest.param(
            _pod(
                {
                    "containers": [{**_CONTAINER, "tty": False, "command": [], "stdin": True}],
                    "hostNetwork": False,
                    "nodeSelector": {},
                    "priority": 0,
                    "securityContext": None,
                    "terminationGracePeriodSeconds": None,
                }
            ),
            {
                **_pod(
                    {
                        "containers": [{**_CONTAINER, "stdin": True, "resources": {}}],
                        "priority": 0,
                    }
                ),
                "status": {},
            },
            id="omitempty-zeros-and-nil-pointers-vanish-but-set-pointers-keep-zero",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "labels": {"app": "d"}},
                "spec": {
                    "replicas": None,
                    "template": {"spec": {"containers": [_CONTAINER]}},
                },
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "labels": {"app": "d"}},
                "spec": {
                    "selector": None,
                    "template": {
                        "metadata": {},
                        "spec": {"containers": [{**_CONTAINER, "resources": {}}]},
                    },
                    "strategy": {},
                },
                "status": {},
            },
            id="deployment-template-metadata-and-strategy-appear-selector-is-null",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {
                    "ports": [
                        {"port": 80},
                        {"port": 81, "targetPort": "http"},
                        {"port": 82, "targetPort": 8080, "nodePort": 0},
                        {"targetPort": None},
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {
                    "ports": [
                        {"port": 80, "targetPort": 0},
                        {"port": 81, "targetPort": "http"},
                        {"port": 82, "targetPort": 8080},
                        {"port": 0, "targetPort": 0},
                    ]
                },
                "status": {"loadBalancer": {}},
            },
            id="service-target-port-keeps-int-or-string-and-zero-port-appears",
        ),
        pytest.param(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
                "rules": [],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
                "rules": None,
            },
            id="empty-slice-without-omitempty-reads-back-null-as-after-storage",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": "e",
                    "creationTimestamp": None,
                    "deletionTimestamp": "2024-05-06T09:08:09.75+02:00",
                },
                "involvedObject": {},
                "eventTime": "2024-05-06T07:08:09.1234567Z",
                "lastTimestamp": None,
            },
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "e", "deletionTimestamp": "2024-05-06T07:08:09Z"},
                "involvedObject": {},
                "source": {},
                "firstTimestamp": None,
                "lastTimestamp": None,
                "eventTime": "2024-05-06T07:08:09.123456Z",
                "reportingComponent": "",
                "reportingInstance": "",
            },
            id="times-are-utc-zero-times-null-and-omitzero-creation-timestamp-vanishes",
        ),
        pytest.param(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "w"},
                "webhooks": [{"name": "a.b.c", "clientConfig": {"caBundle": "YWJj\nZA=="}}],
            },
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "w"},
                "webhooks": [
                    {
                        "name": "a.b.c",
                        "clientConfig": {"caBundle": "YWJjZA=="},
                        "sideEffects": None,
                        "admissionReviewVersions": None,
                    }
                ],
            },
            id="bytes-are-re-encoded-as-go-does",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": {"a": None}},
                "data": {"k": None},
                "binaryData": {"b": None},
                "unknownField": None,
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": {"a": ""}},
                "data": {"k": ""},
                "binaryData": {"b": ""},
                "unknownField": None,
            },
            id="null-map-values-are-zero-and-unknown-fields-are-left-for-pruning",
        ),
        pytest.param(
            {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": None, "cpu": 0.5}},
            {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": None, "cpu": 0.5}},
            id="custom-resources-are-untouched",
        ),
    ],
)
def test_objects_take_the_shape_of_upstream_go_types(
    obj: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Missing structs, nulls, zeros, quantities, times and bytes render as Go renders them."""
    normalize.go_shape(obj)
    assert obj == expected


def test_shaping_twice_changes_nothing() -> None:
    """go_shape is idempotent, so re-shaping a stored object on update is harmless."""
    pod = _shaped(_pod({"containers": [{**_CONTAINER, "resources": {"limits": {"cpu": 0.1}}}]}))
    assert _shaped(pod) == pod


def test_remembered_shapes_are_fresh_and_equal_to_a_first_shaping() -> None:
    """A repeated spec or container is shaped from memory: the same result, a new object."""
    spec = {
        "containers": [{**_CONTAINER, "resources": {"limits": {"cpu": 0.1, "memory": "1Gi"}}}],
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": None}],
    }
    first = _shaped(_pod(copy.deepcopy(spec)))
    again = _pod(copy.deepcopy(spec))
    normalize.go_shape(again)
    assert again == first
    third = _pod(copy.deepcopy(spec))
    normalize.go_shape(third)
    assert third["spec"] == first["spec"]
    assert third["spec"] is not again["spec"]
    third["spec"]["containers"][0]["name"] = "changed"
    assert again["spec"]["containers"][0]["name"] == _CONTAINER["name"]


def test_remembered_shapes_tell_numbers_from_booleans_and_floats() -> None:
    """Values equal in Python but not in JSON (1, 1.0, true) are remembered apart."""
    shaped = []
    for grace in (1, 1.0, True):
        pod = _pod({"containers": [dict(_CONTAINER)], "terminationGracePeriodSeconds": grace})
        normalize.go_shape(pod)
        shaped.append(pod["spec"]["terminationGracePeriodSeconds"])
    assert [type(v) for v in shaped] == [int, float, bool]


def test_an_invalid_quantity_raises_every_time_it_is_shaped() -> None:
    """Nothing is remembered of a value that failed to shape."""
    for _ in range(2):
        pod = _pod({"containers": [{**_CONTAINER, "resources": {"requests": {"cpu": "abc"}}}]})
        with pytest.raises(ValueError):
            normalize.go_shape(pod)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("abc", quantity.FORMAT_WRONG_MESSAGE, id="letters"),
        pytest.param("", quantity.FORMAT_WRONG_MESSAGE, id="empty"),
        pytest.param(True, quantity.FORMAT_WRONG_MESSAGE, id="boolean"),
        pytest.param("32MMi", quantity.SUFFIX_MESSAGE, id="bad-suffix"),
    ],
)
def test_invalid_quantities_raise_upstreams_decoder_message(value: Any, message: str) -> None:
    """An undecodable quantity raises ValueError with the text upstream's decoder gives."""
    pod = _pod({"containers": [{**_CONTAINER, "resources": {"requests": {"cpu": value}}}]})
    with pytest.raises(ValueError) as excinfo:
        normalize.go_shape(pod)
    assert str(excinfo.value) == message


def test_bad_base64_in_a_bytes_field_raises_gos_message() -> None:
    """A []byte field that is not base64 fails to decode, as in Go."""
    csr = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "c"},
        "spec": {"request": "abcde", "signerName": "x"},
    }
    with pytest.raises(ValueError, match=r"^illegal base64 data at input byte 4$"):
        normalize.go_shape(csr)


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param({"cpu": "100u"}, {"cpu": "1m"}, id="micro-rounds-up-to-a-milli"),
        pytest.param({"cpu": "-100u"}, {"cpu": "-1m"}, id="away-from-zero"),
        pytest.param(
            {"cpu": "1500m", "memory": "1Gi"}, {"cpu": "1500m", "memory": "1Gi"}, id="kept"
        ),
        pytest.param({"memory": "1n"}, {"memory": "1m"}, id="nano"),
        pytest.param({"cpu": "abc"}, {"cpu": "abc"}, id="invalid-left-for-validation"),
    ],
)
def test_resource_list_defaulting_rounds_up_to_milli_precision(
    resources: dict[str, Any], expected: dict[str, Any]
) -> None:
    """set_defaults_resource_list rounds up to milli units, as upstream's SetDefaults_ResourceList."""
    defaults.set_defaults_resource_list(resources)
    assert resources == expected


# --- through the server ------------------------------------------------------------------------

_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied
  labels: {app: same}
spec:
  selector: {matchLabels: {app: same}}
  template:
    metadata:
      labels: {app: same}
    spec:
      containers:
      - name: nginx
        image: nginx
"""


@pytest.mark.skipif(test_protobuf.shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_create_and_apply_of_one_deployment_store_the_same_spec(
    cluster: KajitoriCluster, tmp_path: pathlib.Path
) -> None:
    """The protobuf path (create) and the JSON path (apply) store identical objects."""
    cluster.kubectl("create", "deployment", "created", "--image=nginx", "--replicas=1")
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_DEPLOYMENT.replace("same", "created"))
    cluster.kubectl("apply", "-f", str(manifest))

    def spec(name: str) -> Any:
        obj = json.loads(cluster.kubectl("get", "deployment", name, "-o", "json").stdout)
        return obj["spec"]

    assert spec("applied") == spec("created")


@pytest.mark.skipif(test_protobuf.shutil.which("kubectl") is None, reason="needs kubectl")
def test_an_invalid_quantity_is_a_bad_request_naming_the_kind(
    cluster: KajitoriCluster, tmp_path: pathlib.Path
) -> None:
    """Applying a Pod with ``cpu: abc`` fails with upstream's 400 message."""
    manifest = tmp_path / "p.yaml"
    pod = _pod({"containers": [{**_CONTAINER, "resources": {"limits": {"cpu": "abc"}}}]})
    manifest.write_text(json.dumps(pod))
    result = cluster.kubectl("apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert (
        'Error from server (BadRequest): error when creating "'
        + str(manifest)
        + '": Pod in version "v1" cannot be handled as a Pod: '
        + quantity.FORMAT_WRONG_MESSAGE
    ) in result.stderr


@pytest.mark.skipif(test_protobuf.shutil.which("kubectl") is None, reason="needs kubectl")
def test_patched_objects_are_shaped_and_undecodable_patches_are_invalid(
    cluster: KajitoriCluster,
) -> None:
    """A merge patch's quantities are stored canonical; an invalid one is a 422 on ``patch``."""
    cluster.kubectl("create", "deployment", "patched", "--image=nginx")
    limits = '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","resources":{"limits":{"cpu":%s}}}]}}}}'
    cluster.kubectl("patch", "deployment", "patched", "--type=strategic", "-p", limits % "0.5")
    obj = json.loads(cluster.kubectl("get", "deployment", "patched", "-o", "json").stdout)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"cpu": "500m"}}
    bad = cluster.kubectl(
        "patch", "deployment", "patched", "--type=strategic", "-p", limits % '"abc"', check=False
    )
    assert bad.returncode != 0
    assert 'is invalid: patch: Invalid value: "{' in bad.stderr
    assert bad.stderr.rstrip().endswith(quantity.FORMAT_WRONG_MESSAGE)
