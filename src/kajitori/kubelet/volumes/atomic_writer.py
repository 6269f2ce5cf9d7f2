"""Upstream's AtomicWriter (pkg/volume/util/atomic_writer.go): a volume's files, swapped at once.

A secret, configMap, projected or downwardAPI volume directory looks like::

    ..2026_11_26_02_40_00.123456789/   the files of one version
    ..data -> ..2026_11_26_02_40_00.123456789
    password -> ..data/password         one link per top-level entry

A new version is written into a fresh timestamped directory, then the
``..data`` link is replaced by ``rename(2)`` of a new link over it: a reader
following ``password`` sees the old files or the new ones, never a mix.
Then the top-level links of entries that went away are removed, and the old
version's directory. Writing the same payload again changes nothing.

A container whose subPath mount points into such a volume keeps the file it
resolved at start (the bind follows the real path), which is why upstream
says subPath mounts do not receive updates.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

DATA_DIR = "..data"
DATA_TMP = "..data_tmp"


@dataclasses.dataclass(frozen=True, slots=True)
class FileProjection:
    """One file of a volume: its bytes and mode (e.g. ``0o644``)."""

    data: bytes
    mode: int = 0o644


def validate_path(path: str) -> None:
    """``ValueError`` for a path a volume may not write: absolute, with ``..``, or empty."""
    if not path:
        raise ValueError("invalid path: must not be empty")
    if len(path) > 4096:
        raise ValueError(f"invalid path: must be less than or equal to 4096 characters: {path}")
    if path.startswith("/"):
        raise ValueError(f"invalid path: must be relative path: {path}")
    parts = PurePosixPath(path).parts
    if ".." in parts:
        raise ValueError(f"invalid path: must not contain '..': {path}")
    if parts and parts[0].startswith(".."):
        raise ValueError(f"invalid path: must not start with '..': {path}")


def _new_version(target: Path) -> Path:
    """A fresh ``..<UTC time>.<nanoseconds>`` directory, as upstream names them."""
    while True:
        ns = time.time_ns()
        when = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC)
        version = target / f"..{when:%Y_%m_%d_%H_%M_%S}.{ns % 1_000_000_000:09d}"
        try:
            version.mkdir(mode=0o755)
        except FileExistsError:
            continue
        return version


def _current(target: Path) -> Path | None:
    link = target / DATA_DIR
    if not link.is_symlink():
        return None
    return target / os.readlink(link)


def _unchanged(version: Path, payload: Mapping[str, FileProjection]) -> bool:
    existing = {
        str(path.relative_to(version))
        for path in version.rglob("*")
        if path.is_file() and not path.is_symlink()
    }
    if existing != set(payload):
        return False
    for name, projection in payload.items():
        path = version / name
        if path.read_bytes() != projection.data or path.stat().st_mode & 0o7777 != projection.mode:
            return False
    return True


def write(
    target: Path, payload: Mapping[str, FileProjection], *, owner: tuple[int, int] | None = None
) -> bool:
    """Make ``target`` hold exactly ``payload``; whether anything changed."""
    for relative in payload:
        validate_path(relative)
    target.mkdir(parents=True, exist_ok=True)
    old = _current(target)
    if old is not None and old.is_dir() and _unchanged(old, payload):
        return False
    version = _new_version(target)
    for name, projection in payload.items():
        path = version / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(projection.data)
        os.chmod(path, projection.mode)
        if owner is not None:
            os.chown(path, *owner)
    os.chmod(version, 0o755)
    tmp = target / DATA_TMP
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(version.name, tmp)
    os.rename(tmp, target / DATA_DIR)  # the one atomic step
    wanted = {PurePosixPath(name).parts[0] for name in payload}
    for top in sorted(wanted):
        link = target / top
        if not link.is_symlink():
            os.symlink(f"{DATA_DIR}/{top}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted and entry.is_symlink():
            entry.unlink()
    if old is not None and old != version:
        shutil.rmtree(old, ignore_errors=True)
    return True
