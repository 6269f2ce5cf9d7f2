"""From a pod's container to an OCI runtime-spec ``config.json`` for runc.

What upstream splits between the kubelet (pkg/kubelet/kuberuntime/
kuberuntime_container.go: ``generateContainerConfig``, ``containerCommand``
in helpers.go) and containerd's CRI plugin (``WithProcessArgs``, the default
capability set, ``WithoutRunMount`` ...) happens here in one pure function,
``container_spec``: no I/O, so every rule is a table test.

Rules followed:

* args: ``command`` replaces the image's Entrypoint and drops its Cmd;
  ``args`` alone replaces Cmd (upstream's containerCommand);
* env: the image's Env, then the container's plain ``value`` env (the
  container wins), ``HOSTNAME``; ``valueFrom``, envFrom and service links
  are the kubelet's to resolve (kubelet/volumes/env.py), given as
  ``resolved_env``, with volume bind mounts as ``volume_mounts``;
* user: container securityContext over pod securityContext over the
  image's ``User`` (numeric, or a name looked up in the image's
  /etc/passwd and /etc/group by the caller); supplementalGroups and fsGroup
  become additional gids;
* capabilities: containerd's default set, then ``drop`` (``ALL`` empties it),
  then ``add`` (``ALL`` is every capability); ``privileged`` gets them all,
  no masked or read-only /proc paths, a writable /sys and every device;
* ``noNewPrivileges`` is ``not allowPrivilegeEscalation`` (default: allowed,
  as upstream);
* resources: ``limits.memory`` → memory limit, ``limits.cpu`` → CFS quota
  over a 100 ms period, ``requests.cpu`` → cpu shares (upstream's
  MilliCPUToShares: at least 2); runc maps shares to cgroup v2 weight.
* namespaces: new pid and mount namespaces per container; the pod
  sandbox's network, IPC and UTS namespaces by path, so the containers of
  a pod share them and the hostname the sandbox set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet.volumes import env as envvars
from kajitori.machinery import quantity

Object = dict[str, Any]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# containerd's default capabilities (oci/spec.go, defaultUnixCaps), which upstream relies on.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# Every capability by number (bit in /proc/<pid>/status), as of Linux 5.9.
ALL_CAPABILITIES = tuple(
    f"CAP_{name}"
    for name in (
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
        "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
        "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
        "CHECKPOINT_RESTORE"
    ).split()
)
# runc's and containerd's defaults for unprivileged containers.
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
CPU_PERIOD = 100_000  # µs, upstream's quotaPeriod
MIN_SHARES = 2


@dataclasses.dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an OCI image config (``config`` of the config blob) a container uses."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_config(cls, blob: Object) -> ImageConfig:
        """Accepts the whole config blob (``{"config": {...}}``) or its ``config`` part."""
        config = blob.get("config", blob) if isinstance(blob.get("config"), dict) else blob
        return cls(
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=tuple(config.get("Env") or ()),
            working_dir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Sandbox:
    """Where the pod's shared namespaces are, and the pod's cgroup parent."""

    netns: Path
    ipcns: Path
    utsns: Path
    cgroup_parent: str


def command_line(container: Object, image: ImageConfig) -> list[str]:
    """The process args by upstream's rules (see the module docstring)."""
    command = list(container.get("command") or ())
    args = container.get("args")
    if command:
        return command + list(args or ())
    return list(image.entrypoint) + (list(args) if args else list(image.cmd))


def environment(
    container: Object,
    image: ImageConfig,
    *,
    hostname: str,
    resolved: list[tuple[str, str]] | None = None,
) -> list[str]:
    """Image env, HOSTNAME, then the container's: ``resolved`` (kubelet/volumes/env.py) if given."""
    merged: dict[str, str] = {"PATH": DEFAULT_PATH}
    for entry in image.env:
        key, _, value = entry.partition("=")
        merged[key] = value
    merged["HOSTNAME"] = hostname
    if resolved is not None:
        merged.update(resolved)
        return [f"{key}={value}" for key, value in merged.items()]
    for var in container.get("env") or ():
        if "valueFrom" not in var:
            merged[var["name"]] = str(var.get("value") or "")
    return [f"{key}={value}" for key, value in merged.items()]


def _security(pod: Object, container: Object) -> tuple[Object, Object]:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    return pod_sc, container.get("securityContext") or {}


def user_of(
    pod: Object, container: Object, *, image_uid: int, image_gid: int
) -> tuple[int, int, list[int]]:
    """``(uid, gid, additional gids)``; ``image_uid``/``image_gid`` come from the image's User."""
    pod_sc, sc = _security(pod, container)
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    uid = image_uid if uid is None else int(uid)
    gid = (image_gid if uid == image_uid else 0) if gid is None else int(gid)
    extra = [int(g) for g in pod_sc.get("supplementalGroups") or ()]
    if pod_sc.get("fsGroup") is not None:
        extra.append(int(pod_sc["fsGroup"]))
    return uid, gid, sorted(set(extra) - {gid})


def verify_run_as_non_root(pod: Object, container: Object, *, image_user: str, uid: int) -> None:
    """``ValueError`` with upstream's message when ``runAsNonRoot`` forbids running as ``uid``.

    As upstream's verifyRunAsNonRoot: an explicit ``runAsUser: 0`` breaks the
    policy, so does an image that runs as root, and an image user given by
    name cannot be verified.
    """
    pod_sc, sc = _security(pod, container)
    if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
        return
    meta = pod.get("metadata") or {}
    where = (
        f'(pod: "{meta.get("name")}_{meta.get("namespace")}({meta.get("uid")})", '
        f"container: {container.get('name')})"
    )
    explicit = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if explicit is not None:
        if int(explicit) == 0:
            raise ValueError(f"container's runAsUser breaks non-root policy {where}")
        return
    name = image_user.partition(":")[0]
    if name and not name.isdigit():
        raise ValueError(
            f"container has runAsNonRoot and image has non-numeric user ({name}), "
            f"cannot verify user is non-root {where}"
        )
    if uid == 0:
        raise ValueError(f"container has runAsNonRoot and image will run as root {where}")


def capabilities_of(mask: int) -> tuple[str, ...]:
    """The names of the capabilities set in ``mask`` (e.g. a ``CapBnd`` line's value)."""
    return tuple(name for bit, name in enumerate(ALL_CAPABILITIES) if mask >> bit & 1)


def capabilities(container: Object, *, available: tuple[str, ...] = ALL_CAPABILITIES) -> list[str]:
    """The capability set after securityContext add/drop (names with or without ``CAP_``).

    ``privileged`` and ``add: [ALL]`` mean every capability in ``available``:
    the runtime's own bounding set, as containerd grants (asking runc for one
    the runtime lacks fails the start with EPERM).
    """
    sc = container.get("securityContext") or {}
    if sc.get("privileged"):
        return list(available)
    wanted = sc.get("capabilities") or {}

    def names(key: str) -> list[str]:
        return [
            n.upper() if n.upper().startswith("CAP_") else f"CAP_{n.upper()}"
            for n in wanted.get(key) or ()
        ]

    drop, add = names("drop"), names("add")
    caps = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    for cap in available if "CAP_ALL" in add else add:
        if cap not in caps:
            caps.append(cap)
    return caps


def resources(container: Object) -> Object:
    """``linux.resources`` from the container's requests and limits."""
    wanted = container.get("resources") or {}
    limits, requests = wanted.get("limits") or {}, wanted.get("requests") or {}
    out: Object = {}
    if "memory" in limits:
        out["memory"] = {"limit": quantity.parse_quantity(str(limits["memory"])).value()}
    cpu: Object = {}
    request = requests.get("cpu", limits.get("cpu"))
    if request is not None:
        millis = quantity.parse_quantity(str(request)).milli_value()
        cpu["shares"] = max(millis * 1024 // 1000, MIN_SHARES)
    if "cpu" in limits:
        millis = quantity.parse_quantity(str(limits["cpu"])).milli_value()
        cpu.update({"quota": max(millis * CPU_PERIOD // 1000, 1000), "period": CPU_PERIOD})
    if cpu:
        out["cpu"] = cpu
    return out


def _mounts(privileged: bool) -> list[Object]:
    def mount(dest: str, kind: str, source: str, *options: str) -> Object:
        return {"destination": dest, "type": kind, "source": source, "options": list(options)}

    return [
        mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ),
        mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "rw" if privileged else "ro"),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
    ]


def container_spec(
    pod: Object,
    container: Object,
    image: ImageConfig,
    *,
    rootfs: Path,
    sandbox: Sandbox,
    container_id: str,
    user: tuple[int, int, list[int]],
    available: tuple[str, ...] = ALL_CAPABILITIES,
    resolved_env: list[tuple[str, str]] | None = None,
    volume_mounts: Sequence[Object] = (),
) -> Object:
    """The runtime spec for one run of ``container`` of ``pod``; ``available``: see capabilities.

    ``resolved_env`` and ``volume_mounts`` come from the kubelet's volume
    manager (kubelet/volumes); with ``resolved_env``, ``$(VAR)`` in command
    and args is expanded against it, as upstream.
    """
    sc = container.get("securityContext") or {}
    privileged = bool(sc.get("privileged"))
    hostname = hostname_of(pod)
    uid, gid, extra_gids = user
    caps = capabilities(container, available=available)
    process: Object = {
        "terminal": bool(container.get("tty")),  # the shim holds its master (shim.py)
        "user": {"uid": uid, "gid": gid, **({"additionalGids": extra_gids} if extra_gids else {})},
        "args": _expanded(command_line(container, image), resolved_env),
        "env": environment(container, image, hostname=hostname, resolved=resolved_env),
        "cwd": container.get("workingDir") or image.working_dir or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": sc.get("allowPrivilegeEscalation") is False,
    }
    if process["terminal"]:
        process["env"].append("TERM=xterm")  # as containerd's WithTTY: after the container's own
    linux: Object = {
        "namespaces": [
            {"type": "pid"},
            {"type": "mount"},
            {"type": "network", "path": str(sandbox.netns)},
            {"type": "ipc", "path": str(sandbox.ipcns)},
            {"type": "uts", "path": str(sandbox.utsns)},
        ],
        "cgroupsPath": f"{sandbox.cgroup_parent}/{container_id}",
        "resources": {
            "devices": [{"allow": privileged, "access": "rwm"}],
            **resources(container),
        },
    }
    if not privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    return {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(rootfs), "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "mounts": _mounts(privileged) + list(volume_mounts),
        "linux": linux,
    }


def join_pid_namespace(document: Object, path: Path) -> None:
    """Run the container in the PID namespace at ``path`` instead of a new one.

    An ephemeral container with ``targetContainerName`` sees the target's
    processes (upstream's CRI NamespaceMode TARGET).
    """
    for namespace in document["linux"]["namespaces"]:
        if namespace["type"] == "pid":
            namespace["path"] = str(path)


def _expanded(args: list[str], resolved: list[tuple[str, str]] | None) -> list[str]:
    if resolved is None:
        return args
    return envvars.expand_command(args, dict(resolved))


def hostname_of(pod: Object) -> str:
    """``spec.hostname`` or the pod's name, cut to a DNS label (63 characters) as upstream."""
    spec = pod.get("spec") or {}
    name = spec.get("hostname") or (pod.get("metadata") or {}).get("name") or "pod"
    return str(name)[:63].rstrip("-.")


def lookup_user(rootfs: Path, user: str) -> tuple[int, int]:
    """The image's ``User`` (``uid``, ``name``, ``uid:gid``, ``name:group``) as numbers.

    Names are looked up in the image's own /etc/passwd and /etc/group; an
    unknown name raises ``ValueError`` (upstream: CreateContainerConfigError).
    """
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    uid, gid = _lookup(rootfs / "etc/passwd", name, 2, 3)
    if group:
        gid = _lookup(rootfs / "etc/group", group, 2, 2)[0]
    return uid, gid


def _lookup(path: Path, name: str, id_field: int, gid_field: int) -> tuple[int, int]:
    if name.isdigit():
        number = int(name)
        gid = 0
        for fields in _entries(path):
            if fields[id_field] == name:
                gid = int(fields[gid_field])
        return number, gid
    for fields in _entries(path):
        if fields[0] == name:
            return int(fields[id_field]), int(fields[gid_field])
    raise ValueError(f"unable to find user {name}: no matching entries in {path.name} file")


def _entries(path: Path) -> list[list[str]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [line.split(":") for line in lines if line.count(":") >= 3]
