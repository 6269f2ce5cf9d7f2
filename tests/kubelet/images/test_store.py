"""The shared image store: loading archives, naming, garbage collection, the CLI."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from kajitori.cli import main as cli
from kajitori.kubelet.images import archive, manifest, puller, registry, store
from kajitori.testing import images


@pytest.fixture(scope="module")
def variants(busybox: images.Image) -> dict[str, images.Image]:
    """Three images: two share every layer, the third has its own second layer."""
    return {
        "a": busybox,
        "b": images.busybox_image(env=["VARIANT=b"]),  # same layers, another config
        "c": images.busybox_image(architecture="arm64"),  # another second layer
    }


def _load_all(
    image_store: store.ImageStore, tmp_path: Path, items: dict[str, images.Image]
) -> None:
    path = tmp_path / "all.tar"
    images.write_oci_archive(path, {f"example.com/{k}:1": v for k, v in items.items()})
    archive.load(image_store, path)


def test_a_docker_save_tarball_loads_under_its_repo_tags(
    image_store: store.ImageStore, tmp_path: Path, busybox: images.Image
) -> None:
    """Every RepoTag names the image; the rootfs is unpacked and the id is the config digest."""
    path = tmp_path / "busybox.tar"
    images.write_docker_save(path, busybox, ["busybox:1.0", "localhost:5000/demo/app:2"])
    loaded = archive.load(image_store, path)
    assert [image.reference for image in loaded] == [
        "docker.io/library/busybox:1.0",
        "localhost:5000/demo/app:2",
    ]
    found = image_store.lookup("docker.io/library/busybox:1.0")
    assert found is not None and found.image_id == busybox.config_digest
    assert found.references == ("docker.io/library/busybox:1.0", "localhost:5000/demo/app:2")
    assert os.readlink(found.rootfs / "bin/sh") == "busybox"
    assert not (found.rootfs / "etc/motd").exists()


def test_an_oci_archive_with_an_index_loads_this_platforms_image(
    image_store: store.ImageStore, tmp_path: Path
) -> None:
    """An index entry resolves to the requested platform; a bare tag needs a base name."""
    index = images.build_index(
        {
            "linux/amd64": images.busybox_image(architecture="amd64"),
            "linux/arm64": images.busybox_image(architecture="arm64"),
        }
    )
    path = tmp_path / "oci.tar"
    images.write_oci_archive(path, {"2.0": index})
    [unnamed] = archive.load(image_store, path)
    assert unnamed.reference is None
    [named] = archive.load(
        image_store, path, base_name="demo/app", platform=manifest.Platform.parse("linux/arm64")
    )
    assert named.reference == "docker.io/demo/app:2.0"
    assert named.image_id == index.images[1].config_digest


def test_a_damaged_archive_is_refused(
    image_store: store.ImageStore, tmp_path: Path, busybox: images.Image
) -> None:
    """A blob whose content is not its digest stops the load."""
    layout = tmp_path / "layout"
    images.write_oci_layout(layout, {"example.com/x:1": busybox})
    layer = busybox.manifest["layers"][0]["digest"].split(":", 1)[1]
    blob = layout / "blobs" / "sha256" / layer
    data = blob.read_bytes()
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    path = tmp_path / "damaged.tar"
    with tarfile.open(path, "w") as tar:
        for child in layout.iterdir():
            tar.add(child, arcname=child.name)
    with pytest.raises(archive.ArchiveError, match="unexpected commit"):
        archive.load(image_store, path)
    with pytest.raises(archive.ArchiveError, match="neither a docker save tarball"):
        archive.load(image_store, _tar_of(tmp_path, {"hello.txt": b"hi"}))


def test_gc_removes_unused_images_and_only_their_blobs(
    image_store: store.ImageStore, tmp_path: Path, variants: dict[str, images.Image]
) -> None:
    """In-use images stay with every blob they need; shared layers survive."""
    _load_all(image_store, tmp_path, variants)
    result = image_store.gc({"example.com/a:1"})
    assert set(result.removed) == {variants["b"].config_digest, variants["c"].config_digest}
    assert [r.references for r in image_store.list()] == [("example.com/a:1",)]
    for digest in [variants["a"].digest, *variants["a"].blobs]:
        assert image_store.has_blob(digest)
    arm_only = variants["c"].manifest["layers"][1]["digest"]
    assert not image_store.has_blob(arm_only)
    assert not image_store.has_blob(variants["b"].config_digest)
    rootfs = sorted(p.name for p in (image_store.root / "rootfs").iterdir())
    assert rootfs == [variants["a"].config_digest.split(":", 1)[1]]


def test_gc_frees_the_least_recently_used_first(
    image_store: store.ImageStore, tmp_path: Path, variants: dict[str, images.Image]
) -> None:
    """With a byte target, images go oldest use first until enough is freed."""
    _load_all(image_store, tmp_path, variants)
    for age, name in enumerate(["c", "a", "b"]):
        image_store.touch(variants[name].config_digest, now=1000.0 + age)
    result = image_store.gc(set(), bytes_to_free=1)
    assert result.removed == (variants["c"].config_digest,)
    assert result.bytes_freed > 0
    assert image_store.lookup("example.com/a:1") is not None


async def test_a_loaded_image_runs_with_pull_policy_never(
    image_store: store.ImageStore, tmp_path: Path, busybox: images.Image
) -> None:
    """kajitori image load is how people without a registry run their images."""
    path = tmp_path / "app.tar"
    images.write_docker_save(path, busybox, ["my-app:dev"])
    archive.load(image_store, path)
    client = registry.RegistryClient()
    try:
        info = await puller.ImageManager(image_store, client).ensure_image("my-app:dev", "Never")
    finally:
        await client.aclose()
    assert info.reference == "docker.io/library/my-app:dev"
    assert (info.rootfs / "bin/busybox").is_file()


def test_the_cli_loads_lists_removes_and_prunes(
    tmp_path: Path, busybox: images.Image, capsys: pytest.CaptureFixture[str]
) -> None:
    """kajitori image load / ls / rm / prune on a data dir."""
    path = tmp_path / "busybox.tar"
    images.write_docker_save(path, busybox, ["busybox:1.0"])
    data = ["image", "--data-dir", str(tmp_path / "data")]
    assert cli.main([*data, "load", str(path)]) == 0
    assert capsys.readouterr().out == "Loaded image: docker.io/library/busybox:1.0\n"
    assert cli.main([*data, "ls"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert row.split()[:3] == [
        "docker.io/library/busybox",
        "1.0",
        busybox.config_digest.split(":", 1)[1][:13],
    ]
    assert cli.main([*data, "rm", "busybox:1.0"]) == 0
    assert cli.main([*data, "prune"]) == 0
    assert "removed 1 images" in capsys.readouterr().out
    assert cli.main([*data, "load", str(_tar_of(tmp_path, {"x": b"y"}))]) == 1
    assert "neither a docker save tarball" in capsys.readouterr().err


def test_the_index_survives_as_json(
    image_store: store.ImageStore, tmp_path: Path, busybox: images.Image
) -> None:
    """index.json maps references to image ids a person can read."""
    path = tmp_path / "b.tar"
    images.write_docker_save(path, busybox, ["busybox:1.0"])
    archive.load(image_store, path)
    index = json.loads((image_store.root / "index.json").read_text())
    assert index["references"] == {"docker.io/library/busybox:1.0": busybox.config_digest}


def _tar_of(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
