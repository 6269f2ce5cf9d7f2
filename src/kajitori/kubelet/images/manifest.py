"""Manifest and index documents: media types, validation, platform selection.

Four documents name an image (OCI image-spec and Docker's distribution spec):
an OCI image manifest or Docker schema 2 manifest (a config and layers), and
an OCI image index or Docker manifest list (one manifest per platform). Docker
schema 1 is refused, as containerd 2 does. The kubelet picks the manifest for
its own platform (linux/amd64 by default; containerd's default matcher, whose
rule for ``arm64`` treats an absent variant as ``v8``).
"""

from __future__ import annotations

import dataclasses
import json
import platform as _platform
import re
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
LAYER_TYPES = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        DOCKER_LAYER_GZIP,
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
MAX_MANIFEST_SIZE = 4 << 20  # containerd's limit for a manifest or index


class ManifestError(ValueError):
    """A manifest or index that cannot be used; the text is containerd's where it has one."""


_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_digest(digest: str) -> str:
    """``digest`` if it is a well-formed sha256 digest; digests become file names."""
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise ManifestError(f"invalid or unsupported digest {digest!r}")
    return digest


_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


@dataclasses.dataclass(frozen=True, slots=True)
class Platform:
    """An os/architecture[/variant] to select from an index."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64/v8`` → Platform; the os part may be omitted (``arm64``)."""
        parts = text.split("/")
        if len(parts) == 1:
            return cls(architecture=parts[0])
        return cls(os=parts[0], architecture=parts[1], variant="/".join(parts[2:]))

    @classmethod
    def host(cls) -> Platform:
        """This machine's platform, in Go's names."""
        machine = _platform.machine()
        return cls(architecture=_GOARCH.get(machine, machine))

    def matches(self, spec: dict[str, Any]) -> bool:
        if spec.get("os") != self.os or spec.get("architecture") != self.architecture:
            return False
        wanted, offered = self.variant, spec.get("variant", "")
        if self.architecture == "arm64":
            wanted, offered = wanted or "v8", offered or "v8"
        return not wanted or wanted == offered

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def media_type_of(document: dict[str, Any], header: str = "") -> str:
    """The media type of a manifest document: its own field, else the header, else guessed."""
    declared = document.get("mediaType") or header.split(";", 1)[0].strip()
    if declared:
        return str(declared)
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def parse_document(body: bytes, header: str = "") -> tuple[str, dict[str, Any]]:
    """Decode a manifest or index, returning (media type, document)."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ManifestError(f"failed to unmarshal manifest: {exc}") from exc
    if not isinstance(document, dict):
        raise ManifestError("failed to unmarshal manifest: not an object")
    media_type = media_type_of(document, header)
    if media_type in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
        raise ManifestError(
            "schema 1 image manifests are no longer supported: "
            "convert the image to a schema 2 or OCI manifest"
        )
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise ManifestError(f"unexpected media type {media_type}")
    if media_type in MANIFEST_TYPES:
        _check_manifest(document)
    elif not isinstance(document.get("manifests"), list):
        raise ManifestError("invalid index: no manifests")
    return media_type, document


def select_platform(index: dict[str, Any], wanted: Platform) -> dict[str, Any]:
    """The first manifest descriptor of ``index`` for ``wanted`` (raises ManifestError)."""
    for descriptor in index.get("manifests", []):
        if descriptor.get("mediaType", OCI_MANIFEST) in MANIFEST_TYPES + INDEX_TYPES and (
            wanted.matches(descriptor.get("platform") or {})
        ):
            return dict(descriptor)
    raise ManifestError(f"no match for platform in manifest: {wanted}: not found")


def _check_manifest(document: dict[str, Any]) -> None:
    config = document.get("config")
    layers = document.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise ManifestError("invalid manifest: missing config or layers")
    for descriptor in [config, *layers]:
        if not isinstance(descriptor, dict):
            raise ManifestError(f"invalid descriptor {descriptor!r}")
        check_digest(descriptor.get("digest", ""))
    for layer in layers:
        if layer.get("mediaType") not in LAYER_TYPES:
            raise ManifestError(f"unsupported layer media type {layer.get('mediaType')}")
