"""Mounts and cgroups the oci runtime makes, and finding them again to remove them.

Mounts are made with ``mount(2)`` through libc (a ``mount`` process would
cost ~5 ms each); the runtime's only mounts are each container's overlay
rootfs and each sandbox's three pinned namespace files, all under the
runtime's root, so ``mounts_under`` finds every one of them from
/proc/self/mountinfo, also after a restart. runc deletes a container's own
cgroup but not the parents named in ``cgroupsPath``; ``remove_cgroups``
removes the pod's parent in every hierarchy (cgroup v1 controllers and the
v2 tree alike).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MNT_DETACH = 2
CGROUP_ROOT = Path("/sys/fs/cgroup")
_libc = ctypes.CDLL(None, use_errno=True)


def _raise(what: str) -> None:
    errno = ctypes.get_errno()
    raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount_overlay(target: Path, *, lower: Path, upper: Path, work: Path) -> None:
    """An overlay at ``target``; ``upper`` and ``work`` must not be on overlayfs."""
    options = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options) != 0:
        _raise(f"mount overlay on {target}")


def unmount(target: Path) -> None:
    """Detach ``target``; a no-op when nothing is mounted there."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (
        22,  # EINVAL: not a mount point
        2,  # ENOENT
        *((1,) if os.geteuid() != 0 else ()),  # EPERM: a rootless runtime mounts nothing here
    ):
        _raise(f"unmount {target}")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest (latest) first."""
    prefix = str(directory).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as file:
        for line in file:
            point = _unescape(line.split(" ", 5)[4])
            if point.startswith(prefix) or point == prefix[:-1]:
                found.append(Path(point))
    return list(reversed(found))


def unmount_all(directory: Path) -> None:
    for point in mounts_under(directory):
        unmount(point)


def cgroup_dirs(parent: str) -> list[Path]:
    """The directories of cgroup ``parent`` (e.g. ``/kajitori/pod<uid>``) in every hierarchy."""
    relative = parent.strip("/")
    found = []
    candidates = [CGROUP_ROOT / relative]
    if CGROUP_ROOT.is_dir():
        candidates += [entry / relative for entry in CGROUP_ROOT.iterdir() if entry.is_dir()]
    for candidate in candidates:
        if candidate.is_dir():
            found.append(candidate)
    return found


def remove_cgroups(parent: str) -> None:
    """rmdir ``parent`` and whatever empty cgroups are left below it, in every hierarchy."""
    for top in cgroup_dirs(parent):
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
            try:
                os.rmdir(directory)
            except OSError:
                pass  # still has processes: runc delete failed; counted as a leak by tests
