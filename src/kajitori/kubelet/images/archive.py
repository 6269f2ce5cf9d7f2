"""``kajitori image load``: docker-save tarballs and OCI archives into the image store.

For people without a registry: ``docker save -o app.tar app:1.0`` or
``skopeo copy ... oci-archive:app.tar`` on one machine, ``kajitori image load
app.tar`` on the node, then a pod with ``imagePullPolicy: Never`` (or
``IfNotPresent``) runs it.

Two layouts are read (the archive may itself be gzip-compressed):

- docker save: ``manifest.json`` lists ``{"Config", "RepoTags", "Layers"}``;
  layers are tar files (plain, or compressed since Docker 25). The store gets
  an OCI manifest built for them, so a loaded image is like a pulled one.
  Docker 25+ also writes an OCI layout beside it; ``manifest.json`` wins, since
  its ``RepoTags`` are the names the user gave.
- an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``): every
  manifest of ``index.json`` (an index inside is resolved to this node's
  platform) is named by its ``io.containerd.image.name`` annotation, else by
  ``org.opencontainers.image.ref.name`` when that is a full reference, else by
  ``base_name:<ref.name>`` when a base name is given; others load by id only.

Every blob is verified against its digest, and every image is unpacked.
"""

from __future__ import annotations

import dataclasses
import json
import tarfile
from pathlib import Path
from typing import IO, Any

from kajitori.kubelet.images import manifest, store
from kajitori.kubelet.images import reference as references

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ArchiveError(Exception):
    """An archive that is neither a docker save tarball nor an OCI layout, or is damaged."""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedImage:
    reference: str | None  # normalised, or None when the archive names nothing
    image_id: str
    manifest_digest: str


def load(
    image_store: store.ImageStore,
    path: Path,
    *,
    base_name: str | None = None,
    platform: manifest.Platform | None = None,
) -> list[LoadedImage]:
    """Load every image of the archive at ``path``; raises ``ArchiveError``."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {_member_name(m.name): m for m in tar.getmembers()}
            reader = _Archive(tar, members)
            if "manifest.json" in members:
                found = _load_docker(image_store, reader)
            elif "index.json" in members:
                found = _load_oci(image_store, reader, base_name, platform or manifest.Platform())
            else:
                raise ArchiveError(f"{path}: neither a docker save tarball nor an OCI archive")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{path}: {exc}") from exc
    except store.DigestMismatch as exc:
        raise ArchiveError(f"{path}: {exc}") from exc
    loaded = []
    for name, manifest_digest in found:
        image_store.unpack(manifest_digest)
        record = image_store.record(name, manifest_digest)
        loaded.append(LoadedImage(name, record.image_id, manifest_digest))
    return loaded


class _Archive:
    """Members of the tar by normalised name."""

    def __init__(self, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> None:
        self._tar = tar
        self._members = members

    def open(self, name: str) -> IO[bytes]:
        member = self._members.get(_member_name(name))
        stream = self._tar.extractfile(member) if member is not None else None
        if stream is None:
            raise ArchiveError(f"missing or not a file: {name}")
        return stream

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise ArchiveError(f"{name}: {exc}") from exc


def _load_docker(image_store: store.ImageStore, archive: _Archive) -> list[tuple[str | None, str]]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json: not a list")
    found: list[tuple[str | None, str]] = []
    for entry in entries:
        config_bytes = archive.read(entry["Config"])
        config_digest = image_store.put_blob(config_bytes)
        layers = [_import_layer(image_store, archive, name) for name in entry.get("Layers", [])]
        document = {
            "schemaVersion": 2,
            "mediaType": manifest.OCI_MANIFEST,
            "config": {
                "mediaType": manifest.OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": layers,
        }
        manifest_digest = image_store.put_blob(json.dumps(document, indent=1).encode())
        tags = entry.get("RepoTags") or [None]
        found.extend((_normalise(tag), manifest_digest) for tag in tags)
    return found


def _import_layer(image_store: store.ImageStore, archive: _Archive, name: str) -> dict[str, Any]:
    with archive.open(name) as stream:
        magic = stream.read(4)
    with archive.open(name) as stream:
        digest, size = image_store.import_blob(stream)
    if magic.startswith(_GZIP_MAGIC):
        media_type = manifest.OCI_LAYER_GZIP
    elif magic == _ZSTD_MAGIC:
        media_type = manifest.OCI_LAYER_ZSTD
    else:
        media_type = manifest.OCI_LAYER
    return {"mediaType": media_type, "digest": digest, "size": size}


def _load_oci(
    image_store: store.ImageStore,
    archive: _Archive,
    base_name: str | None,
    platform: manifest.Platform,
) -> list[tuple[str | None, str]]:
    index = archive.json("index.json")
    found: list[tuple[str | None, str]] = []
    for descriptor in index.get("manifests", []):
        name = _oci_name(descriptor.get("annotations") or {}, base_name)
        media_type, document = _copy_document(image_store, archive, descriptor)
        if media_type in manifest.INDEX_TYPES:
            try:
                descriptor = manifest.select_platform(document, platform)
            except manifest.ManifestError as exc:
                raise ArchiveError(str(exc)) from exc
            media_type, document = _copy_document(image_store, archive, descriptor)
            if media_type in manifest.INDEX_TYPES:
                raise ArchiveError("nested image indexes are not supported")
        for blob in [document["config"], *document["layers"]]:
            _copy_blob(image_store, archive, blob)
        found.append((name, descriptor["digest"]))
    return found


def _copy_document(
    image_store: store.ImageStore, archive: _Archive, descriptor: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    _copy_blob(image_store, archive, descriptor)
    body = image_store.read_blob(descriptor["digest"])
    try:
        return manifest.parse_document(body, descriptor.get("mediaType", ""))
    except manifest.ManifestError as exc:
        raise ArchiveError(f"{descriptor['digest']}: {exc}") from exc


def _copy_blob(
    image_store: store.ImageStore, archive: _Archive, descriptor: dict[str, Any]
) -> None:
    digest = manifest.check_digest(descriptor.get("digest", ""))
    if image_store.has_blob(digest):
        return
    with (
        archive.open("blobs/sha256/" + digest.split(":", 1)[1]) as source,
        image_store.blob_writer(digest, descriptor.get("size")) as out,
    ):
        while chunk := source.read(1 << 20):
            out.write(chunk)


def _oci_name(annotations: dict[str, str], base_name: str | None) -> str | None:
    if "io.containerd.image.name" in annotations:
        return _normalise(annotations["io.containerd.image.name"])
    tag = annotations.get("org.opencontainers.image.ref.name")
    if not tag:
        return None
    if "/" in tag or ":" in tag:
        return _normalise(tag)
    return _normalise(f"{base_name}:{tag}") if base_name else None


def _normalise(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        return references.normalize(name)
    except references.InvalidReference as exc:
        raise ArchiveError(f"invalid image name {name!r}: {exc}") from exc


def _member_name(name: str) -> str:
    return name[2:] if name.startswith("./") else name
