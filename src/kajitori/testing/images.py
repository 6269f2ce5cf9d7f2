"""Build small OCI images in pure Python, for tests: no Docker, no downloads.

``busybox_image()`` is a two-layer image from this machine's busybox-static
(``/bin/busybox`` plus one symlink per applet, ``/etc/passwd``, ``/tmp`` 1777),
whose second layer removes a file (whiteout), empties a directory (opaque
whiteout) and adds a hard link. ``build_image(layers)`` builds any image from
tar entries made by ``file()``, ``directory()``, ``symlink()``, ``hardlink()``,
``whiteout()`` and ``opaque()``; ``build_index`` makes a multi-platform index.
``curl_image()`` adds this machine's ``/usr/bin/curl`` (Debian's curl package),
every shared object it loads (``ldd``) and the CA bundle of ca-certificates to
the busybox layer: a shell with curl, for requests made from inside a pod.
Writers put them in an OCI layout, an OCI archive or a docker-save tarball.

Digests are reproducible: fixed mtimes, gzip without a timestamp.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet.images import manifest

MTIME = 1_700_000_000
BUSYBOX = Path("/bin/busybox")
CURL = Path("/usr/bin/curl")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# ldd's lines name each object the loader found: "libz.so.1 => /lib/.../libz.so.1 (0x...)".
_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)")


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One tar entry of a layer."""

    name: str
    kind: str  # file, dir, symlink, hardlink, fifo, chardev
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    xattrs: dict[str, str] = dataclasses.field(default_factory=dict)


def file(name: str, data: bytes | str, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    raw = data.encode() if isinstance(data, str) else data
    return Entry(name, "file", data=raw, mode=mode, uid=uid, gid=gid)


def directory(name: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(name, "dir", mode=mode, uid=uid, gid=gid)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", target=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    parent, base = os.path.split(path)
    return file(os.path.join(parent, ".wh." + base), b"")


def opaque(directory_path: str) -> Entry:
    return file(os.path.join(directory_path, ".wh..wh..opq"), b"")


def layer_tar(entries: Iterable[Entry]) -> bytes:
    """An uncompressed layer tar (PAX, so xattrs and long names survive)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, MTIME
            if entry.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in entry.xattrs.items()}
            body = None
            if entry.kind == "file":
                info.size, body = len(entry.data), io.BytesIO(entry.data)
            else:
                info.type = {
                    "dir": tarfile.DIRTYPE,
                    "symlink": tarfile.SYMTYPE,
                    "hardlink": tarfile.LNKTYPE,
                    "fifo": tarfile.FIFOTYPE,
                    "chardev": tarfile.CHRTYPE,
                }[entry.kind]
                info.linkname = entry.target
            tar.addfile(info, body)
    return buffer.getvalue()


def compress(data: bytes, compression: str) -> tuple[bytes, str]:
    """(blob, media type) for an uncompressed layer: ``gzip``, ``zstd`` or ``none``."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0), manifest.OCI_LAYER_GZIP
    if compression == "zstd":
        import zstandard  # optional: only zstd tests need it

        return zstandard.ZstdCompressor().compress(data), manifest.OCI_LAYER_ZSTD
    return data, manifest.OCI_LAYER


@dataclasses.dataclass(frozen=True, slots=True)
class Image:
    """A built image: its manifest and every blob it needs, by digest."""

    manifest_bytes: bytes
    media_type: str
    blobs: dict[str, bytes]
    config: dict[str, Any]
    layer_tars: tuple[bytes, ...]  # uncompressed, for docker save

    @property
    def digest(self) -> str:
        return digest_of(self.manifest_bytes)

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_bytes)  # type: ignore[no-any-return]

    @property
    def config_digest(self) -> str:
        return str(self.manifest["config"]["digest"])

    def descriptor(self, platform: dict[str, str] | None = None) -> dict[str, Any]:
        descriptor: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.manifest_bytes),
        }
        if platform:
            descriptor["platform"] = platform
        return descriptor


@dataclasses.dataclass(frozen=True, slots=True)
class Index:
    """A multi-platform index and its images."""

    index_bytes: bytes
    media_type: str
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return digest_of(self.index_bytes)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image(
    layers: Sequence[Sequence[Entry]],
    *,
    config: dict[str, Any] | None = None,
    architecture: str = "amd64",
    compression: str = "gzip",
    docker: bool = False,
) -> Image:
    """An image of ``layers`` (each a list of entries) with ``config`` as its ``config``."""
    tars = tuple(layer_tar(entries) for entries in layers)
    blobs: dict[str, bytes] = {}
    layer_descriptors = []
    for tar in tars:
        blob, media_type = compress(tar, compression)
        if docker and media_type == manifest.OCI_LAYER_GZIP:
            media_type = manifest.DOCKER_LAYER_GZIP
        blobs[digest_of(blob)] = blob
        layer_descriptors.append(
            {"mediaType": media_type, "digest": digest_of(blob), "size": len(blob)}
        )
    image_config = {
        "architecture": architecture,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": config or {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(t) for t in tars]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "kajitori.testing"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    blobs[digest_of(config_bytes)] = config_bytes
    media_type = manifest.DOCKER_MANIFEST if docker else manifest.OCI_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": manifest.DOCKER_CONFIG if docker else manifest.OCI_CONFIG,
            "digest": digest_of(config_bytes),
            "size": len(config_bytes),
        },
        "layers": layer_descriptors,
    }
    manifest_bytes = json.dumps(document, indent=2).encode()
    return Image(manifest_bytes, media_type, blobs, image_config, tars)


def build_index(images: dict[str, Image], *, docker: bool = False) -> Index:
    """An index of ``{"linux/amd64": image, "linux/arm64/v8": image, ...}``."""
    descriptors = []
    for name, image in images.items():
        os_name, arch, *variant = name.split("/")
        platform = {"os": os_name, "architecture": arch}
        if variant:
            platform["variant"] = variant[0]
        descriptors.append(image.descriptor(platform))
    media_type = manifest.DOCKER_MANIFEST_LIST if docker else manifest.OCI_INDEX
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": descriptors}
    return Index(json.dumps(document, indent=2).encode(), media_type, tuple(images.values()))


def busybox_applets() -> list[str]:
    """The applets of this machine's busybox (``busybox --list``)."""
    output = subprocess.run(
        [str(BUSYBOX), "--list"], check=True, capture_output=True, text=True
    ).stdout
    return sorted({line.strip() for line in output.splitlines() if line.strip()} - {"busybox"})


def busybox_layers(*, marker: str = "") -> list[list[Entry]]:
    """Two layers: busybox with its applets, then whiteout, opaque and hard-link changes."""
    base = [
        directory("bin"),
        file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755),
        *(symlink(f"bin/{applet}", "busybox") for applet in busybox_applets()),
        directory("etc"),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
        file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        file("etc/motd", "to be removed by a whiteout\n"),
        directory("tmp", mode=0o1777),
        directory("var"),
        directory("var/cache"),
        file("var/cache/old", "to be hidden by an opaque directory\n"),
        directory("root", mode=0o700),
    ]
    changes = [
        whiteout("etc/motd"),
        directory("var/cache"),
        opaque("var/cache"),
        file("var/cache/new", "from layer two\n"),
        file("etc/hostname.template", f"kajitori{marker}\n"),
        hardlink("etc/hostname.link", "etc/hostname.template"),
    ]
    return [base, changes]


def busybox_image(
    *,
    architecture: str = "amd64",
    compression: str = "gzip",
    docker: bool = False,
    env: Sequence[str] = (),
) -> Image:
    """The busybox stand-in: ``Cmd ["sh"]``, Env with PATH and ``IMAGE_ARCH``."""
    config = {
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"IMAGE_ARCH={architecture}",
            *env,
        ],
        "Cmd": ["sh"],
        "WorkingDir": "/",
    }
    return build_image(
        busybox_layers(marker=architecture),
        config=config,
        architecture=architecture,
        compression=compression,
        docker=docker,
    )


def shared_objects(binary: Path) -> list[Path]:
    """The shared objects (and loader) ``binary`` loads on this machine, as ``ldd`` names them."""
    output = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True).stdout
    return sorted({Path(found) for found in _LDD_PATH.findall(output)})


def binary_layer(binary: Path, *, extra: Iterable[Entry] = ()) -> list[Entry]:
    """``binary`` and its shared objects at the paths the loader looks for them.

    Each object is stored under the name ``ldd`` printed (``/lib/x86_64-linux-gnu/...``,
    ``/lib64/ld-linux-x86-64.so.2``) with the content of the file it resolves to, so the
    image needs no ``ld.so.cache`` nor the host's usr-merge symlinks: glibc's built-in
    search path on Debian includes the multiarch directory.
    """
    paths = [binary, *shared_objects(binary)]
    directories = sorted(
        {str(parent)[1:] for p in paths for parent in p.parents if parent != Path("/")}
    )
    return [
        *(directory(name) for name in directories),
        *(file(str(p)[1:], p.resolve().read_bytes(), mode=0o755) for p in paths),
        *extra,
    ]


@functools.cache
def curl_image(*, compression: str = "gzip") -> Image:
    """busybox (``sh`` and applets) plus this machine's curl: ``Cmd ["sh"]``.

    Built from installed Debian packages (busybox-static, curl and the libraries it
    links, ca-certificates), nothing downloaded. Cached: the layer is ~19 MB.
    """
    if not CURL.exists():
        raise FileNotFoundError(
            f"{CURL} is missing: install Debian's curl (scripts/install-test-deps)"
        )
    base = busybox_layers()[0]
    curl = binary_layer(
        CURL,
        extra=[
            directory("etc/ssl"),
            directory("etc/ssl/certs"),
            file(
                "etc/ssl/certs/ca-certificates.crt",
                CA_BUNDLE.read_bytes() if CA_BUNDLE.exists() else b"",
            ),
            file("etc/nsswitch.conf", "hosts: files dns\n"),
        ],
    )
    config = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "WorkingDir": "/",
    }
    return build_image([base, curl], config=config, compression=compression)


def write_oci_layout(directory_path: Path, images: dict[str, Image | Index]) -> None:
    """An OCI image layout with ``images`` named by ``org.opencontainers.image.ref.name``."""
    blobs = directory_path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory_path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors = []
    for name, item in images.items():
        for digest, data in _all_blobs(item).items():
            (blobs / digest.split(":", 1)[1]).write_bytes(data)
        if isinstance(item, Index):
            descriptor = {
                "mediaType": item.media_type,
                "digest": item.digest,
                "size": len(item.index_bytes),
            }
        else:
            descriptor = item.descriptor()
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": name}
        descriptors.append(descriptor)
    index = {"schemaVersion": 2, "mediaType": manifest.OCI_INDEX, "manifests": descriptors}
    (directory_path / "index.json").write_text(json.dumps(index))


def write_oci_archive(path: Path, images: dict[str, Image | Index]) -> None:
    """A tar of an OCI layout (what ``skopeo copy ... oci-archive:`` writes)."""
    staging = path.with_name(path.name + ".layout")
    write_oci_layout(staging, images)
    with tarfile.open(path, "w") as tar:
        for child in sorted(staging.iterdir()):
            tar.add(child, arcname=child.name)
    shutil.rmtree(staging)


def write_docker_save(path: Path, image: Image, repo_tags: Sequence[str]) -> None:
    """A tarball as ``docker save`` (before Docker 25) writes: uncompressed layer tars."""
    config_bytes = image.blobs[image.config_digest]
    config_name = image.config_digest.split(":", 1)[1] + ".json"
    members: dict[str, bytes] = {config_name: config_bytes}
    layer_names = []
    for tar in image.layer_tars:
        name = f"{hashlib.sha256(tar).hexdigest()}/layer.tar"
        members[name] = tar
        layer_names.append(name)
    entry = {"Config": config_name, "RepoTags": list(repo_tags), "Layers": layer_names}
    members["manifest.json"] = json.dumps([entry]).encode()
    with tarfile.open(path, "w") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            out.addfile(info, io.BytesIO(data))


def _all_blobs(item: Image | Index) -> dict[str, bytes]:
    if isinstance(item, Image):
        return {item.digest: item.manifest_bytes, **item.blobs}
    blobs = {item.digest: item.index_bytes}
    for image in item.images:
        blobs.update(_all_blobs(image))
    return blobs
