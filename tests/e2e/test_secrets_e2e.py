"""Secrets (and ConfigMaps' shared rules) end to end, exactly as upstream validates them.

Covers every built-in Secret type's required keys, base64 ``data`` and the
write-only ``stringData``, byte-exact binary values, key-name rules, the
1 MiB size limit and immutability, each with upstream's status code,
message and causes (pkg/apis/core/validation: ValidateSecret,
ValidateSecretUpdate, ValidateConfigMap, ValidateConfigMapUpdate).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.https import https_client

from kajitori.testing.cluster import KajitoriCluster

NS = "secrets"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
MIB = 1 << 20
# Large bodies go on a connection of their own (see test_keep_alive_after_a_large_body).
CLOSE = {"Connection": "close"}


@pytest.fixture(scope="module")
def http(cluster: KajitoriCluster) -> Iterator[httpx.Client]:
    with https_client(cluster.kubeconfig) as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
        yield c


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def secret(name: str, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if "annotations" in fields:
        meta["annotations"] = fields.pop("annotations")
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, **fields}


def invalid(r: httpx.Response, kind: str, name: str) -> dict[str, Any]:
    """The 422 Invalid Status of ``r``, checked for upstream's envelope."""
    assert r.status_code == 422, r.text
    status: dict[str, Any] = r.json()
    assert (status["kind"], status["status"], status["reason"]) == ("Status", "Failure", "Invalid")
    assert status["details"]["name"] == name
    assert status["details"]["kind"] == kind
    assert status["message"].startswith(f'{kind} "{name}" is invalid: ')
    return status


def causes(status: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in status["details"]["causes"]]


# ----- types and their required keys ----------------------------------------------------

_REQUIRED = "Required value"


@pytest.mark.parametrize(
    ("secret_type", "missing", "valid"),
    [
        pytest.param(
            "kubernetes.io/service-account-token",
            ["metadata.annotations[kubernetes.io/service-account.name]"],
            {"annotations": {"kubernetes.io/service-account.name": "default"}},
            id="service-account-token",
        ),
        pytest.param(
            "kubernetes.io/dockercfg",
            ["data[.dockercfg]"],
            {"data": {".dockercfg": b64("{}")}},
            id="dockercfg",
        ),
        pytest.param(
            "kubernetes.io/dockerconfigjson",
            ["data[.dockerconfigjson]"],
            {"data": {".dockerconfigjson": b64('{"auths":{}}')}},
            id="dockerconfigjson",
        ),
        pytest.param(
            "kubernetes.io/basic-auth",
            # Upstream builds these paths from the literal "data[%s]".
            ["data[%s][username]", "data[%s][password]"],
            {"data": {"password": b64("")}},
            id="basic-auth",
        ),
        pytest.param(
            "kubernetes.io/ssh-auth",
            ["data[%s][ssh-privatekey]"],
            {"stringData": {"ssh-privatekey": "KEY"}},
            id="ssh-auth",
        ),
        pytest.param(
            "kubernetes.io/tls",
            ["data[tls.crt]", "data[tls.key]"],
            {"data": {"tls.crt": b64("C"), "tls.key": b64("K")}},
            id="tls",
        ),
    ],
)
def test_builtin_type_requires_its_keys(
    http: httpx.Client, secret_type: str, missing: list[str], valid: dict[str, Any]
) -> None:
    """Without its keys each built-in type is 422 with one Required cause per key; with them, 201."""
    name = secret_type.rsplit("/", 1)[-1].replace(".", "-")
    status = invalid(http.post(SECRETS, json=secret(name, type=secret_type)), "Secret", name)
    assert causes(status) == [("FieldValueRequired", f, _REQUIRED) for f in missing]
    details = ", ".join(f"{f}: {_REQUIRED}" for f in missing)
    expected = details if len(missing) == 1 else f"[{details}]"
    assert status["message"] == f'Secret "{name}" is invalid: {expected}'

    created = http.post(SECRETS, json=secret(name, type=secret_type, **valid))
    assert created.status_code == 201, created.text
    assert created.json()["type"] == secret_type


@pytest.mark.parametrize(
    "secret_type", ["Opaque", "bootstrap.kubernetes.io/token", "example.com/custom"]
)
def test_types_without_required_keys_accept_an_empty_secret(
    http: httpx.Client, secret_type: str
) -> None:
    """Opaque, bootstrap tokens and custom types need no particular keys."""
    name = "empty-" + secret_type.rsplit("/", 1)[-1].replace(".", "-").lower()
    r = http.post(SECRETS, json=secret(name, type=secret_type))
    assert r.status_code == 201
    assert r.json()["type"] == secret_type


def test_type_defaults_to_opaque(http: httpx.Client) -> None:
    """A Secret created without a type is Opaque."""
    assert http.post(SECRETS, json=secret("untyped")).json()["type"] == "Opaque"


def test_dockercfg_must_be_json(http: httpx.Client) -> None:
    """A .dockercfg that is not JSON is invalid, its contents redacted from the message."""
    body = secret("badcfg", type="kubernetes.io/dockercfg", stringData={".dockercfg": "{nope"})
    status = invalid(http.post(SECRETS, json=body), "Secret", "badcfg")
    [(reason, field, message)] = causes(status)
    assert (reason, field) == ("FieldValueInvalid", "data[.dockercfg]")
    assert message.startswith('Invalid value: "<secret contents redacted>": invalid character')
    assert "nope" not in status["message"]


# ----- data and stringData ---------------------------------------------------------------


def test_string_data_is_merged_into_data_and_never_stored(http: httpx.Client) -> None:
    """stringData overrides data key by key, is base64-encoded into data, and is not kept."""
    body = secret(
        "merged",
        data={"a": b64("old"), "keep": b64("k")},
        stringData={"a": "new", "s": "plain"},
    )
    created = http.post(SECRETS, json=body)
    assert created.status_code == 201
    for answer in (created.json(), http.get(f"{SECRETS}/merged").json()):
        assert answer["data"] == {"a": b64("new"), "keep": b64("k"), "s": b64("plain")}
        assert "stringData" not in answer

    updated = http.patch(
        f"{SECRETS}/merged", json={"stringData": {"keep": "changed"}}, headers=MERGE
    )
    assert updated.json()["data"]["keep"] == b64("changed")
    assert "stringData" not in http.get(f"{SECRETS}/merged").json()


def test_every_byte_value_round_trips_exactly(http: httpx.Client) -> None:
    """All 256 byte values (and invalid UTF-8) come back byte for byte."""
    every = bytes(range(256))
    blobs = {"all": every, "reversed": every[::-1], "nul": b"\x00", "not-utf8": b"\xff\xfe\xc0"}
    body = secret("binary", data={k: b64(v) for k, v in blobs.items()})
    assert http.post(SECRETS, json=body).status_code == 201
    stored = http.get(f"{SECRETS}/binary").json()["data"]
    assert {k: base64.b64decode(v) for k, v in stored.items()} == blobs


def test_empty_value_is_kept(http: httpx.Client) -> None:
    """An empty value is a present key, not a missing one."""
    assert http.post(SECRETS, json=secret("emptyval", data={"e": ""})).status_code == 201
    assert http.get(f"{SECRETS}/emptyval").json()["data"] == {"e": ""}


_KEY_REGEX_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        pytest.param("a b", _KEY_REGEX_MESSAGE, id="space"),
        pytest.param("a/b", _KEY_REGEX_MESSAGE, id="slash"),
        pytest.param(".", "must not be '.'", id="dot"),
        pytest.param("..", "must not be '..'", id="dot-dot"),
        pytest.param("..x", "must not start with '..'", id="leading-dot-dot"),
        pytest.param("k" * 254, "must be no more than 253 characters", id="too-long"),
    ],
)
def test_invalid_key_names_are_refused(http: httpx.Client, key: str, detail: str) -> None:
    """Keys follow IsConfigMapKey: the cause names the key and quotes it."""
    status = invalid(http.post(SECRETS, json=secret("badkey", data={key: ""})), "Secret", "badkey")
    assert causes(status) == [
        ("FieldValueInvalid", f"data[{key}]", f'Invalid value: "{key}": {detail}')
    ]


@pytest.mark.parametrize("key", ["a", "A_B-c.d", ".dotfile", "k" * 253], ids=str.__len__)
def test_valid_key_names_are_accepted(http: httpx.Client, key: str) -> None:
    """Letters, digits, '-', '_', '.', a single leading dot, up to 253 characters."""
    name = f"goodkey-{len(key)}-{key[0].lower().replace('.', 'dot')}"
    assert http.post(SECRETS, json=secret(name, data={key: ""})).status_code == 201


# ----- size -------------------------------------------------------------------------------


def test_one_mib_of_data_is_allowed_one_byte_more_is_not(http: httpx.Client) -> None:
    """The sum of all values may be 1 MiB; one byte more is 422 TooLong on data."""
    half = b"x" * (MIB // 2)
    at_limit = secret("at-limit", data={"a": b64(half), "b": b64(half)})
    assert http.post(SECRETS, json=at_limit, headers=CLOSE).status_code == 201

    over = secret("over-limit", data={"a": b64(half), "b": b64(half + b"y")})
    status = invalid(http.post(SECRETS, json=over, headers=CLOSE), "Secret", "over-limit")
    assert status["message"] == (
        'Secret "over-limit" is invalid: data: Too long: may not be more than 1048576 bytes'
    )
    assert causes(status) == [
        ("FieldValueTooLong", "data", "Too long: may not be more than 1048576 bytes")
    ]
    assert http.get(f"{SECRETS}/over-limit").status_code == 404


def test_keep_alive_after_a_large_body(cluster: KajitoriCluster) -> None:
    """After requests with 100 KB bodies, the same connection serves the next request."""
    with https_client(cluster.kubeconfig, timeout=3) as c:
        for i in range(5):
            body = {"metadata": {"name": f"big-cm-{i}"}, "data": {"x": "x" * 100_000}}
            assert c.post(CONFIGMAPS, json=body).status_code == 201
            assert c.get("/version").status_code == 200


# ----- immutability ----------------------------------------------------------------------

_IMMUTABLE = "Forbidden: field is immutable when `immutable` is set"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"data": {"a": b64("other")}}, "data", id="change-value"),
        pytest.param({"data": {"new": b64("v")}}, "data", id="add-key"),
        pytest.param({"stringData": {"a": "other"}}, "data", id="via-stringData"),
        pytest.param({"immutable": False}, "immutable", id="unset-immutable"),
    ],
)
def test_immutable_secret_refuses_data_changes(
    http: httpx.Client, change: dict[str, Any], field: str
) -> None:
    """Once immutable, a Secret's data and its immutable flag are Forbidden to change."""
    name = "frozen"
    if http.get(f"{SECRETS}/{name}").status_code == 404:
        body = secret(name, data={"a": b64("v")}, immutable=True)
        assert http.post(SECRETS, json=body).status_code == 201
    status = invalid(http.patch(f"{SECRETS}/{name}", json=change, headers=MERGE), "Secret", name)
    assert status["message"] == f'Secret "{name}" is invalid: {field}: {_IMMUTABLE}'
    assert http.get(f"{SECRETS}/{name}").json()["data"] == {"a": b64("v")}


def test_immutable_secret_metadata_may_change(http: httpx.Client) -> None:
    """Labels of an immutable Secret may still be edited."""
    body = secret("frozen-meta", data={"a": b64("v")}, immutable=True)
    assert http.post(SECRETS, json=body).status_code == 201
    patch = {"metadata": {"labels": {"team": "x"}}}
    r = http.patch(f"{SECRETS}/frozen-meta", json=patch, headers=MERGE)
    assert r.status_code == 200
    assert r.json()["metadata"]["labels"] == {"team": "x"}


def test_secret_type_is_immutable(http: httpx.Client) -> None:
    """Changing type is Invalid: field is immutable (reported before the new type's rules)."""
    assert http.post(SECRETS, json=secret("typed", data={"a": b64("v")})).status_code == 201
    r = http.patch(f"{SECRETS}/typed", json={"type": "kubernetes.io/tls"}, headers=MERGE)
    status = invalid(r, "Secret", "typed")
    assert causes(status)[0] == (
        "FieldValueInvalid",
        "type",
        'Invalid value: "kubernetes.io/tls": field is immutable',
    )
    assert http.get(f"{SECRETS}/typed").json()["type"] == "Opaque"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"data": {"a": "2"}}, "data", id="data"),
        pytest.param({"binaryData": {"b": b64(b"\x00\x02")}}, "binaryData", id="binaryData"),
        pytest.param({"immutable": False}, "immutable", id="immutable"),
    ],
)
def test_immutable_configmap_refuses_changes(
    http: httpx.Client, change: dict[str, Any], field: str
) -> None:
    """An immutable ConfigMap forbids changing data, binaryData and the flag itself."""
    name = "frozen-cm"
    if http.get(f"{CONFIGMAPS}/{name}").status_code == 404:
        body = {
            "metadata": {"name": name},
            "data": {"a": "1"},
            "binaryData": {"b": b64(b"\x00\x01")},
            "immutable": True,
        }
        assert http.post(CONFIGMAPS, json=body).status_code == 201
    r = http.patch(f"{CONFIGMAPS}/{name}", json=change, headers=MERGE)
    status = invalid(r, "ConfigMap", name)
    assert status["message"] == f'ConfigMap "{name}" is invalid: {field}: {_IMMUTABLE}'
    stored = http.get(f"{CONFIGMAPS}/{name}").json()
    assert (stored["data"], stored["binaryData"]) == ({"a": "1"}, {"b": b64(b"\x00\x01")})


def test_configmap_key_in_both_data_and_binary_data_is_invalid(http: httpx.Client) -> None:
    """A key may not be in data and binaryData at once."""
    body = {"metadata": {"name": "dupkey"}, "data": {"a": "1"}, "binaryData": {"a": b64("1")}}
    status = invalid(http.post(CONFIGMAPS, json=body), "ConfigMap", "dupkey")
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "data[a]",
            'Invalid value: "a": duplicate of key present in binaryData',
        )
    ]


def test_configmap_binary_data_round_trips(http: httpx.Client) -> None:
    """binaryData keeps every byte value exactly."""
    every = bytes(range(256))
    body = {"metadata": {"name": "bin-cm"}, "binaryData": {"all": b64(every)}}
    assert http.post(CONFIGMAPS, json=body).status_code == 201
    stored = http.get(f"{CONFIGMAPS}/bin-cm").json()
    assert base64.b64decode(stored["binaryData"]["all"]) == every


def test_secret_list_shows_data_not_string_data(http: httpx.Client) -> None:
    """Lists carry the merged base64 data and never stringData."""
    listed = http.get(SECRETS, params={"fieldSelector": "metadata.name=merged"}).json()
    [item] = listed["items"]
    assert "stringData" not in item
    assert item["data"]["s"] == b64("plain")
