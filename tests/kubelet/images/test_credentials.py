"""Image pull Secrets match registries as upstream's credentialprovider keyring does."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kajitori.kubelet.images import credentials


def _entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _keyring(config: dict[str, Any]) -> credentials.DockerKeyring:
    keyring = credentials.DockerKeyring()
    keyring.add(config)
    return keyring


def _users(found: list[credentials.AuthConfig]) -> list[str]:
    return [auth.username for auth in found]


@pytest.mark.parametrize(
    ("glob", "target", "matches"),
    [
        pytest.param("*.kubernetes.io", "prefix.kubernetes.io", True, id="leading-glob"),
        pytest.param("prefix.*.io", "prefix.kubernetes.io", True, id="middle-glob"),
        pytest.param("prefix.kubernetes.*", "prefix.kubernetes.io", True, id="trailing-glob"),
        pytest.param("*-good.kubernetes.io", "prefix-good.kubernetes.io", True, id="partial-glob"),
        pytest.param(
            "*.kubernetes.io/blah", "prefix.kubernetes.io/blah/another", True, id="path-prefix"
        ),
        pytest.param(
            "*.kubernetes.io/blah", "prefix.kubernetes.io/another", False, id="path-differs"
        ),
        pytest.param("*.kubernetes.io", "kubernetes.io", False, id="fewer-parts"),
        pytest.param("*.kubernetes.io", "a.b.kubernetes.io", False, id="more-parts"),
        pytest.param("kubernetes.io:443", "kubernetes.io", False, id="port-differs"),
        pytest.param("prefix.*.io:8080", "prefix.kubernetes.io:8080", True, id="glob-with-port"),
        pytest.param("*.kubernetes.io", "prefix.kubernetes.io:8080", False, id="target-port"),
        pytest.param("localhost:5000", "localhost:5000/demo/busybox", True, id="host-and-port"),
    ],
)
def test_urls_match_as_upstream(glob: str, target: str, matches: bool) -> None:
    """Globs match one host part each; ports must be equal; paths are prefixes."""
    assert credentials.urls_match(glob, target) is matches


def test_longer_keys_come_first_and_every_match_is_a_candidate() -> None:
    """Upstream's TestDockerKeyringLookup: reverse lexical order, all matches kept."""
    keyring = _keyring(
        {
            "bar.example.com/pong": _entry("grace", "squash"),
            "bar.example.com": _entry("ada", "smash"),
        }
    )
    assert _users(keyring.lookup("bar.example.com/pong")) == ["grace", "ada"]
    assert _users(keyring.lookup("bar.example.com/ponger")) == ["grace", "ada"]
    assert _users(keyring.lookup("bar.example.com/pink")) == ["ada"]
    assert keyring.lookup("bar.example.com:5000/pong") == []
    assert keyring.lookup("example.com/pong") == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("https://quay.io/v1/", id="scheme-and-v1"),
        pytest.param("http://quay.io", id="http-scheme"),
        pytest.param("quay.io/v2/", id="v2-path"),
        pytest.param("quay.io", id="bare-host"),
    ],
)
def test_schemes_and_api_paths_are_stripped_from_keys(key: str) -> None:
    """A key written as a URL still names the registry host."""
    assert _users(_keyring({key: _entry("u", "p")}).lookup("quay.io/org/app")) == ["u"]


@pytest.mark.parametrize(
    ("image", "found"),
    [
        pytest.param("docker.io/library/busybox", True, id="official"),
        pytest.param("docker.io/user/app", True, id="user"),
        pytest.param("index.docker.io/user/app", True, id="legacy-host"),
        pytest.param("user/app", True, id="unqualified"),
        pytest.param("quay.io/user/app", False, id="other-registry"),
        pytest.param("localhost:5000/app", False, id="local-registry"),
    ],
)
def test_docker_hub_credentials_apply_to_every_hub_spelling(image: str, found: bool) -> None:
    """``https://index.docker.io/v1/`` credentials serve docker.io images, not others."""
    keyring = _keyring({"https://index.docker.io/v1/": _entry("hub", "p")})
    assert _users(keyring.lookup(image)) == (["hub"] if found else [])


def test_auth_overrides_username_and_password() -> None:
    """The base64 ``auth`` field wins, as in upstream's DockerConfigEntry."""
    entry = {"username": "ignored", "password": "ignored", **_entry("real", "pa:ss")}
    [auth] = _keyring({"r.example.com": entry}).lookup("r.example.com/x")
    assert (auth.username, auth.password) == ("real", "pa:ss")
    assert "pa:ss" not in repr(auth)


def test_malformed_auth_is_an_error() -> None:
    """An auth field without a colon is refused with upstream's message."""
    bad = {"auth": base64.b64encode(b"no-colon").decode()}
    with pytest.raises(credentials.CredentialError, match="must be formatted as base64"):
        _keyring({"r.example.com": bad})


def _secret(kind: str, key: str, document: dict[str, Any], name: str) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    return {"type": kind, "metadata": {"name": name, "namespace": "ns"}, "data": {key: encoded}}


def test_secrets_of_both_types_feed_one_keyring_in_order() -> None:
    """dockerconfigjson and legacy dockercfg both count; other Secrets are ignored."""
    secrets = [
        _secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            {"auths": {"reg.example.com": _entry("first", "1")}},
            "new",
        ),
        _secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            {"reg.example.com": _entry("second", "2")},
            "old",
        ),
        _secret(
            "Opaque",
            ".dockerconfigjson",
            {"auths": {"reg.example.com": _entry("x", "y")}},
            "opaque",
        ),
        _secret("kubernetes.io/dockercfg", ".dockerconfigjson", {"auths": {}}, "wrong-key"),
    ]
    found = credentials.keyring_from_secrets(secrets).lookup("reg.example.com/app")
    assert _users(found) == ["first", "second"]
    assert [auth.source for auth in found] == ["ns/new", "ns/old"]


def test_a_secret_that_is_not_json_is_an_error() -> None:
    """As upstream's MakeDockerKeyring, bad JSON fails the lookup instead of pulling anonymously."""
    secret = {
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(b"{not json").decode()},
    }
    with pytest.raises(credentials.CredentialError):
        credentials.keyring_from_secrets([secret])


def test_a_pods_pull_secrets_are_its_image_pull_secrets_in_order() -> None:
    """The ServiceAccount's secrets arrive through admission; duplicates count once."""
    pod = {"spec": {"imagePullSecrets": [{"name": "b"}, {"name": "a"}, {"name": "b"}, {}]}}
    assert credentials.image_pull_secret_names(pod) == ["b", "a"]
    assert credentials.image_pull_secret_names({"spec": {}}) == []
