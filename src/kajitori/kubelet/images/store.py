"""The node's image store: content-addressed blobs, unpacked root filesystems, names.

One store per node, shared by every pod (containerd's content store plus its
snapshotter, in one directory)::

    <root>/blobs/sha256/<hex>   manifests, indexes, configs and layers, by digest
    <root>/rootfs/<hex>         an image's unpacked root filesystem, by config digest
    <root>/tmp/                 downloads and unpacks in progress
    <root>/index.json           {"images": {image id: record}, "references": {ref: image id}}

An image's id is its config digest, as containerd's CRI reports it: two
manifests that differ only in layer compression share one rootfs. Every write
is a temporary file or directory renamed into place, so a crash leaves either
the old state or the new one, never half a blob or half a rootfs; leftovers in
``tmp/`` are removed when a store opens. ``index.json`` changes under an
``flock`` so kubelets of one machine may share a store.

Methods are synchronous (file system work); the puller calls them in a thread.
Garbage collection removes images that no running container uses, least
recently used first (upstream's image GC order), then every blob no remaining
image refers to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Any

from kajitori.kubelet.images import manifest, unpack

_CHUNK = 1 << 20


class DigestMismatch(Exception):
    """Content whose sha256 is not the digest it was fetched or loaded under."""


@dataclasses.dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image in the store."""

    image_id: str  # the config digest
    manifest_digest: str
    references: tuple[str, ...]
    size: int  # bytes of its blobs as fetched (config + compressed layers)
    last_used: float
    rootfs: Path


@dataclasses.dataclass(frozen=True, slots=True)
class GCResult:
    removed: tuple[str, ...]  # image ids
    bytes_freed: int


class ImageStore:
    """The store rooted at ``root`` (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs" / "sha256"
        self._rootfs = self.root / "rootfs"
        self._tmp = self.root / "tmp"
        for directory in (self._blobs, self._rootfs, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        self._clean_tmp()

    # Blobs ------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self._blobs / manifest.check_digest(digest).split(":", 1)[1]

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    @contextlib.contextmanager
    def blob_writer(self, digest: str, size: int | None = None) -> Iterator[BlobWriter]:
        """A file to write ``digest``'s content to; verified and renamed into place on exit.

        Raises ``DigestMismatch`` (and keeps nothing) when the content's sha256
        or length is not what was announced.
        """
        target = self.blob_path(digest)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with BlobWriter(os.fdopen(fd, "wb")) as writer:
                yield writer
            actual = "sha256:" + writer.sha256.hexdigest()
            if actual != digest:
                raise DigestMismatch(f"unexpected commit digest {actual}, expected {digest}")
            if size is not None and writer.written != size:
                raise DigestMismatch(
                    f"unexpected commit size {writer.written}, expected {size} for {digest}"
                )
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def import_blob(self, source: IO[bytes]) -> tuple[str, int]:
        """Store what ``source`` holds under its own digest; returns (digest, size)."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with BlobWriter(os.fdopen(fd, "wb")) as writer:
                shutil.copyfileobj(source, writer, _CHUNK)  # type: ignore[misc]
            digest = "sha256:" + writer.sha256.hexdigest()
            os.replace(tmp, self.blob_path(digest))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return digest, writer.written

    def put_blob(self, data: bytes) -> str:
        """Store ``data``; returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            with self.blob_writer(digest, len(data)) as out:
                out.write(data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def read_json(self, digest: str) -> dict[str, Any]:
        document = json.loads(self.read_blob(digest))
        if not isinstance(document, dict):
            raise manifest.ManifestError(f"{digest} is not a JSON object")
        return document

    # Images -----------------------------------------------------------------

    def unpack(self, manifest_digest: str) -> Path:
        """The rootfs of the image ``manifest_digest`` names, unpacking it once.

        Raises ``unpack.UnpackError`` for a layer that cannot be applied safely.
        """
        document = self.read_json(manifest_digest)
        config_digest = manifest.check_digest(document["config"]["digest"])
        target = self._rootfs / config_digest.split(":", 1)[1]
        if target.is_dir():
            return target
        diff_ids = self.read_json(config_digest).get("rootfs", {}).get("diff_ids", [])
        layers = document["layers"]
        if len(diff_ids) != len(layers):
            raise unpack.UnpackError(
                f"mismatched image rootfs and manifest layers: {len(diff_ids)} != {len(layers)}"
            )
        work = Path(tempfile.mkdtemp(dir=self._tmp, prefix="rootfs-"))
        try:
            work.chmod(0o755)
            for layer, diff_id in zip(layers, diff_ids, strict=True):
                unpack.apply_layer(work, self.blob_path(layer["digest"]), diff_id=diff_id)
            with contextlib.suppress(OSError):  # another unpack of the same image won
                work.rename(target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        return target

    def record(
        self,
        reference: str | None,
        manifest_digest: str,
        *,
        index_digest: str | None = None,
        now: float | None = None,
    ) -> ImageRecord:
        """Name the unpacked image ``manifest_digest`` ``reference`` (a normalised reference;
        ``None`` keeps the image by id only).

        ``index_digest``: the index the manifest was chosen from, kept as long as the image.
        """
        document = self.read_json(manifest_digest)
        image_id = manifest.check_digest(document["config"]["digest"])
        size = int(document["config"].get("size", 0)) + sum(
            int(layer.get("size", 0)) for layer in document["layers"]
        )
        with self._index() as index:
            entry = index["images"].setdefault(image_id, {})
            entry.update(manifest=manifest_digest, size=size)
            if index_digest is not None and index_digest not in entry.setdefault("blobs", []):
                entry["blobs"].append(index_digest)
            entry["lastUsed"] = time.time() if now is None else now
            if reference is not None:
                index["references"][reference] = image_id
        found = self.lookup(reference or image_id)
        assert found is not None
        return found

    def lookup(self, reference: str) -> ImageRecord | None:
        """The image named ``reference`` (or an image id), if it is present and unpacked."""
        index = self._read_index()
        image_id = index["references"].get(reference, reference)
        entry = index["images"].get(image_id)
        if entry is None:
            return None
        record = self._record(index, image_id, entry)
        return record if record.rootfs.is_dir() else None

    def list(self) -> list[ImageRecord]:
        index = self._read_index()
        return [self._record(index, i, e) for i, e in sorted(index["images"].items())]

    def touch(self, image_id: str, *, now: float | None = None) -> None:
        """Mark ``image_id`` used now (GC removes the least recently used first)."""
        with self._index() as index:
            if image_id in index["images"]:
                index["images"][image_id]["lastUsed"] = time.time() if now is None else now

    def remove(self, reference: str) -> bool:
        """Forget the name ``reference``; the image goes at the next GC if nothing names it."""
        with self._index() as index:
            return index["references"].pop(reference, None) is not None

    def gc(self, in_use: Collection[str], *, bytes_to_free: int | None = None) -> GCResult:
        """Remove images not in ``in_use`` (references or image ids), oldest use first.

        With ``bytes_to_free`` it stops once that much is freed (upstream frees
        down to its low threshold); without, every unused image goes. Blobs no
        remaining image needs are removed either way.
        """
        removed: list[str] = []
        freed = 0
        with self._index() as index:
            keep = {index["references"].get(r, r) for r in in_use}
            candidates = sorted(
                (e.get("lastUsed", 0.0), i) for i, e in index["images"].items() if i not in keep
            )
            for _, image_id in candidates:
                if bytes_to_free is not None and freed >= bytes_to_free:
                    break
                freed += int(index["images"].pop(image_id).get("size", 0))
                removed.append(image_id)
                for name in [r for r, i in index["references"].items() if i == image_id]:
                    del index["references"][name]
            live = self._live_blobs(index)
        for image_id in removed:
            shutil.rmtree(self._rootfs / image_id.split(":", 1)[1], ignore_errors=True)
        for path in self._blobs.iterdir():
            if f"sha256:{path.name}" not in live:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return GCResult(tuple(removed), freed)

    # Internals --------------------------------------------------------------

    def _live_blobs(self, index: dict[str, Any]) -> set[str]:
        live: set[str] = set()
        for image_id, entry in index["images"].items():
            live.add(image_id)
            for digest in entry.get("blobs", ()):  # indexes kept with the image
                live.add(digest)
            manifest_digest = entry.get("manifest")
            if manifest_digest and self.has_blob(manifest_digest):
                live.add(manifest_digest)
                document = self.read_json(manifest_digest)
                live.update(layer["digest"] for layer in document.get("layers", []))
        return live

    def _record(self, index: dict[str, Any], image_id: str, entry: dict[str, Any]) -> ImageRecord:
        names = tuple(sorted(r for r, i in index["references"].items() if i == image_id))
        return ImageRecord(
            image_id=image_id,
            manifest_digest=entry.get("manifest", ""),
            references=names,
            size=int(entry.get("size", 0)),
            last_used=float(entry.get("lastUsed", 0.0)),
            rootfs=self._rootfs / image_id.split(":", 1)[1],
        )

    def _read_index(self) -> dict[str, Any]:
        try:
            index = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            index = {}
        index.setdefault("images", {})
        index.setdefault("references", {})
        return index  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def _index(self) -> Iterator[dict[str, Any]]:
        """The index, locked against other processes, written back atomically on exit."""
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = self._read_index()
            yield index
            fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="index-")
            with os.fdopen(fd, "w") as out:
                json.dump(index, out, indent=1, sort_keys=True)
            os.replace(tmp, self.root / "index.json")

    def _clean_tmp(self) -> None:
        """Remove what an interrupted download or unpack left, unless it is recent."""
        cutoff = time.time() - 3600  # another kubelet sharing the store may be mid-pull
        for path in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.lstat().st_mtime > cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()


class BlobWriter:
    """A binary file that hashes and counts what is written to it."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.written += len(data)
        return self._out.write(data)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._out.close()
