"""Secret validation, base64 decoding and stringData merging, against upstream's messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.api.core_v1.validation import secrets

Object = dict[str, Any]


def secret(secret_type: str = "Opaque", data: dict[str, str] | None = None, **extra: Any) -> Object:
    obj: Object = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"},
        "type": secret_type,
        "data": data if data is not None else {},
    }
    obj.update(extra)
    return obj


def messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("aGVsbG8=", (b"hello", None), id="padded"),
        pytest.param("aGVs\nbG8=", (b"hello", None), id="newlines-skipped"),
        pytest.param("abcde", (b"i\xb7\x1d", 4), id="one-dangling-char"),
        pytest.param("abc", (b"", 0), id="unpadded-reports-group-start"),
        pytest.param("YQ=", (b"", 3), id="missing-second-pad"),
        pytest.param("YQ==x", (b"a", 4), id="trailing-garbage"),
        pytest.param("Y Q==", (b"", 1), id="space-is-illegal"),
        pytest.param("=", (b"", 0), id="pad-first"),
        pytest.param("", (b"", None), id="empty"),
    ],
)
def test_base64_decoding_reports_go_offsets(text: str, expected: tuple[bytes, int | None]) -> None:
    """Decoding matches Go's StdEncoding, including the offset of the first bad byte."""
    assert secrets.go_base64_decode(text) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param({"data": {"a": "aGk="}}, None, id="valid"),
        pytest.param(
            {"data": {"a": "aGk=", "b": "n0t-b64"}}, "illegal base64 data at input byte 3", id="bad"
        ),
        pytest.param({"data": {"a": None}}, None, id="null-is-empty"),
        pytest.param(
            {"data": {"a": 5}},
            "json: cannot unmarshal number into Go struct field Secret.data of type []uint8",
            id="number",
        ),
        pytest.param(
            {"stringData": {"a": True}},
            "json: cannot unmarshal bool into Go struct field Secret.stringData of type string",
            id="string-data-bool",
        ),
        pytest.param({"stringData": {"a": "not base64 at all"}}, None, id="string-data-is-plain"),
    ],
)
def test_decode_secret_data_gives_the_json_decoders_message(
    obj: Object, expected: str | None
) -> None:
    """The message the server wraps into its 400 'cannot be handled as a Secret'."""
    assert secrets.decode_secret_data(obj) == expected


def test_string_data_overwrites_data_and_disappears() -> None:
    """stringData is base64-encoded into data, winning on equal keys, then removed."""
    obj = secret(data={"a": "eA==", "b": "eQ=="}, stringData={"b": "héllo", "c": ""})
    secrets.merge_string_data(obj)
    assert "stringData" not in obj
    assert obj["data"] == {"a": "eA==", "b": "aMOpbGxv", "c": ""}
    again = copy.deepcopy(obj)
    secrets.merge_string_data(again)
    assert again == obj


def test_canonicalize_re_encodes_like_go() -> None:
    """Equivalent spellings (newlines, non-zero pad bits) come back as Go would encode them."""
    data: Object = {"a": "aGVs\nbG8=", "b": "YR==", "c": None}
    secrets.canonicalize_bytes_map(data)
    assert data == {"a": "aGVsbG8=", "b": "YQ==", "c": ""}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(secret(), [], id="opaque-empty"),
        pytest.param(
            secret("kubernetes.io/tls", {"tls.crt": "eA=="}),
            ["data[tls.key]: Required value"],
            id="tls-missing-key",
        ),
        pytest.param(
            secret("kubernetes.io/tls"),
            ["data[tls.crt]: Required value", "data[tls.key]: Required value"],
            id="tls-empty",
        ),
        pytest.param(
            secret("kubernetes.io/dockerconfigjson"),
            ["data[.dockerconfigjson]: Required value"],
            id="dockerconfigjson-missing",
        ),
        pytest.param(
            secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "e2F9"}),
            [
                'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
                "invalid character 'a' looking for beginning of object key string"
            ],
            id="dockerconfigjson-bad-json",
        ),
        pytest.param(
            secret("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "e30="}),
            [],
            id="dockerconfigjson-ok",
        ),
        pytest.param(
            secret("kubernetes.io/dockercfg", {".dockercfg": "W10="}),
            [
                'data[.dockercfg]: Invalid value: "<secret contents redacted>": '
                "json: cannot unmarshal array into Go value of type map[string]interface {}"
            ],
            id="dockercfg-array",
        ),
        pytest.param(
            secret("kubernetes.io/basic-auth"),
            ["data[%s][username]: Required value", "data[%s][password]: Required value"],
            id="basic-auth-neither",
        ),
        pytest.param(
            secret("kubernetes.io/basic-auth", {"password": ""}), [], id="basic-auth-empty-password"
        ),
        pytest.param(
            secret("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}),
            ["data[%s][ssh-privatekey]: Required value"],
            id="ssh-auth-empty",
        ),
        pytest.param(
            secret("kubernetes.io/service-account-token"),
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            id="sa-token-without-annotation",
        ),
        pytest.param(
            secret("bootstrap.kubernetes.io/token", {"token-id": "eA=="}),
            [],
            id="bootstrap-token-not-validated-by-apiserver",
        ),
        pytest.param(
            secret(data={"..x": ""}),
            ["data[..x]: Invalid value: \"..x\": must not start with '..'"],
            id="bad-key",
        ),
    ],
)
def test_validate_secret(obj: Object, expected: list[str]) -> None:
    """Each type's required keys and checks give upstream's paths and messages."""
    assert messages(secrets.validate_secret(obj)) == expected


def test_secret_over_one_mebibyte_is_too_long() -> None:
    """The decoded total of data is limited to 1 MiB, reported on "data"."""
    half = "A" * (((1 << 19) + 3) // 3 * 4)
    obj = secret(data={"a": half, "b": half})
    assert messages(secrets.validate_secret(obj)) == [
        "data: Too long: may not be more than 1048576 bytes"
    ]
    assert messages(secrets.validate_secret(secret(data={"a": half}))) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(secret(), secret(data={"a": "eA=="}), [], id="mutable-data-change"),
        pytest.param(
            secret(),
            secret("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}),
            ['type: Invalid value: "kubernetes.io/tls": field is immutable'],
            id="type-change",
        ),
        pytest.param(
            secret(immutable=True),
            secret(data={"a": "eA=="}, immutable=True),
            ["data: Forbidden: field is immutable when `immutable` is set"],
            id="immutable-data-change",
        ),
        pytest.param(
            secret(data={"a": "YQ=="}, immutable=True),
            secret(data={"a": "YR=="}, immutable=True),
            [],
            id="immutable-same-bytes-other-spelling",
        ),
        pytest.param(
            secret(immutable=True),
            secret(immutable=False),
            ["immutable: Forbidden: field is immutable when `immutable` is set"],
            id="immutable-unset",
        ),
        pytest.param(secret(), secret(immutable=True), [], id="becoming-immutable"),
    ],
)
def test_validate_secret_update(old: Object, new: Object, expected: list[str]) -> None:
    """Type never changes; immutable secrets keep their data and stay immutable."""
    assert messages(secrets.validate_secret_update(new, old)) == expected
