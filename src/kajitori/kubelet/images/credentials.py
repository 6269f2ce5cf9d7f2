"""Registry credentials from image pull Secrets, matched by registry host as kubelet does.

Upstream: pkg/credentialprovider (``BasicDockerKeyring``, ``URLsMatch``) and
pkg/credentialprovider/secrets (``MakeDockerKeyring``). The rules kept here:

- A Secret of type ``kubernetes.io/dockerconfigjson`` holds ``{"auths": {key:
  entry}}`` under ``.dockerconfigjson``; the legacy ``kubernetes.io/dockercfg``
  holds the ``{key: entry}`` map itself under ``.dockercfg``. Other Secrets, or
  the right key under the wrong type, are ignored; malformed JSON is an error.
- An entry's ``auth`` (base64 of ``user:password``) overrides ``username`` and
  ``password``.
- A key may carry a scheme and a path: ``https://`` and ``http://`` are dropped,
  a leading ``/v1/`` or ``/v2/`` of the path too, so ``https://index.docker.io/v1/``
  becomes ``index.docker.io``.
- Matching a key against ``host[:port]/repository``: the ports must be equal, the
  hosts must have as many dot-separated parts and each part must match as a
  glob (``*.example.com`` matches ``a.example.com``, not ``a.b.example.com``),
  and the key's path must be a string prefix of the repository path.
- Keys are tried in reverse lexical order, so the more specific
  ``host/ns/app`` comes before ``host/ns`` and ``host``; every match is a
  candidate, and the kubelet tries them in that order until one pulls.
- Nothing matched but the image is on Docker Hub (an unqualified name,
  ``docker.io/...`` or ``index.docker.io/...``): the credentials stored under
  ``index.docker.io`` apply.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import fnmatch
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_TYPE_DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
SECRET_TYPE_DOCKERCFG = "kubernetes.io/dockercfg"
DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
DOCKERCFG_KEY = ".dockercfg"
_DEFAULT_REGISTRY_HOST = "index.docker.io"


class CredentialError(ValueError):
    """An image pull Secret whose content cannot be read."""


@dataclasses.dataclass(frozen=True, slots=True)
class AuthConfig:
    """One set of registry credentials (CRI's AuthConfig, reduced to what we use)."""

    username: str = ""
    password: str = ""
    # Where the credentials came from, for messages: "namespace/secret".
    source: str = dataclasses.field(default="", compare=False)

    def __repr__(self) -> str:  # never print a password
        return f"AuthConfig(username={self.username!r}, source={self.source!r})"


class DockerKeyring:
    """Credentials by registry key; ``lookup(image)`` returns the candidates in order."""

    def __init__(self) -> None:
        self._creds: dict[str, list[AuthConfig]] = {}
        self._index: list[str] = []

    def add(self, config: Mapping[str, Mapping[str, Any]], *, source: str = "") -> None:
        """Add the ``{key: entry}`` map of one docker config (raises ``CredentialError``)."""
        for location, entry in config.items():
            key = _effective_key(location)
            if key is None:
                continue
            self._creds.setdefault(key, []).append(_auth_config(entry, source))
            if key not in self._index:
                self._index.append(key)
        self._index.sort(reverse=True)

    def lookup(self, image: str) -> list[AuthConfig]:
        """Candidates for ``image``, a normalised repository name like ``host/path``."""
        found: list[AuthConfig] = []
        for key in self._index:
            if urls_match(key, image):
                found.extend(self._creds[key])
        if found:
            return found
        if is_default_registry_match(image):
            return list(self._creds.get(_DEFAULT_REGISTRY_HOST, ()))
        return []

    def __len__(self) -> int:
        return sum(len(v) for v in self._creds.values())


def image_pull_secret_names(pod: Mapping[str, Any]) -> list[str]:
    """The Secrets a pod pulls with: ``spec.imagePullSecrets`` (the ServiceAccount
    admission plugin has already copied its account's there), in order, once each."""
    names: list[str] = []
    for item in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        name = item.get("name") if isinstance(item, Mapping) else None
        if name and name not in names:
            names.append(name)
    return names


def keyring_from_secrets(secrets: Iterable[Mapping[str, Any]]) -> DockerKeyring:
    """A keyring from Secret objects (as the API returns them: ``data`` in base64)."""
    keyring = DockerKeyring()
    for secret in secrets:
        meta = secret.get("metadata") or {}
        source = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        config = docker_config_from_secret(secret)
        if config is not None:
            keyring.add(config, source=source)
    return keyring


def docker_config_from_secret(secret: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``{key: entry}`` map of a dockerconfigjson or dockercfg Secret, else ``None``."""
    data = secret.get("data") or {}
    kind = secret.get("type", "")
    if kind == SECRET_TYPE_DOCKER_CONFIG_JSON and data.get(DOCKER_CONFIG_JSON_KEY):
        document = _decode_json(data[DOCKER_CONFIG_JSON_KEY])
        auths = document.get("auths") if isinstance(document, dict) else None
        return auths if isinstance(auths, dict) else {}
    if kind == SECRET_TYPE_DOCKERCFG and data.get(DOCKERCFG_KEY):
        document = _decode_json(data[DOCKERCFG_KEY])
        return document if isinstance(document, dict) else {}
    return None


def urls_match(glob_url: str, target_url: str) -> bool:
    """Upstream's URLsMatchStr: same port, same number of host parts, each a glob match."""
    glob = urllib.parse.urlsplit("https://" + glob_url)
    target = urllib.parse.urlsplit("https://" + target_url)
    glob_parts, glob_port = _split_host(glob.netloc)
    target_parts, target_port = _split_host(target.netloc)
    if glob_port != target_port or len(glob_parts) != len(target_parts):
        return False
    if not target.path.startswith(glob.path):
        return False
    return all(
        fnmatch.fnmatchcase(part, pattern)
        for pattern, part in zip(glob_parts, target_parts, strict=True)
    )


def is_default_registry_match(image: str) -> bool:
    """Whether ``image`` lives on Docker Hub (upstream's isDefaultRegistryMatch)."""
    first, sep, _ = image.partition("/")
    if not first:
        return False
    if not sep:
        return True
    if first in ("docker.io", _DEFAULT_REGISTRY_HOST):
        return True
    return not any(c in first for c in ".:")


def _effective_key(location: str) -> str | None:
    value = location
    if not value.startswith(("https://", "http://")):
        value = "https://" + value
    try:
        parsed = urllib.parse.urlsplit(value)
    except ValueError:
        return None  # upstream logs and skips keys that do not parse
    path = parsed.path
    if path.startswith(("/v2/", "/v1/")):
        path = path[3:]
    return parsed.netloc + path if path and path != "/" else parsed.netloc


def _split_host(netloc: str) -> tuple[list[str], str]:
    host, port = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif ":" in netloc:
        host, port = netloc.rsplit(":", 1)
    return host.split("."), port


def _auth_config(entry: Mapping[str, Any], source: str) -> AuthConfig:
    if not isinstance(entry, Mapping):
        raise CredentialError(f"{source}: a registry entry must be an object")
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise CredentialError(f"{source}: {exc}") from exc
        user, sep, secret = decoded.partition(":")
        if not sep:
            raise CredentialError(
                "unable to parse auth field, must be formatted as base64(username:password)"
            )
        username, password = user, secret
    return AuthConfig(username=username, password=password, source=source)


def _decode_json(value: str) -> Any:
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CredentialError(f"invalid docker config in image pull secret: {exc}") from exc
