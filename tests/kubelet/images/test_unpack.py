"""Layers apply as the OCI changeset rules say, and never write outside the rootfs."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from kajitori.kubelet.images import unpack
from kajitori.testing import images as build


def _apply(root: Path, entries: Sequence[build.Entry], *, compression: str = "none") -> int:
    tar = build.layer_tar(entries)
    blob, _ = build.compress(tar, compression)
    layer = root.parent / f"layer-{len(list(root.parent.iterdir()))}"
    layer.write_bytes(blob)
    return unpack.apply_layer(root, layer, diff_id=build.digest_of(tar))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    return rootfs


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    return directory


def test_whiteouts_remove_what_lower_layers_wrote(root: Path) -> None:
    """``.wh.x`` deletes x (a file or a whole directory) from the layers below."""
    _apply(root, [build.file("a", "1"), build.directory("d"), build.file("d/f", "2")])
    _apply(root, [build.whiteout("a"), build.whiteout("d")])
    assert sorted(os.listdir(root)) == []


def test_opaque_directories_hide_lower_children_but_keep_their_own(root: Path) -> None:
    """The opaque marker empties lower content, whatever its place among same-layer entries."""
    _apply(root, [build.directory("d"), build.file("d/lower", "1"), build.file("d/also", "1")])
    _apply(root, [build.directory("d"), build.file("d/upper", "2"), build.opaque("d")])
    assert sorted(os.listdir(root / "d")) == ["upper"]
    _apply(root, [build.opaque("d"), build.file("d/newest", "3")])
    assert sorted(os.listdir(root / "d")) == ["newest"]


def test_a_whiteout_does_not_remove_what_its_own_layer_wrote(root: Path) -> None:
    """Same-layer entries survive a whiteout for their name."""
    _apply(root, [build.file("x", "new"), build.whiteout("x")])
    assert (root / "x").read_text() == "new"


def test_hard_links_share_an_inode_and_symlinks_keep_their_target(root: Path) -> None:
    """Hard links resolve inside the rootfs; symlinks are written verbatim."""
    _apply(
        root,
        [
            build.file("bin/busybox", b"\x7fELF", mode=0o755),
            build.hardlink("bin/sh", "bin/busybox"),
            build.symlink("bin/ls", "busybox"),
            build.symlink("abs", "/bin/busybox"),
        ],
    )
    assert os.stat(root / "bin/sh").st_ino == os.stat(root / "bin/busybox").st_ino
    assert os.readlink(root / "bin/ls") == "busybox"
    assert os.readlink(root / "abs") == "/bin/busybox"


def test_modes_owners_and_mtimes_are_restored(root: Path) -> None:
    """Sticky and setuid bits survive; numeric ids and mtimes are the tar's."""
    _apply(
        root,
        [
            build.directory("tmp", mode=0o1777),
            build.file("bin/su", b"x", mode=0o4755, uid=0, gid=0),
            build.file("home/app/data", b"x", mode=0o600, uid=1000, gid=1000),
            build.directory("ro", mode=0o555),
            build.file("ro/file", b"x"),
        ],
    )
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(root / "bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(root / "ro").st_mode) == 0o555
    assert os.stat(root / "tmp").st_mtime == build.MTIME  # set after its children
    assert os.stat(root / "ro").st_mtime == build.MTIME
    if os.geteuid() == 0:
        data = os.stat(root / "home/app/data")
        assert (data.st_uid, data.st_gid) == (1000, 1000)


def test_an_entry_replaces_a_file_or_directory_of_another_kind(root: Path) -> None:
    """A file over a directory and a directory over a file both win."""
    _apply(root, [build.directory("x"), build.file("x/y", "1"), build.file("f", "1")])
    _apply(root, [build.file("x", "now a file"), build.directory("f")])
    assert (root / "x").read_text() == "now a file"
    assert (root / "f").is_dir()


def test_absolute_member_names_land_inside_the_rootfs(root: Path) -> None:
    """``/etc/evil`` is ``<rootfs>/etc/evil``, never the host's /etc."""
    _apply(root, [build.file("/etc/kajitori-evil", "x")])
    assert (root / "etc/kajitori-evil").read_text() == "x"
    assert not Path("/etc/kajitori-evil").exists()


def test_dot_dot_in_a_member_name_is_refused(root: Path, outside: Path) -> None:
    """A name that climbs is an error, and nothing is written outside."""
    with pytest.raises(unpack.UnpackError, match="escapes the root filesystem"):
        _apply(root, [build.file(f"../{outside.name}/evil", "x")])
    assert os.listdir(outside) == []


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_writes_through_symlinks_stay_inside_the_rootfs(
    root: Path, outside: Path, kind: str
) -> None:
    """A symlink to the host's directory is followed as if chrooted."""
    target = str(outside) if kind == "absolute" else "../" * 10 + str(outside).lstrip("/")
    _apply(root, [build.symlink("escape", target)])
    _apply(root, [build.file("escape/pwned", "x"), build.hardlink("escape/linked", "escape/pwned")])
    assert os.listdir(outside) == []
    assert (root / str(outside).lstrip("/") / "pwned").read_text() == "x"


def test_a_hard_link_to_a_host_file_is_refused(root: Path) -> None:
    """The link target resolves inside the rootfs, where it does not exist."""
    with pytest.raises(unpack.UnpackError, match="hard link"):
        _apply(root, [build.hardlink("passwd", "/etc/passwd")])
    with pytest.raises(unpack.UnpackError, match="escapes the root filesystem"):
        _apply(root, [build.hardlink("passwd", "../../../../etc/passwd")])


def test_a_layer_whose_content_is_not_its_diff_id_is_refused(root: Path) -> None:
    """The uncompressed stream's sha256 must be the config's diff_id."""
    layer = root.parent / "layer"
    layer.write_bytes(build.layer_tar([build.file("a", "1")]))
    with pytest.raises(unpack.UnpackError, match="diff_id mismatch"):
        unpack.apply_layer(root, layer, diff_id="sha256:" + "0" * 64)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_gzip_zstd_and_plain_layers_unpack(root: Path, compression: str) -> None:
    """The compression is read from the blob's first bytes."""
    if compression == "zstd":
        pytest.importorskip("zstandard")
    entries = [build.file("hello", f"via {compression}")]
    assert _apply(root, entries, compression=compression) == 1
    assert (root / "hello").read_text() == f"via {compression}"


def test_the_busybox_fixture_unpacks_to_a_usable_tree(root: Path) -> None:
    """Two layers: applets, whiteout, opaque directory and a hard link."""
    for layer in build.busybox_layers():
        _apply(root, layer, compression="gzip")
    assert os.readlink(root / "bin/sh") == "busybox"
    assert not (root / "etc/motd").exists()
    assert sorted(os.listdir(root / "var/cache")) == ["new"]
    assert (
        os.stat(root / "etc/hostname.link").st_ino == os.stat(root / "etc/hostname.template").st_ino
    )
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777


def test_a_file_over_a_symlink_replaces_the_link_not_its_target(root: Path, outside: Path) -> None:
    """Writing to a name that is a symlink never writes through it."""
    victim = outside / "victim"
    victim.write_text("host data")
    _apply(root, [build.symlink("config", str(victim))])
    _apply(root, [build.file("config", "image data")])
    assert victim.read_text() == "host data"
    assert not (root / "config").is_symlink()
    assert (root / "config").read_text() == "image data"


def test_devices_are_skipped_and_owners_kept_when_not_root(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without CAP_MKNOD a device entry is skipped; the rest of the layer applies."""
    monkeypatch.setattr(unpack.os, "geteuid", lambda: 1000)
    null = build.Entry("dev/null", "chardev", mode=0o666)
    _apply(root, [build.directory("dev"), null, build.file("dev/keep", "x")])
    assert sorted(os.listdir(root / "dev")) == ["keep"]


def test_xattrs_are_restored_where_the_file_system_allows(root: Path) -> None:
    """PAX SCHILY.xattr records become extended attributes (best effort)."""
    entry = build.Entry("tagged", "file", data=b"x", xattrs={"user.kajitori": "yes"})
    _apply(root, [entry])
    try:
        value = os.getxattr(root / "tagged", "user.kajitori")
    except OSError:
        pytest.skip("this file system takes no user xattrs")
    assert value == b"yes"
