"""The AtomicWriter layout: timestamped version, ``..data`` link, top-level links, updates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kajitori.kubelet.volumes import atomic_writer
from kajitori.kubelet.volumes.atomic_writer import FileProjection


def versions(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name.startswith("..2"))


def test_layout_after_first_write(tmp_path: Path) -> None:
    changed = atomic_writer.write(
        tmp_path, {"password": FileProjection(b"pw", 0o400), "conf/app.yaml": FileProjection(b"a")}
    )
    assert changed
    [version] = versions(tmp_path)
    assert os.readlink(tmp_path / "..data") == version
    assert os.readlink(tmp_path / "password") == "..data/password"
    assert os.readlink(tmp_path / "conf") == "..data/conf"
    assert (tmp_path / "password").read_bytes() == b"pw"
    assert (tmp_path / "conf/app.yaml").read_bytes() == b"a"
    assert (tmp_path / version / "password").stat().st_mode & 0o777 == 0o400
    assert (tmp_path / version / "conf/app.yaml").stat().st_mode & 0o777 == 0o644


def test_update_swaps_data_and_removes_old_entries(tmp_path: Path) -> None:
    atomic_writer.write(tmp_path, {"a": FileProjection(b"1"), "b": FileProjection(b"2")})
    [old] = versions(tmp_path)
    handle = open(tmp_path / "a")  # a reader of the old version keeps its file
    assert atomic_writer.write(tmp_path, {"a": FileProjection(b"one"), "c": FileProjection(b"3")})
    [new] = versions(tmp_path)
    assert new != old and os.readlink(tmp_path / "..data") == new
    assert (tmp_path / "a").read_bytes() == b"one"
    assert not (tmp_path / "b").exists() and not (tmp_path / "b").is_symlink()
    assert (tmp_path / "c").read_bytes() == b"3"
    assert handle.read() == "1"
    handle.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["..data", new, "a", "c"])


def test_same_payload_writes_nothing(tmp_path: Path) -> None:
    payload = {"a": FileProjection(b"1")}
    atomic_writer.write(tmp_path, payload)
    before = versions(tmp_path)
    assert not atomic_writer.write(tmp_path, payload)
    assert versions(tmp_path) == before
    assert atomic_writer.write(tmp_path, {"a": FileProjection(b"1", 0o600)})  # mode counts


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "..data/x", ""])
def test_bad_paths_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        atomic_writer.write(tmp_path, {path: FileProjection(b"x")})
