"""ConfigMap validation against upstream's paths and messages."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.api.core_v1.validation import configmaps

Object = dict[str, Any]


def config_map(**extra: Any) -> Object:
    obj: Object = {"metadata": {"name": "c", "namespace": "default", "resourceVersion": "1"}}
    obj.update(extra)
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(config_map(data={"a.b": "x"}, binaryData={"c": "eA=="}), [], id="valid"),
        pytest.param(
            config_map(data={"k": "x"}, binaryData={"k": "eA=="}),
            ['data[k]: Invalid value: "k": duplicate of key present in binaryData'],
            id="duplicate-key",
        ),
        pytest.param(
            config_map(binaryData={"a/b": ""}),
            [
                'binaryData[a/b]: Invalid value: "a/b": a valid config key must consist of '
                "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ],
            id="bad-binary-key",
        ),
        pytest.param(
            config_map(data={".": ""}),
            ["data[.]: Invalid value: \".\": must not be '.'"],
            id="dot-key",
        ),
        pytest.param(
            config_map(data={"a": "x" * (1 << 20)}, binaryData={"b": "eA=="}),
            ["Too long: may not be more than 1048576 bytes"],
            id="too-big-counting-both-maps",
        ),
    ],
)
def test_validate_config_map(obj: Object, expected: list[str]) -> None:
    """Key syntax, duplicate keys across data and binaryData, and the 1 MiB total."""
    assert [str(e) for e in configmaps.validate_config_map(obj)] == expected


def test_size_error_is_on_the_whole_object() -> None:
    """Upstream reports an oversized ConfigMap with an empty field path."""
    errs = configmaps.validate_config_map(config_map(data={"a": "x" * ((1 << 20) + 1)}))
    assert [(e.field, e.type.reason) for e in errs] == [("", "FieldValueTooLong")]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(config_map(binaryData={"a": "eA=="}), None, id="valid"),
        pytest.param(
            config_map(binaryData={"a": "e"}), "illegal base64 data at input byte 0", id="bad"
        ),
        pytest.param(
            config_map(binaryData=[]),
            "json: cannot unmarshal array into Go struct field ConfigMap.binaryData of type map[string][]uint8",
            id="not-a-map",
        ),
    ],
)
def test_binary_data_decoding(obj: Object, expected: str | None) -> None:
    """binaryData values must be base64, as the JSON decoder of []byte requires."""
    assert configmaps.decode_config_map_binary_data(obj) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(config_map(data={"a": "1"}), config_map(data={"a": "2"}), [], id="mutable"),
        pytest.param(
            config_map(data={"a": "1"}, immutable=True),
            config_map(data={"a": "2"}, immutable=True),
            ["data: Forbidden: field is immutable when `immutable` is set"],
            id="immutable-data",
        ),
        pytest.param(
            config_map(binaryData={"a": "eA=="}, immutable=True),
            config_map(immutable=True),
            ["binaryData: Forbidden: field is immutable when `immutable` is set"],
            id="immutable-binary-data",
        ),
        pytest.param(
            config_map(immutable=True),
            config_map(),
            ["immutable: Forbidden: field is immutable when `immutable` is set"],
            id="cannot-unset-immutable",
        ),
        pytest.param(
            config_map(
                immutable=True,
                metadata={
                    "name": "c",
                    "namespace": "default",
                    "resourceVersion": "1",
                    "labels": {"a": "b"},
                },
            ),
            config_map(immutable=True),
            [],
            id="metadata-still-mutable",
        ),
    ],
)
def test_validate_config_map_update(old: Object, new: Object, expected: list[str]) -> None:
    """Immutable ConfigMaps keep data, binaryData and the immutable flag."""
    assert [str(e) for e in configmaps.validate_config_map_update(new, old)] == expected
