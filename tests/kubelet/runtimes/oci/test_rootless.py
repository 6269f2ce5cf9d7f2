"""The oci runtime without root (decision 0033): user namespaces, no cgroups, loopback only.

The real tests start rootless_driver.py as uid 65534 (``setpriv``) from the
root test process: a python that user can run, the project's source and a
copy of the few third-party packages it imports (root's own site-packages
may sit under an unreadable home), and a scratch directory it owns. The
refusal test runs ``check_host`` as a non-root user inside a user namespace
whose own ``max_user_namespaces`` is 0 (never the host's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet.runtimes.oci import busybox, rootless, runtime, spec
from kajitori.kubelet.volumes import manager
from kajitori.testing import images

NOBODY = 65534
SRC = Path(__file__).resolve().parents[4] / "src"
DRIVER = Path(__file__).with_name("rootless_driver.py")
Object = dict[str, Any]


# ----- without privilege: rules and messages ---------------------------------------


def test_refusal_names_the_setting_to_change() -> None:
    problem = rootless.userns_problem(probe_errno=28, max_user_namespaces=0)
    assert problem is not None
    assert "user.max_user_namespaces is 0" in problem
    assert "sysctl -w user.max_user_namespaces=" in problem
    apparmor = rootless.userns_problem(probe_errno=13, max_user_namespaces=100, apparmor_restrict=1)
    assert apparmor is not None and "kernel.apparmor_restrict_unprivileged_userns=0" in apparmor
    debian_old = rootless.userns_problem(
        probe_errno=1, max_user_namespaces=100, unprivileged_clone=0
    )
    assert debian_old is not None and "kernel.unprivileged_userns_clone=1" in debian_old
    other = rootless.userns_problem(probe_errno=1, max_user_namespaces=100)
    assert other is not None and "Operation not permitted" in other and "as root" in other
    assert rootless.userns_problem(probe_errno=0, max_user_namespaces=0) is None


def test_new_runtime_refuses_a_user_without_user_namespaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed (Debian package runc)")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(rootless, "probe_user_namespaces", lambda: 28)  # ENOSPC
    monkeypatch.setattr(
        rootless, "_read_int", lambda path: 0 if path == rootless.MAX_USER_NAMESPACES else None
    )
    with pytest.raises(RuntimeError, match=r"user\.max_user_namespaces is 0.*or run the kubelet"):
        runtime.new_runtime(tmp_path / "oci")
    assert not (tmp_path / "oci").exists()


def test_mapping_uses_subordinate_ranges_only_with_the_helpers() -> None:
    subuid = "alice:100000:65536\n1000:300000:65536\n"
    ranged = rootless.mappings_for(
        1000, 1000, name="bob", subuid=subuid, subgid="bob:200000:1000\n", helpers=True
    )
    assert [m.spec() for m in ranged.uids] == [
        {"containerID": 0, "hostID": 1000, "size": 1},
        {"containerID": 1, "hostID": 300000, "size": 65536},
    ]
    assert ranged.argument("gid") == "0:1000:1,1:200000:1000"
    assert ranged.maps_uid(65536) and not ranged.maps_uid(65537) and not ranged.single
    no_helpers = rootless.mappings_for(
        1000, 1000, name="bob", subuid=subuid, subgid="bob:200000:1000\n", helpers=False
    )
    assert no_helpers.single and no_helpers.argument("uid") == "0:1000:1"
    no_range = rootless.mappings_for(1000, 50, name="carol", subuid=subuid, helpers=True)
    assert no_range.argument("gid") == "0:50:1"


def _document(container: Object) -> Object:
    pod = {"metadata": {"name": "p", "uid": "u"}, "spec": {}}
    nsdir = Path("/pods/u/ns")
    sandbox = spec.Sandbox(nsdir / "net", nsdir / "ipc", nsdir / "uts", "/kajitori/podu")
    user = spec.user_of(pod, container, image_uid=0, image_gid=0)
    return spec.container_spec(
        pod,
        container,
        spec.ImageConfig(cmd=("sh",)),
        rootfs=Path("/r"),
        sandbox=sandbox,
        container_id="c",
        user=user,
    )


def test_spec_joins_the_pod_user_namespace_without_cgroups() -> None:
    container = {"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "1"}}}
    mappings = rootless.mappings_for(1000, 1000, name="u")
    document = rootless.to_rootless(_document(container), mappings, Path("/pods/u/ns"))
    linux = document["linux"]
    assert linux["namespaces"][0] == {"type": "user", "path": "/pods/u/ns/user"}
    assert {"type": "network", "path": "/pods/u/ns/net"} in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert "cgroupsPath" not in linux and "resources" not in linux
    mounts = {m["destination"]: m for m in document["mounts"]}
    assert "/sys/fs/cgroup" not in mounts
    assert mounts["/sys"] == {
        "destination": "/sys",
        "type": "none",
        "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
    }
    assert not any(o.startswith("gid=") for o in mounts["/dev/pts"]["options"])
    assert mounts["/dev/mqueue"]["type"] == "mqueue"


def test_spec_refuses_a_user_the_pod_cannot_map() -> None:
    container = {"name": "c", "securityContext": {"runAsUser": 1000}}
    single = rootless.mappings_for(500, 500, name="u")
    with pytest.raises(ValueError, match=r"uid 1000 / gid 0 has no mapping.*newuidmap"):
        rootless.to_rootless(_document(container), single, Path("/ns"))
    pod_groups = {"name": "c", "securityContext": {"runAsUser": 0}}
    document = _document(pod_groups)
    document["process"]["user"]["additionalGids"] = [5, 70000]
    ranged = rootless.Mappings(
        (rootless.IdMap(0, 500, 1), rootless.IdMap(1, 100000, 65536)),
        (rootless.IdMap(0, 500, 1), rootless.IdMap(1, 100000, 65536)),
    )
    adapted = rootless.to_rootless(document, ranged, Path("/ns"))
    assert adapted["process"]["user"]["additionalGids"] == [5]  # 70000 has no mapping


def test_limits_event_names_containers_whose_resources_are_not_enforced() -> None:
    limited = {
        "spec": {
            "containers": [
                {"name": "a", "resources": {"limits": {"memory": "1Gi"}}},
                {"name": "b"},
            ]
        }
    }
    kind, reason, message = rootless.limits_event(limited)
    assert (kind, reason) == ("Warning", "RootlessLimits")
    assert "loopback only" in message and message.endswith("not enforced: a")
    kind, _, message = rootless.limits_event({"spec": {"containers": [{"name": "b"}]}})
    assert kind == "Normal" and "not enforced:" not in message


def test_tmpfs_volumes_are_plain_directories_without_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    target = tmp_path / "volumes" / "kubernetes.io~secret" / "token"
    assert not manager.is_mount_point(target)
    manager.mount_tmpfs(target, size=1 << 20)
    assert manager.is_mount_point(target)  # what the volume manager checks before writing
    assert target.stat().st_mode & 0o777 == 0o755
    assert target.stat().st_dev == tmp_path.stat().st_dev  # nothing was mounted


# ----- as an unprivileged user, for real --------------------------------------------


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to start the rootless runtime as another user (setpriv)"
    for tool, package in (("runc", "runc"), ("setpriv", "util-linux"), ("cp", "coreutils")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {package})"
    if not busybox.BUSYBOX.exists():
        return "busybox-static is not installed (/bin/busybox)"
    if _python_for(NOBODY) is None:
        return f"no python >= 3.11 that uid {NOBODY} can run"
    return None


def _as_user(uid: int, *argv: str) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]


def _python_for(uid: int) -> str | None:
    check = "import sys, ctypes, json, ssl; sys.exit(sys.version_info < (3, 11))"
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3", sys.executable):
        result = subprocess.run(
            _as_user(uid, candidate, "-S", "-c", check), capture_output=True, check=False
        )
        if result.returncode == 0:
            return candidate
    return None


def _copy_site_packages(target: Path) -> None:
    """The third-party packages the runtime imports, readable by anyone."""
    listing = (
        "import sys, kajitori.kubelet.runtimes.oci.runtime, kajitori.kubelet.images.archive\n"
        "import httpx, anyio.abc; httpx.AsyncClient()\n"
        "for name, m in list(sys.modules.items()):\n"
        "    f = getattr(m, '__file__', None) or ''\n"
        "    if '-packages' in f and '.' not in name: print(f)\n"
    )
    files = subprocess.run(
        [sys.executable, "-c", listing], capture_output=True, text=True, check=True
    ).stdout.split()
    target.mkdir()
    for file in files:
        path = Path(file)
        source = path.parent if path.name == "__init__.py" else path
        destination = target / source.name
        if destination.exists() or source.name == "_distutils_hack":
            continue
        if source.is_dir():
            shutil.copytree(source, destination, symlinks=True)
        else:
            shutil.copy2(source, destination)


def _owners_image_archive(path: Path) -> None:
    layers = images.busybox_layers()
    layers.append(
        [
            images.directory("data", uid=33, gid=33),
            images.file("data/secret", "only for uid 1000\n", mode=0o600, uid=1000, gid=1000),
            images.file("data/public", "anyone\n", uid=0, gid=0),
        ]
    )
    image = images.build_image(layers, config={"Cmd": ["sh"]})
    images.write_oci_archive(path, {"kajitori.test/owners:v1": image})


def _kill_holders(under: Path) -> None:
    """Safety net: holders of the scratch root the driver failed to remove."""
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "comm").read_text().strip() != rootless.HOLDER_COMM:
                continue
            if os.readlink(proc / "cwd").startswith(str(under)):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture(scope="module")
def seen() -> Iterator[Object]:
    """What rootless_driver.py saw, running the runtime as uid 65534."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    python = _python_for(NOBODY)
    assert python is not None
    scratch = Path(tempfile.mkdtemp(prefix="kj-rootless-", dir="/tmp"))
    try:
        scratch.chmod(0o755)
        _copy_site_packages(scratch / "site")
        _owners_image_archive(scratch / "owners.tar")
        home = scratch / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "PYTHONPATH": f"{SRC}:{scratch / 'site'}",
        }
        result = subprocess.run(
            _as_user(NOBODY, python, str(DRIVER), str(home / "root"), str(scratch / "owners.tar")),
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout.strip().splitlines()[-1])
        assert "error" not in found, found["error"]
        yield found
    finally:
        _kill_holders(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_driver_ran_the_runtime_rootless(seen: Object) -> None:
    assert seen["euid"] == NOBODY
    assert seen["check_host"] is None
    assert seen["rootless"] is True


def test_pod_runs_to_its_exit_code_with_logs(seen: Object) -> None:
    batch = seen["batch"]
    assert (batch["state"], batch["exit_code"], batch["reason"]) == ("terminated", 3, "Error")
    lines = [line.split(" ", 3)[1:] for line in batch["log"].splitlines()]
    assert ["stdout", "F", "to-stdout"] in lines
    assert ["stderr", "F", "to-stderr"] in lines
    assert ["stdout", "F", "0"] in lines  # id -u: root in the container


def test_image_with_several_owners_unpacks_and_runs_without_privilege(seen: Object) -> None:
    # The store could not chown: the file is the kubelet user's, its image owner kept aside.
    assert seen["secret_stat"] == [NOBODY, NOBODY]
    assert seen["owner_xattr"] == "1000:1000"
    log = seen["batch"]["log"]
    assert "only for uid 1000" in log  # container root (the user outside) reads the 0600 file
    assert " 0        0 " in log.replace("\t", " ")  # ls -ln: one mapping, all owned by root


def test_exec_in_a_running_container(seen: Object) -> None:
    executed = seen["exec"]
    assert executed["code"] == 0, executed
    uid, hostname, uid_map = executed["stdout"].splitlines()[:3]
    assert uid == "0"
    assert hostname == "server"
    assert uid_map.split() == ["0", str(NOBODY), "1"]


def test_network_probes_reach_the_pods_loopback(seen: Object) -> None:
    assert seen["probes"]["8080"] == [True, ""]
    assert seen["probes"]["8081"] == [False, "dial tcp 127.0.0.1:8081: connect: connection refused"]


def test_container_root_is_the_unprivileged_user_outside(seen: Object) -> None:
    assert seen["init_comm"] == "sh"
    assert seen["init_uid_line"].split()[1:] == [str(NOBODY)] * 4
    assert seen["server_exit"] == 7  # kill_pod's SIGTERM reached the container's trap


def test_a_user_without_mapping_fails_with_the_reason(seen: Object) -> None:
    unmapped = seen["unmapped"]
    assert unmapped["reason"] == "StartError"
    assert "uid 1000 / gid 0 has no mapping" in unmapped["message"]


def test_limits_and_loopback_only_are_announced_as_events(seen: Object) -> None:
    by_pod = {(name, kind, reason): message for name, kind, reason, message in seen["events"]}
    warning = by_pod[("batch", "Warning", "RootlessLimits")]
    assert "loopback only" in warning and "not enforced: main" in warning
    assert ("server", "Normal", "RootlessLimits") in by_pod


def test_removal_leaves_nothing_behind(seen: Object) -> None:
    assert seen["left_pods"] == []
    assert seen["left_runc"] == []
    assert seen["left_holders"] == []


# ----- a real refusal --------------------------------------------------------------

# Root makes a child user namespace mapping ids 0-65535 to its own, sets that namespace's
# own max_user_namespaces to 0, and checks the host as uid 1000 inside it.
REFUSAL = """
import ctypes, os, sys
to_parent, from_child = os.pipe()
from_parent, to_child = os.pipe()
pid = os.fork()
if pid == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:
        os._exit(90)
    os.write(from_child, b"u")
    os.read(from_parent, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.setgroups([])
    os.setresgid(1000, 1000, 1000)
    os.setresuid(1000, 1000, 1000)
    from kajitori.kubelet.runtimes.oci import rootless
    print(rootless.check_host(), flush=True)
    os._exit(0)
os.read(to_parent, 1)
for name in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write("0 0 65536")
os.write(to_child, b"m")
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_real_refusal_inside_a_namespace_without_user_namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to map a test user namespace")
    python = _python_for(1000)
    if python is None:
        pytest.skip("no python >= 3.11 that uid 1000 can run")
    result = subprocess.run(
        [python, "-c", REFUSAL],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SRC)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert message.startswith("rootless oci runtime: unprivileged user namespaces are not allowed")
    assert "user.max_user_namespaces is 0" in message
    # The host's own limit is untouched.
    assert int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0


SUBORDINATE = """
import asyncio, sys
from pathlib import Path
from kajitori.kubelet.runtimes.oci import rootless
mode = rootless.Rootless()
nsdir = Path(sys.argv[1]) / "ns"
asyncio.run(mode.pin_namespaces(nsdir, hostname="ranged"))
pid = mode.holder_pid(nsdir)
print(Path(f"/proc/{pid}/uid_map").read_text().strip().replace("\\n", ";"))
mode.release(nsdir)
"""


def test_subordinate_ranges_through_newuidmap() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the sandbox as another user (setpriv)")
    if shutil.which("newuidmap") is None or shutil.which("newgidmap") is None:
        pytest.skip("newuidmap/newgidmap are not installed (Debian package uidmap)")
    ranges = Path("/etc/subuid").read_text() if Path("/etc/subuid").exists() else ""
    if rootless.subordinate_range(ranges, "nobody", NOBODY) is None:
        pytest.skip(f"uid {NOBODY} has no range in /etc/subuid")
    python = _python_for(NOBODY)
    assert python is not None
    scratch = Path(tempfile.mkdtemp(prefix="kj-rootless-ranges-", dir="/tmp"))
    try:
        scratch.chmod(0o755)
        os.chown(scratch, NOBODY, NOBODY)
        result = subprocess.run(
            _as_user(NOBODY, python, "-c", SUBORDINATE, str(scratch)),
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SRC)},
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = [line.split() for line in result.stdout.strip().split(";")]
        assert lines[0] == ["0", str(NOBODY), "1"] and lines[1][0] == "1"
    finally:
        _kill_holders(scratch)
        shutil.rmtree(scratch, ignore_errors=True)


# newuidmap's effect without its checks (root may write any mapping of another process).
FAKE_HELPER = """#!/bin/sh
pid=$1; shift; out=""
while [ $# -gt 0 ]; do out="$out$1 $2 $3\\n"; shift 3; done
printf "$out" > /proc/$pid/{kind}_map
"""


def test_sandbox_asks_the_helpers_to_map_ranges(tmp_path: Path) -> None:
    """userns_sandbox.py's handshake with newuidmap/newgidmap, with stand-ins run as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the stand-in helpers write another process's maps")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for kind in ("uid", "gid"):
        helper = bin_dir / f"new{kind}map"
        helper.write_text(FAKE_HELPER.replace("{kind}", kind))
        helper.chmod(0o755)
    pod_dir = tmp_path / "pod"
    pod_dir.mkdir()
    ranged = "0:0:1,1:100000:65536"
    result = subprocess.run(
        [sys.executable, "-S", str(rootless.SANDBOX), str(pod_dir), "ranged", ranged, ranged],
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        timeout=60,
        check=False,
    )
    verb, _, pid = result.stdout.strip().partition(" ")
    assert verb == "ready", result.stdout + result.stderr
    try:
        maps = [Path(f"/proc/{pid}/{kind}_map").read_text().split() for kind in ("uid", "gid")]
        assert maps == [["0", "0", "1", "1", "100000", "65536"]] * 2
        assert Path(f"/proc/{pid}/comm").read_text().strip() == rootless.HOLDER_COMM
        uts = os.readlink(f"/proc/{pid}/ns/uts")
        assert uts != os.readlink("/proc/self/ns/uts")
    finally:
        os.kill(int(pid), signal.SIGKILL)
