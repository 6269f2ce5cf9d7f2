"""Apply image layers to a root filesystem: whiteouts, opaque directories, no escapes.

The OCI image spec's "applying changesets" rules, as containerd's
``archive.Apply`` implements them:

- Layers apply in manifest order; each is a tar, plain or compressed with gzip
  or zstd (detected from the first bytes, whatever the media type says).
- ``.wh.<name>`` removes ``<name>`` as lower layers left it; ``.wh..wh..opq``
  empties its directory of what lower layers put there. Entries of the same
  layer survive either, whatever their order in the tar.
- An entry replaces what is at its path, except a directory over a directory,
  which keeps its content and takes the new metadata.
- Metadata: numeric uid/gid (as root; otherwise, other than 0, recorded in the
  ``user.kajitori.owner`` xattr as ``uid:gid``, decision 0033), the mode with setuid, setgid and
  sticky bits (after chown, which clears them), mtimes (directories' at the end
  of the layer, since writing children changes them), ``SCHILY.xattr.*`` PAX
  records best effort. Hard links, symlinks and FIFOs are made; device nodes
  only as root, skipped otherwise.
- Every path is resolved inside the rootfs as if it were ``/`` (symlinks in
  parent components included: an absolute target restarts at the rootfs, ``..``
  stops there), so no entry, symlink or hard link reaches outside it. A member
  name with a ``..`` component is refused outright; a leading ``/`` is dropped.
- The sha256 of the uncompressed stream must equal the config's diff_id.

This module is synchronous (it is file system work); callers run it in a
thread. tarfile's extraction filters are not used: they drop setuid and sticky
bits (``/tmp`` is 1777 in most images).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_SYMLINK_HOPS = 255
_CHUNK = 1 << 20
OWNER_XATTR = "user.kajitori.owner"  # an entry's uid:gid when unpacked without root


class UnpackError(Exception):
    """A layer that cannot be applied safely (hostile paths, bad digest, bad format)."""


class _Readable(Protocol):
    """What a layer's uncompressed stream offers: gzip, zstd and plain files all read."""

    def read(self, size: int = -1, /) -> bytes: ...


class _HashingReader:
    """A read-only stream that hashes everything read through it."""

    def __init__(self, raw: _Readable) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> str:
        while self.read(_CHUNK):
            pass
        return "sha256:" + self.sha256.hexdigest()


@contextlib.contextmanager
def open_layer(path: Path) -> Iterator[_Readable]:
    """The uncompressed tar stream of a layer blob (gzip, zstd or plain, by magic bytes)."""
    with path.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_GZIP_MAGIC):
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        elif magic == _ZSTD_MAGIC:
            yield from _zstd_stream(raw)
        else:
            yield raw


def _zstd_stream(raw: IO[bytes]) -> Iterator[_Readable]:
    try:
        import zstandard
    except ImportError as exc:  # an optional dependency: only zstd layers need it
        raise UnpackError("zstd layers need the 'zstandard' package") from exc
    with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as stream:
        yield stream


def apply_layer(root: Path, layer: Path, *, diff_id: str | None = None) -> int:
    """Apply one layer blob to ``root``; returns the number of tar entries.

    Raises ``UnpackError`` for unsafe names, unsupported entries or a diff_id
    mismatch; ``root`` is then half-written and the caller discards it.
    """
    with open_layer(layer) as stream:
        reader = _HashingReader(stream)
        applier = _LayerApplier(str(root))
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    applier.apply(tar, member)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise UnpackError(f"failed to extract layer {layer.name}: {exc}") from exc
        applier.finish()
        actual = reader.drain()
    if diff_id is not None and actual != diff_id:
        raise UnpackError(f"failed to extract layer: diff_id mismatch: {actual} != {diff_id}")
    return applier.entries


def secure_join(root: str, relative: str) -> str:
    """Resolve ``relative`` under ``root`` as if ``root`` were ``/`` (symlinks included).

    Every existing component that is a symlink is followed, with an absolute
    target restarting at ``root`` and ``..`` never climbing above it; missing
    components are taken literally. The result is always inside ``root``.
    """
    todo = [p for p in relative.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        current = os.path.join(root, *done, part)
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if not stat.S_ISLNK(mode):
            done.append(part)
            continue
        hops += 1
        if hops > _MAX_SYMLINK_HOPS:
            raise UnpackError(f"too many levels of symbolic links resolving {relative}")
        target = os.readlink(current)
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return os.path.join(root, *done)


def clean_name(name: str) -> str:
    """A member name relative to the rootfs; ``..`` anywhere is refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"path {name!r} escapes the root filesystem")
    return "/".join(parts)


class _LayerApplier:
    """The state of one layer being applied: what it wrote, directory times to set."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.created: set[str] = set()
        self.entries = 0
        self._dirs: list[tuple[str, tarfile.TarInfo]] = []
        self._is_root = os.geteuid() == 0

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.entries += 1
        name = clean_name(member.name)
        if not name:
            return  # the root directory itself keeps its own metadata
        parent, base = os.path.split(name)
        parent_dir = secure_join(self.root, parent)
        if base == WHITEOUT_OPAQUE:
            self._opaque(parent_dir)
        elif base.startswith(WHITEOUT_PREFIX):
            victim = os.path.join(parent_dir, base[len(WHITEOUT_PREFIX) :])
            if victim not in self.created:
                _remove(victim)
        else:
            os.makedirs(parent_dir, 0o755, exist_ok=True)
            self._write(tar, member, os.path.join(parent_dir, base))

    def finish(self) -> None:
        """Set directory modes and times last: writing children changed them."""
        for path, member in reversed(self._dirs):
            os.chmod(path, member.mode & 0o7777)
            os.utime(path, (member.mtime, member.mtime))

    def _opaque(self, directory: str) -> None:
        if not os.path.isdir(directory):
            return
        for child in os.listdir(directory):
            path = os.path.join(directory, child)
            if path not in self.created:
                _remove(path)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, dest: str) -> None:
        existing = _lstat(dest)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(dest)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(dest, 0o700)
            self._metadata(dest, member)
            self._dirs.append((dest, member))
        elif member.islnk():
            self._hardlink(member, dest)
        else:
            if not self._create(tar, member, dest):
                return
            self._metadata(dest, member)
            if not member.issym():
                os.chmod(dest, member.mode & 0o7777)  # after chown, which clears setuid
            os.utime(dest, (member.mtime, member.mtime), follow_symlinks=False)
        self.created.add(dest)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, dest: str) -> bool:
        """Make the file, symlink, FIFO or device; False when it is skipped."""
        if member.isreg():
            source = tar.extractfile(member)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with os.fdopen(os.open(dest, flags, 0o600), "wb") as out:
                if source is not None:
                    shutil.copyfileobj(source, out, _CHUNK)
            return True
        if member.issym():
            os.symlink(member.linkname, dest)
            return True
        if member.isfifo():
            os.mkfifo(dest, 0o600)
            return True
        if member.ischr() or member.isblk():
            if not self._is_root:
                return False  # mknod needs CAP_MKNOD; runc provides /dev anyway
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(dest, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            return True
        raise UnpackError(f"unsupported tar entry type {member.type!r} for {member.name}")

    def _hardlink(self, member: tarfile.TarInfo, dest: str) -> None:
        parent, base = os.path.split(clean_name(member.linkname))
        target = os.path.join(secure_join(self.root, parent), base)
        if _lstat(target) is None:
            raise UnpackError(f"hard link {member.name} to missing {member.linkname}")
        # A hard link shares its target's inode, so it takes no metadata of its own.
        os.link(target, dest, follow_symlinks=False)

    def _metadata(self, dest: str, member: tarfile.TarInfo) -> None:
        if self._is_root:
            os.lchown(dest, member.uid, member.gid)
        elif (member.uid or member.gid) and not member.issym():
            # Rootless (0033): the owners cannot be set, so they are kept beside the file
            # (user.* xattrs are not allowed on symlinks).
            _set_xattr(dest, OWNER_XATTR, f"{member.uid}:{member.gid}")
        for key, value in member.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                _set_xattr(dest, key[len("SCHILY.xattr.") :], value)


def _set_xattr(path: str, name: str, value: Any) -> None:
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    # Best effort: some file systems or unprivileged users cannot set security.* or trusted.*.
    with contextlib.suppress(OSError):
        os.setxattr(path, name, raw, follow_symlinks=False)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _remove(path: str) -> None:
    existing = _lstat(path)
    if existing is None:
        return
    if stat.S_ISDIR(existing.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
