"""Runs the oci runtime as an unprivileged user for test_rootless.py and prints what it saw.

Run as a program (``python rootless_driver.py ROOT ARCHIVE``) by the root
test process under ``setpriv --reuid=65534``: it loads the test image from
ARCHIVE into an image store under ROOT (unpacked without privilege), starts
the runtime through ``runtime.new_runtime`` (rootless because it is not
root) and runs three pods, then prints one JSON document of observations
for the tests to assert on. Nothing here asserts: a failure is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from kajitori.kubelet.images import archive, store, unpack
from kajitori.kubelet.runtimes import interface
from kajitori.kubelet.runtimes.oci import rootless, runtime

IMAGE = "kajitori.test/owners:v1"
WAIT_SECONDS = 60.0
Object = dict[str, Any]


def pod(name: str, command: str, *, restart: str = "Never", limits: bool = False) -> Object:
    container: Object = {
        "name": "main",
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", command],
    }
    if limits:
        container["resources"] = {"limits": {"memory": "64Mi", "cpu": "500m"}}
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"rootless-{name}"},
        "spec": {"restartPolicy": restart, "containers": [container], "nodeName": "node"},
    }


async def wait_for(
    oci: runtime.OciRuntime, uid: str, done: Any, timeout: float = WAIT_SECONDS
) -> interface.ContainerStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = oci.get_pod_status(uid, now=time.time())
        found = status.containers[0] if status and status.containers else None
        if found is not None and done(found):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {uid}: {found}")
        await asyncio.sleep(0.05)


async def scenario(root: Path, archive_path: Path) -> Object:
    seen: Object = {"euid": os.geteuid(), "check_host": runtime.check_host()}
    images = root / "images"
    loaded = archive.load(store.ImageStore(images), archive_path)
    rootfs = store.ImageStore(images).unpack(loaded[0].manifest_digest)
    seen["owner_xattr"] = os.getxattr(rootfs / "data/secret", unpack.OWNER_XATTR).decode()
    seen["secret_stat"] = list(os.stat(rootfs / "data/secret")[4:6])
    events: list[list[str]] = []

    async def no_secret(node: str, namespace: str, name: str) -> Object | None:
        return None

    oci = runtime.new_runtime(root / "oci", image_store=images)
    oci.set_kubelet_hooks(
        interface.KubeletHooks(
            record_event=lambda p, t, r, m, **_: events.append([p["metadata"]["name"], t, r, m]),
            get_secret=no_secret,
            pod_cidr=lambda node: "",
        )
    )
    seen["rootless"] = oci.rootless is not None
    try:
        await run_pods(oci, seen)
    finally:
        for uid in oci.get_pods():
            oci.remove_pod(uid)
        await oci.aclose()
    seen["events"] = events
    seen["left_pods"] = sorted(p.name for p in (root / "oci" / "pods").iterdir())
    seen["left_runc"] = [c["id"] for c in await oci.runc.list()]
    seen["left_holders"] = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _comm(p) == rootless.HOLDER_COMM and _cwd(p).startswith(str(root))
    ]
    return seen


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


def _cwd(proc: Path) -> str:
    try:
        return os.readlink(proc / "cwd")
    except OSError:
        return ""


async def run_pods(oci: runtime.OciRuntime, seen: Object) -> None:
    # 1. runs to its exit code, with logs on both streams; has limits (not enforced).
    batch = pod(
        "batch",
        "echo to-stdout; echo to-stderr >&2; id -u; cat /data/secret; ls -ln /data; exit 3",
        limits=True,
    )
    oci.sync_pod(batch, now=time.time())
    # 2. long-running: exec, and who its root is outside.
    server = pod(
        "server",
        "trap 'exit 7' TERM; echo started; httpd -f -p 8080 -h /tmp & sleep 300 & wait",
        restart="Always",
    )
    oci.sync_pod(server, now=time.time())
    done = await wait_for(oci, "rootless-batch", lambda c: c.state == "terminated")
    assert done.termination is not None
    seen["batch"] = {
        "state": done.state,
        "exit_code": done.termination.exit_code,
        "reason": done.termination.reason,
        "message": done.message,
        "log": oci.log_path("rootless-batch", "main", 0).read_text(),
    }
    await wait_for(oci, "rootless-server", lambda c: c.state == "running")
    code, out, err = await oci.exec(
        "rootless-server", "main", ["sh", "-c", "id -u; hostname; cat /proc/self/uid_map"]
    )
    seen["exec"] = {"code": code, "stdout": out.decode(), "stderr": err.decode()}
    # tcpSocket probes join the pod's user namespace, then its network namespace.
    probes = {}
    for port in (8080, 8081):
        action = {"tcpSocket": {"port": port}}
        deadline = time.monotonic() + WAIT_SECONDS
        while True:  # httpd may not listen yet
            probes[port] = await oci.probe("rootless-server", "main", action, timeout=5)
            if probes[port][0] or port != 8080 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    seen["probes"] = {str(port): list(result) for port, result in probes.items()}
    run = oci._pods["rootless-server"].containers["main"].last
    assert run is not None and run.init_pid is not None
    status = Path(f"/proc/{run.init_pid}/status").read_text()
    seen["init_uid_line"] = next(line for line in status.splitlines() if line.startswith("Uid:"))
    seen["init_comm"] = Path(f"/proc/{run.init_pid}/comm").read_text().strip()
    # 3. a user that has no mapping: fails at once, saying why.
    unmapped = pod("unmapped", "true")
    unmapped["spec"]["containers"][0]["securityContext"] = {"runAsUser": 1000}
    oci.sync_pod(unmapped, now=time.time())
    failed = await wait_for(oci, "rootless-unmapped", lambda c: c.state == "terminated")
    assert failed.termination is not None
    seen["unmapped"] = {"reason": failed.termination.reason, "message": failed.message}
    oci.kill_pod("rootless-server", now=time.time(), grace_period=5)
    stopped = await wait_for(oci, "rootless-server", lambda c: c.state == "terminated")
    seen["server_exit"] = stopped.termination.exit_code if stopped.termination else None


def main() -> None:
    root, archive_path = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        seen = asyncio.run(scenario(root, archive_path))
    except Exception:
        seen = {"error": traceback.format_exc()}
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
