"""Benchmark: the oci runtime's pod start latency, from ``sync_pod`` to a running container.

Run ``python -m bench.oci_start`` as root with runc and busybox-static
installed (about 10 s). It starts ``--pods`` one-container busybox pods one
after another on an ``OciRuntime`` under a temporary root (the image is
already in place: the busybox rootfs is built before the first pod), times
each from ``sync_pod`` to the status reporting the container ``running``
(sandbox namespaces, overlay, config.json, shim + ``runc create``, ``runc
start``, waiting for runc's init to exec), and prints min, p50, p90 and
max. Then it times ``exec true``, removal (kill, runc delete, unmounts,
cgroups), and the steps of a start on their own. No pod network: CNI is not
wired into the runtime yet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from kajitori.kubelet.runtimes.oci import busybox, mounts, runc, runtime, spec


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


async def start_one(oci: runtime.OciRuntime) -> tuple[str, float]:
    uid = str(uuid.uuid4())
    pod = {
        "metadata": {"name": f"bench-{uid[:8]}", "namespace": "default", "uid": uid},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]},
    }
    began = time.perf_counter()
    oci.sync_pod(pod, now=time.time())
    while True:
        found = oci.get_pod_status(uid, now=time.time())
        if found and found.containers[0].state == "running":
            return uid, time.perf_counter() - began
        await asyncio.sleep(0.001)


async def main(pods: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kj-oci-bench-") as directory:
        root = Path(directory)
        images = busybox.BusyboxImages(root / "images")
        await images.ensure("busybox", "IfNotPresent", {})
        oci = runtime.OciRuntime(root / "oci", images)
        starts, execs, uids = [], [], []
        for _ in range(pods):
            uid, seconds = await start_one(oci)
            uids.append(uid)
            starts.append(seconds)
            began = time.perf_counter()
            await oci.exec(uid, "c", ["true"])
            execs.append(time.perf_counter() - began)
        began = time.perf_counter()
        for uid in uids:
            oci.remove_pod(uid)
        await oci.aclose()
        removal = (time.perf_counter() - began) / pods
    ms = [s * 1000 for s in starts]
    print(
        f"sync_pod → running over {pods} pods (ms): min {min(ms):.1f}  p50 "
        f"{statistics.median(ms):.1f}  p90 {percentile(ms, 0.9):.1f}  max {max(ms):.1f}"
    )
    print(f"exec true (ms): p50 {statistics.median(execs) * 1000:.1f}")
    print(f"remove (kill + delete + unmount + cgroups), per pod (ms): {removal * 1000:.1f}")
    await breakdown(pods)


async def breakdown(pods: int) -> None:
    """The steps alone: pinning the sandbox namespaces (pinns.py), shim + runc create, runc start."""
    with tempfile.TemporaryDirectory(prefix="kj-oci-bench-") as directory:
        root = Path(directory)
        images = busybox.BusyboxImages(root / "images")
        rootfs, config = await images.ensure("busybox", "IfNotPresent", {})
        steps: dict[str, list[float]] = {"pinns": [], "shim + runc create": [], "runc start": []}
        oci = runtime.OciRuntime(root / "oci", images)
        for n in range(pods):
            ns = root / f"ns{n}"
            ns.mkdir()
            began = time.perf_counter()
            await runc.pin_namespaces(ns, hostname="bench")
            steps["pinns"].append(time.perf_counter() - began)
            bundle = root / f"c{n}"
            (bundle / "rootfs").mkdir(parents=True)
            sandbox = spec.Sandbox(ns / "net", ns / "ipc", ns / "uts", f"/kajitori/bench{n}")
            container = {"name": "c", "command": ["sleep", "1000"]}
            document = spec.container_spec(
                {"metadata": {"name": "bench"}},
                container,
                spec.ImageConfig.from_config(config),
                rootfs=rootfs,
                sandbox=sandbox,
                container_id=f"bench-{n}",
                user=(0, 0, []),
            )
            document["root"]["readonly"] = True  # the shared image rootfs itself, not an overlay
            (bundle / "config.json").write_text(json.dumps(document))
            began = time.perf_counter()
            created = await oci.runc.create(
                f"bench-{n}", bundle=bundle, log=bundle / "log", cgroup=f"/kajitori/bench{n}"
            )
            steps["shim + runc create"].append(time.perf_counter() - began)
            began = time.perf_counter()
            await oci.runc.start(f"bench-{n}", init_pid=created.init_pid)
            steps["runc start"].append(time.perf_counter() - began)
            await oci.runc.delete(f"bench-{n}")
            mounts.unmount_all(ns)
            mounts.remove_cgroups(f"/kajitori/bench{n}")
        for name, values in steps.items():
            print(f"  {name} (ms): p50 {statistics.median(values) * 1000:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20)
    asyncio.run(main(parser.parse_args().pods))
