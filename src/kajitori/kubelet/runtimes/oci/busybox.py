"""A stand-in ``ImageProvider``: every ``busybox`` image is the host's busybox-static.

Until the image store can pull from registries, this lets the oci runtime
run real pods (tests, ``kajitori up --runtime oci``) without any download:
the rootfs is built once from Debian's ``busybox-static`` (``/bin/busybox``
plus one symlink per applet, /etc/passwd and /etc/group with root and
nobody, /tmp with mode 1777). Any other image fails with ``ErrImagePull``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kajitori.kubelet.runtimes.oci import images

Object = dict[str, Any]

BUSYBOX = Path("/bin/busybox")
CONFIG: Object = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    },
}
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"


def is_busybox(image: str) -> bool:
    """``busybox``, ``busybox:1.36``, ``docker.io/library/busybox@sha256:...`` and the like."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return name == "busybox"


def build_rootfs(target: Path, busybox: Path = BUSYBOX) -> None:
    """Write a busybox root filesystem at ``target`` (which must not exist yet)."""
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for directory in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "root",
        "home",
        "proc",
        "sys",
        "dev",
    ):
        (staging / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, staging / "bin/busybox")
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = staging / applet
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (staging / "etc/passwd").write_text(PASSWD)
    (staging / "etc/group").write_text(GROUP)
    (staging / "tmp").mkdir()
    os.chmod(staging / "tmp", 0o1777)
    staging.rename(target)


class BusyboxImages:
    """``ImageProvider`` serving busybox images from one rootfs under ``root``."""

    def __init__(self, root: Path, *, busybox: Path = BUSYBOX) -> None:
        self.root = root
        self.busybox = busybox
        self._lock = asyncio.Lock()

    async def ensure(
        self, image: str, pull_policy: str, pod: Object, *, field_path: str = ""
    ) -> tuple[Path, Object]:
        if not is_busybox(image) or not self.busybox.exists():
            raise images.ImagePullError(
                f'failed to pull and unpack image "{image}": only busybox images are '
                f"available (from {self.busybox}) until the image store lands"
            )
        rootfs = self.root / "busybox" / "rootfs"
        async with self._lock:
            if not rootfs.exists():
                rootfs.parent.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(build_rootfs, rootfs, self.busybox)
        return rootfs, CONFIG
