"""Bad input gets upstream's answer and changes nothing.

Each case sends one malformed or refused request over raw HTTPS and checks
the ``metav1.Status`` (code, reason, message, causes) against what
kube-apiserver sends, then checks that storage is exactly as before: the
names and resourceVersions of every object the request could have touched.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.e2e.https import https_client

from kajitori.testing.cluster import KajitoriCluster

NS = "bad"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
JSON = "application/json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
MIB = 1 << 20

_NAME_RULES = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    r"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_UNRECOGNIZED = "the object provided is unrecognized (must be of type ConfigMap): "


@dataclass(frozen=True)
class Fixture:
    http: httpx.Client
    stale_rv: str


@pytest.fixture(scope="module")
def bad(cluster: KajitoriCluster) -> Iterator[Fixture]:
    """A namespace with one ConfigMap, updated once so its first resourceVersion is stale."""
    with https_client(cluster.kubeconfig) as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
        cluster.wait_for_namespace_defaults(NS)
        first = http.post(CONFIGMAPS, json={"metadata": {"name": "existing"}, "data": {"a": "1"}})
        first.raise_for_status()
        patch = json.dumps({"data": {"a": "2"}})
        http.patch(f"{CONFIGMAPS}/existing", content=patch, headers={"Content-Type": MERGE})
        yield Fixture(http, first.json()["metadata"]["resourceVersion"])


def snapshot(http: httpx.Client) -> dict[str, dict[str, str]]:
    """Name → resourceVersion of everything a bad request here could have written."""
    state: dict[str, dict[str, str]] = {}
    for path in (
        CONFIGMAPS,
        SECRETS,
        DEPLOYMENTS,
        "/api/v1/namespaces",
        "/api/v1/namespaces/nope/configmaps",
    ):
        listed = http.get(path).json()
        state[path] = {
            f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']}": i["metadata"][
                "resourceVersion"
            ]
            for i in listed["items"]
        }
    return state


@dataclass(frozen=True)
class Case:
    """One bad request and upstream's answer to it."""

    method: str
    path: str
    body: bytes
    code: int
    reason: str
    message: str
    content_type: str = JSON
    params: dict[str, str] = field(default_factory=dict)
    # Match only the start of the message where the tail is a Go runtime detail.
    prefix: bool = False
    causes: tuple[tuple[str, str, str], ...] | None = None


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _secret_over_limit() -> bytes:
    half = base64.b64encode(b"x" * (MIB // 2)).decode()
    more = base64.b64encode(b"x" * (MIB // 2 + 1)).decode()
    return _json({"metadata": {"name": "huge"}, "data": {"a": half, "b": more}})


CASES = [
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            b'{"kind":"ConfigMap",',
            400,
            "BadRequest",
            _UNRECOGNIZED + "couldn't get version/kind; json parse error: "
            'unexpected end of JSON input ({"kind":"ConfigMap",)',
        ),
        id="truncated-json",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            b'{"metadata": {"name": x}}',
            400,
            "BadRequest",
            _UNRECOGNIZED + "couldn't get version/kind; json parse error: "
            "invalid character 'x' looking for beginning of value "
            '({"metadata": {"name": x}})',
        ),
        id="invalid-json-token",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            b"[1,2]",
            400,
            "BadRequest",
            _UNRECOGNIZED + "couldn't get version/kind; json parse error: json: cannot unmarshal "
            'array into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
            'Kind string "json:\\"kind,omitempty\\"" } (5b312c325d)',
        ),
        id="json-array",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            b"",
            400,
            "BadRequest",
            _UNRECOGNIZED
            + "couldn't get version/kind; json parse error: unexpected end of JSON input (<empty>)",
        ),
        id="empty-body",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            b"kind: ConfigMap\nmetadata: [\n",
            400,
            "BadRequest",
            _UNRECOGNIZED + "error converting YAML to JSON: yaml: ",
            content_type="application/yaml",
            prefix=True,
        ),
        id="malformed-yaml",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
            400,
            "BadRequest",
            'Secret in version "v1" cannot be handled as a ConfigMap',
            prefix=True,
        ),
        id="wrong-kind",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "s"}}),
            400,
            "BadRequest",
            "",
            prefix=True,
        ),
        id="wrong-api-version",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {"name": "typed"}, "data": {"a": 1}}),
            400,
            "BadRequest",
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '
            "number into Go struct field ConfigMap.data of type string",
        ),
        id="wrong-type-map-value",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {"name": "typed", "labels": "x"}}),
            400,
            "BadRequest",
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '
            "string into Go struct field ObjectMeta.metadata.labels of type map[string]string",
        ),
        id="wrong-type-labels",
    ),
    pytest.param(
        Case(
            "POST",
            DEPLOYMENTS,
            _json({"metadata": {"name": "typed"}, "spec": {"replicas": "3"}}),
            400,
            "BadRequest",
            'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
            "string into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        id="wrong-type-int32",
    ),
    pytest.param(
        Case(
            "POST",
            DEPLOYMENTS,
            _json(
                {
                    "metadata": {"name": "typed"},
                    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": 5}]}}},
                }
            ),
            400,
            "BadRequest",
            'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
            "number into Go struct field Container.spec.template.spec.containers.image of type string",
        ),
        id="wrong-type-in-list-item",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {"name": "u"}, "data": {}, "spec": {"x": 1}, "extra": True}),
            400,
            "BadRequest",
            'strict decoding error: unknown field "spec", unknown field "extra"',
            params={"fieldValidation": "Strict"},
        ),
        id="unknown-fields-strict",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {"name": "Bad_Name"}}),
            422,
            "Invalid",
            f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {_NAME_RULES}',
            causes=(
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "Bad_Name": {_NAME_RULES}',
                ),
            ),
        ),
        id="invalid-name",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {}}),
            422,
            "Invalid",
            'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required',
            causes=(
                (
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ),
            ),
        ),
        id="missing-name",
    ),
    pytest.param(
        Case(
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            _json({"metadata": {"name": "orphan"}}),
            404,
            "NotFound",
            'namespaces "nope" not found',
        ),
        id="missing-namespace",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {"name": "huge"}, "data": {"x": "a" * (4 * MIB)}}),
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        ),
        id="oversize-body",
    ),
    pytest.param(
        Case(
            "POST",
            SECRETS,
            _secret_over_limit(),
            422,
            "Invalid",
            'Secret "huge" is invalid: data: Too long: may not be more than 1048576 bytes',
            causes=(("FieldValueTooLong", "data", "Too long: may not be more than 1048576 bytes"),),
        ),
        id="oversize-secret",
    ),
    pytest.param(
        Case(
            "POST",
            CONFIGMAPS,
            _json({"metadata": {"name": "existing"}}),
            409,
            "AlreadyExists",
            'configmaps "existing" already exists',
        ),
        id="already-exists",
    ),
    pytest.param(
        Case(
            "PUT",
            f"{CONFIGMAPS}/existing",
            _json({"metadata": {"name": "other"}}),
            400,
            "BadRequest",
            "the name of the object (other) does not match the name on the URL (existing)",
        ),
        id="put-name-mismatch",
    ),
    pytest.param(
        Case(
            "PATCH",
            f"{CONFIGMAPS}/existing",
            _json([{"op": "test", "path": "/data/a", "value": "nope"}]),
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            content_type=JSON_PATCH,
        ),
        id="json-patch-test-fails",
    ),
    pytest.param(
        Case(
            "PATCH",
            f"{CONFIGMAPS}/existing",
            _json([{"op": "remove", "path": "/data/missing"}]),
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            content_type=JSON_PATCH,
        ),
        id="json-patch-missing-path",
    ),
    pytest.param(
        Case(
            "PATCH",
            f"{CONFIGMAPS}/existing",
            _json({"data": {"a": 3}}),
            422,
            "Invalid",
            ' "" is invalid: patch: Invalid value: "{',
            content_type=MERGE,
            prefix=True,
        ),
        id="patch-result-wrong-type",
    ),
    pytest.param(
        Case(
            "PATCH",
            f"{CONFIGMAPS}/existing",
            _json({"data": {"a": "3"}}),
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: ",
            content_type="text/plain",
            prefix=True,
        ),
        id="patch-unsupported-type",
    ),
    pytest.param(
        Case(
            "PATCH",
            f"{CONFIGMAPS}/nope",
            _json({"data": {"a": "3"}}),
            404,
            "NotFound",
            'configmaps "nope" not found',
            content_type=MERGE,
        ),
        id="patch-missing-object",
    ),
    pytest.param(
        Case(
            "DELETE",
            f"{CONFIGMAPS}/existing",
            _json({"preconditions": {"uid": "not-the-uid"}}),
            409,
            "Conflict",
            'Operation cannot be fulfilled on configmaps "existing": Precondition failed: '
            "UID in precondition: not-the-uid, UID in object meta: ",
            prefix=True,
        ),
        id="delete-uid-precondition",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_request_gets_upstream_status_and_writes_nothing(bad: Fixture, case: Case) -> None:
    """The answer is upstream's Status for this mistake, and storage is untouched."""
    before = snapshot(bad.http)
    headers = {"Content-Type": case.content_type}
    if len(case.body) > 64 * 1024:
        headers["Connection"] = "close"  # see test_secrets_e2e: keep-alive after large bodies
    r = bad.http.request(
        case.method, case.path, content=case.body, params=case.params, headers=headers
    )
    status = r.json()
    assert (r.status_code, status["kind"], status["status"]) == (case.code, "Status", "Failure")
    assert status["code"] == case.code
    assert status["reason"] == case.reason
    if case.prefix:
        assert status["message"].startswith(case.message), status["message"]
    else:
        assert status["message"] == case.message
    if case.code == 422 and case.content_type == MERGE:
        # The cause is Go's decode error for the patched document.
        [cause] = status["details"]["causes"]
        assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "patch")
        assert cause["message"].endswith(
            "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
        )
    if case.causes is not None:
        got = tuple((c["reason"], c["field"], c["message"]) for c in status["details"]["causes"])
        assert got == case.causes
    assert snapshot(bad.http) == before


def test_stale_resource_version_is_a_conflict_and_writes_nothing(bad: Fixture) -> None:
    """PUT with a superseded resourceVersion is 409 Conflict; the stored object is unchanged."""
    before = snapshot(bad.http)
    body = {"metadata": {"name": "existing", "resourceVersion": bad.stale_rv}, "data": {"a": "x"}}
    r = bad.http.put(f"{CONFIGMAPS}/existing", json=body)
    status = r.json()
    assert r.status_code == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "existing": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": "existing", "kind": "configmaps"}
    assert snapshot(bad.http) == before
    assert bad.http.get(f"{CONFIGMAPS}/existing").json()["data"] == {"a": "2"}


def test_stale_resource_version_in_a_patch_is_a_conflict(bad: Fixture) -> None:
    """A patch that pins an old resourceVersion is refused like an update."""
    before = snapshot(bad.http)
    patch = {"metadata": {"resourceVersion": bad.stale_rv}, "data": {"a": "x"}}
    r = bad.http.patch(
        f"{CONFIGMAPS}/existing", content=_json(patch), headers={"Content-Type": MERGE}
    )
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict"
    assert snapshot(bad.http) == before


def test_dry_run_of_a_valid_request_writes_nothing(bad: Fixture) -> None:
    """The snapshot check itself sees writes: a dry run leaves it equal, a real write does not."""
    before = snapshot(bad.http)
    body = {"metadata": {"name": "probe"}}
    assert bad.http.post(CONFIGMAPS, json=body, params={"dryRun": "All"}).status_code == 201
    assert snapshot(bad.http) == before
    assert bad.http.post(CONFIGMAPS, json=body).status_code == 201
    assert snapshot(bad.http) != before
