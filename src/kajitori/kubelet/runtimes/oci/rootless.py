"""Rootless mode of the oci runtime: pods under runc when the kubelet is not root.

Used by runtime.py and containers.py when the kubelet's effective uid is not
0 (decision 0033). What changes from the root runtime, and why:

* **User namespace per pod.** The sandbox is a holder process
  (userns_sandbox.py) in a new user namespace that owns the pod's network,
  IPC and UTS namespaces; ``ns/{user,net,ipc,uts}`` are symlinks to its
  ``/proc/<pid>/ns/*`` (no bind mounts without privilege). Containers join
  all four by path, so they share the network and IPC as in the root
  runtime, and container root is the kubelet's user outside.
* **Mapping**: the user's /etc/subuid and /etc/subgid ranges when both exist
  and newuidmap/newgidmap are installed (``0`` → the user, ``1..`` → the
  range), else one mapping of the user to root. With one mapping only uid and
  gid 0 exist in the pod: another ``runAsUser`` or group cannot be set and
  the run fails at once (``StartError``) saying so.
* **No cgroups**: without a delegated cgroup runc cannot create one, so the
  spec has no ``cgroupsPath`` and no ``resources``; containers with limits
  still run, and a ``RootlessLimits`` event on the pod says the limits are not
  enforced and that the pod has loopback networking only (no CNI without root).
* **Mounts as runc's ``spec --rootless``**: /sys a read-only rbind of the
  host's, no cgroup mount, no ``uid=``/``gid=`` options; /proc, /dev (runc
  bind-mounts the default devices inside a user namespace), devpts, shm and
  mqueue are mounted inside the pod's namespaces, which the user owns.
* **Rootfs**: an overlay needs privilege in the kubelet's mount namespace, so
  each run gets a copy of the image's tree (``cp -a --reflink=auto``: a
  reflink clone where the file system has them, a copy elsewhere). The image
  store's files are the user's (unpack.py cannot chown without privilege and
  records the image's owners in the ``user.kajitori.owner`` xattr).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pwd
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

Object = dict[str, Any]

SANDBOX = Path(__file__).with_name("userns_sandbox.py")
HOLDER_COMM = "kajitori-pod"
HOLDER_FILE = "holder.pid"  # in the pod's ns directory
NAMESPACES = ("user", "net", "ipc", "uts")
MAX_USER_NAMESPACES = Path("/proc/sys/user/max_user_namespaces")
APPARMOR_RESTRICT = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
UNPRIVILEGED_CLONE = Path("/proc/sys/kernel/unprivileged_userns_clone")
SANDBOX_TIMEOUT = 30.0
LIMITS_REASON = "RootlessLimits"
# Probe: can this user create a user namespace? (a child, never the kubelet itself)
_PROBE = (
    "import ctypes,os,sys\n"
    "libc=ctypes.CDLL(None,use_errno=True)\n"
    "sys.exit(0 if libc.unshare(0x10000000)==0 else ctypes.get_errno())\n"
)


class RootlessError(Exception):
    """Rootless containers cannot run here; ``str()`` says what to change."""


@dataclasses.dataclass(frozen=True, slots=True)
class IdMap:
    container_id: int
    host_id: int
    size: int

    def spec(self) -> Object:
        return {"containerID": self.container_id, "hostID": self.host_id, "size": self.size}


@dataclasses.dataclass(frozen=True, slots=True)
class Mappings:
    """The pod user namespace's uid and gid maps."""

    uids: tuple[IdMap, ...]
    gids: tuple[IdMap, ...]

    @property
    def single(self) -> bool:
        return len(self.uids) == 1 and len(self.gids) == 1

    def argument(self, kind: str) -> str:
        """``container:host:size`` triples for userns_sandbox.py."""
        maps = self.uids if kind == "uid" else self.gids
        return ",".join(f"{m.container_id}:{m.host_id}:{m.size}" for m in maps)

    def maps_uid(self, uid: int) -> bool:
        return any(m.container_id <= uid < m.container_id + m.size for m in self.uids)

    def maps_gid(self, gid: int) -> bool:
        return any(m.container_id <= gid < m.container_id + m.size for m in self.gids)


def subordinate_range(text: str, name: str, number: int) -> tuple[int, int] | None:
    """The first ``name:start:count`` (or ``uid:start:count``) range of /etc/subuid's ``text``."""
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(number)):
            continue
        with contextlib.suppress(ValueError):
            start, count = int(fields[1]), int(fields[2])
            if count > 0:
                return start, count
    return None


def mappings_for(
    uid: int,
    gid: int,
    *,
    name: str,
    subuid: str = "",
    subgid: str = "",
    helpers: bool = False,
) -> Mappings:
    """The user's ranges when both exist and newuidmap/newgidmap (``helpers``) can apply them."""
    users = subordinate_range(subuid, name, uid)
    groups = subordinate_range(subgid, name, uid)
    if helpers and users is not None and groups is not None:
        return Mappings(
            (IdMap(0, uid, 1), IdMap(1, users[0], users[1])),
            (IdMap(0, gid, 1), IdMap(1, groups[0], groups[1])),
        )
    return Mappings((IdMap(0, uid, 1),), (IdMap(0, gid, 1),))


def host_mappings() -> Mappings:
    """This process's mapping, from /etc/subuid, /etc/subgid and the helpers' presence."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)

    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    helpers = bool(shutil.which("newuidmap") and shutil.which("newgidmap"))
    return mappings_for(
        uid,
        gid,
        name=name,
        subuid=read("/etc/subuid"),
        subgid=read("/etc/subgid"),
        helpers=helpers,
    )


# ----- can this user have user namespaces? -----------------------------------


def userns_problem(
    *,
    probe_errno: int | None,
    max_user_namespaces: int | None,
    apparmor_restrict: int | None = None,
    unprivileged_clone: int | None = None,
) -> str | None:
    """Why unprivileged user namespaces are refused here (``None`` when they work).

    ``probe_errno`` is what ``unshare(CLONE_NEWUSER)`` in a child returned
    (``0``: it worked, ``None``: not tried); the sysctls say what to change.
    """
    if probe_errno == 0:
        return None
    if max_user_namespaces == 0:
        cause = "user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)"
    elif unprivileged_clone == 0:
        cause = (
            "kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)"
        )
    elif apparmor_restrict:
        cause = (
            "AppArmor restricts unprivileged user namespaces "
            "(sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
            "for runc that allows userns)"
        )
    elif probe_errno is None:
        return None
    else:
        cause = f"unshare(CLONE_NEWUSER) failed: {os.strerror(probe_errno)}"
    return (
        f"rootless oci runtime: unprivileged user namespaces are not allowed on this host: "
        f"{cause}; or run the kubelet as root"
    )


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def probe_user_namespaces() -> int:
    """``unshare(CLONE_NEWUSER)`` in a child process: 0 or the errno."""
    try:
        result = subprocess.run(
            [sys.executable, "-S", "-c", _PROBE], capture_output=True, timeout=30, check=False
        )
    except OSError as exc:  # this Python cannot even be started again: say why
        return exc.errno or 1
    return result.returncode


def check_host() -> str | None:
    """Why rootless containers cannot run here, or ``None``."""
    return userns_problem(
        probe_errno=probe_user_namespaces(),
        max_user_namespaces=_read_int(MAX_USER_NAMESPACES),
        apparmor_restrict=_read_int(APPARMOR_RESTRICT),
        unprivileged_clone=_read_int(UNPRIVILEGED_CLONE),
    )


def default_root() -> Path:
    """The oci runtime's root for a user: ``$XDG_DATA_HOME/kajitori/oci`` (~/.local/share)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "kajitori" / "oci"


# ----- the spec ----------------------------------------------------------------


def to_rootless(document: Object, mappings: Mappings, nsdir: Path) -> Object:
    """Make a root runtime's ``config.json`` run rootless (see the module docstring).

    ``ValueError`` when the process's user or group has no mapping in the pod.
    """
    process = document["process"]
    user = process["user"]
    if not mappings.maps_uid(int(user["uid"])) or not mappings.maps_gid(int(user["gid"])):
        raise ValueError(
            f"rootless: uid {user['uid']} / gid {user['gid']} has no mapping in the pod's user "
            f"namespace ({_describe(mappings)}); give the kubelet's user /etc/subuid and "
            f"/etc/subgid ranges and install newuidmap (Debian package uidmap), or run as root"
        )
    extra = [g for g in user.get("additionalGids") or () if mappings.maps_gid(int(g))]
    if mappings.single or not extra:
        user.pop("additionalGids", None)  # setgroups is denied with a single mapping
    else:
        user["additionalGids"] = extra
    linux = document["linux"]
    namespaces = [ns for ns in linux["namespaces"] if ns["type"] != "user"]
    linux["namespaces"] = [{"type": "user", "path": str(nsdir / "user")}, *namespaces]
    linux["uidMappings"] = [m.spec() for m in mappings.uids]
    linux["gidMappings"] = [m.spec() for m in mappings.gids]
    linux.pop("cgroupsPath", None)
    linux.pop("resources", None)
    document["mounts"] = [m for m in map(_rootless_mount, document["mounts"]) if m is not None]
    return document


def _describe(mappings: Mappings) -> str:
    if mappings.single:
        return "only uid and gid 0, one mapping of the kubelet's user"
    return "uids " + ", ".join(
        f"{m.container_id}-{m.container_id + m.size - 1}" for m in mappings.uids
    )


def _rootless_mount(mount: Object) -> Object | None:
    destination = mount["destination"].rstrip("/") or "/"
    if mount.get("type") == "cgroup" or destination == "/sys/fs/cgroup":
        return None  # runc cannot mount cgroups it does not manage
    if destination == "/sys":
        return {
            "destination": "/sys",
            "type": "none",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
    options = [o for o in mount.get("options") or () if not o.startswith(("uid=", "gid="))]
    return {**mount, "options": options}


def limits_event(pod: Object) -> tuple[str, str, str]:
    """``(type, reason, message)`` of the event a rootless sandbox records on its pod.

    A Warning when some container asks for resources that will not be
    enforced, Normal otherwise (the pod still has loopback networking only).
    """
    limited = _with_resources(pod)
    message = (
        "rootless runtime: the pod has its own network namespace with loopback only "
        "(no pod network without root); CPU and memory requests and limits are not "
        "enforced (no cgroups without delegation)"
    )
    if limited:
        message += f"; containers whose resources are not enforced: {', '.join(limited)}"
    return ("Warning" if limited else "Normal"), LIMITS_REASON, message


def _with_resources(pod: Object) -> list[str]:
    spec = pod.get("spec") or {}
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    return [
        str(c.get("name"))
        for c in containers
        if (c.get("resources") or {}).get("limits") or (c.get("resources") or {}).get("requests")
    ]


# ----- the sandbox holder and rootfs copies ---------------------------------------


class Rootless:
    """What the runtime does differently without root: sandboxes, rootfs copies, spec."""

    def __init__(self, mappings: Mappings | None = None) -> None:
        self.mappings = mappings or host_mappings()

    async def pin_namespaces(self, nsdir: Path, *, hostname: str) -> None:
        """Start the pod's holder and link ``nsdir/{user,net,ipc,uts}`` to its namespaces."""
        from kajitori.kubelet.runtimes.oci import runc  # RuncError: what the runtime catches

        self.release(nsdir)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-S",
            str(SANDBOX),
            str(nsdir.parent),
            hostname,
            self.mappings.argument("uid"),
            self.mappings.argument("gid"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        communicating = asyncio.ensure_future(process.communicate())
        try:
            out, err = await asyncio.wait_for(asyncio.shield(communicating), SANDBOX_TIMEOUT)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                out, _ = await asyncio.wait_for(communicating, SANDBOX_TIMEOUT)
                self._link(nsdir, out)  # so whoever cleans up finds the holder
            raise
        try:
            self._link(nsdir, out)
        except ValueError:
            text = (out + err).decode(errors="replace").strip().removeprefix("error ")
            raise runc.RuncError(text or "the rootless sandbox did not start") from None

    @staticmethod
    def _link(nsdir: Path, out: bytes) -> None:
        verb, _, rest = out.decode(errors="replace").strip().partition(" ")
        if verb != "ready":
            raise ValueError(rest)
        pid = int(rest)
        nsdir.mkdir(parents=True, exist_ok=True)
        (nsdir / HOLDER_FILE).write_text(str(pid))
        for name in NAMESPACES:
            link = nsdir / name
            link.unlink(missing_ok=True)
            link.symlink_to(f"/proc/{pid}/ns/{name}")

    @staticmethod
    def holder_pid(nsdir: Path) -> int | None:
        """The pod's holder, if it is still the process we started (name and directory)."""
        try:
            pid = int((nsdir / HOLDER_FILE).read_text())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, ValueError):
            return None
        if comm != HOLDER_COMM or os.path.realpath(nsdir.parent) != cwd:
            return None
        return pid

    def release(self, nsdir: Path) -> None:
        """Kill the pod's holder (its namespaces go with the last container) and drop the links."""
        pid = self.holder_pid(nsdir)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name in (*NAMESPACES, HOLDER_FILE):
            with contextlib.suppress(OSError):
                (nsdir / name).unlink()

    def sandbox_alive(self, nsdir: Path) -> bool:
        return self.holder_pid(nsdir) is not None

    async def make_rootfs(self, image_rootfs: Path, target: Path) -> None:
        """A private copy of the image's tree at ``target`` for one run."""
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            "cp",
            "-a",
            "--reflink=auto",
            "--no-preserve=ownership",
            str(image_rootfs),
            str(target),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise OSError(f"copying the image rootfs: {err.decode(errors='replace').strip()}")

    def adapt(self, document: Object, pod_directory: Path) -> Object:
        return to_rootless(document, self.mappings, pod_directory / "ns")
