"""Benchmark: a real node — pod start latency, exec, log streaming, CNI and memory under runc.

Run ``python -m bench.pods`` as root with runc, busybox-static and the CNI
plugins installed (about two minutes; ``--quick`` for 20 pods). It starts
``python -m kajitori up --nodes 1 --runtime oci`` on a node network of its
own (decision 0031: ``--cluster-name kjbench-<random>`` and a /28
``--node-cidr`` no other run uses, so its bridge, veths and namespaces are
unique; ``up`` removes them when it stops), with busybox from the host
(``KAJITORI_OCI_IMAGES=busybox``, built once by a warm-up pod, so "image
cached" as upstream's SLO assumes), and measures, as issue 6 asks:

* **pod start**: first ``--sequential`` (10) pods one at a time (the start
  with nothing queued before it), deleted again (the node takes 110 pods);
  then ``--pods`` (100) one-container pods in waves of ``--parallel`` (20)
  created at once, a wave once the one before is all Ready. Each from just
  before its create request to the driver's pod watch (an informer) seeing
  condition ``Ready=True``: p50, p99 and max, and when each was seen bound
  and Running. Scheduling, the kubelet's pod worker, sandbox (pinned
  namespaces + CNI ADD), overlay, shim, ``runc create``/``start`` and the
  status patch are all inside. Beside it, the CPU the node spent per pod of
  the waves (server, shims, runc, CNI plugins: a ``cpuacct`` cgroup of the
  bench's own), which holds however busy the shared machine is;
* **exec**: ``--execs`` (50) ``true`` commands one after another through
  the API server (pods/exec over WebSocket, ``v5.channel.k8s.io``, as
  kubectl 1.30+ does; kubectl itself is not timed), from connect to the
  exit status, and the server's CPU per exec (both TLS hops, the relay,
  the kubelet, spawning ``runc exec``);
* **log streaming**: a container writes ``--log-mib`` (64) MiB of 100-byte
  lines once the driver's ``pods/log?follow=true`` is open; MB/s from the
  trigger to the last byte the driver reads (container → shim → CRI log
  file → kubelet → API server → client);
* **CNI ADD / DEL**: per pod, measured in the driver on a second node
  network namespace with the same plugins and config (the server's own
  calls are inside the start latency);
* **memory**: the server process (API server, controllers, scheduler and
  the kubelet share it) with the pods running, and the shims' proportional
  set size (one shim per container, as conmon).

Floors from the same run, since the machine is shared: ``runc run`` of a
trivial busybox container (create, start, wait, delete: the bare runtime
cost), a no-op ``runc exec`` in one of the pods' containers, and the **bare
wave floor** (``pods_floor.py``): before the cluster starts, ``--floor-waves``
(5) waves of ``--parallel`` (20) "pods" started with no kajitori at all —
pinned namespaces, the kubelet's CNI chain, an overlay of the cached busybox,
``runc create`` + ``runc start`` of ``sleep 3600``, ready when ``runc start``
returned — all of a wave at once and a core's worth at a time, with the node
CPU per start; ``--floor-only`` runs just that.
Everything is removed afterwards: pods (deleted through the API and waited
for), leftover runc containers, mounts, cgroups and the namespaces.

Targets (2-core machine): start p50 under 300 ms, p99 under 1 s (upstream's
SLO is 5 s at p99), exec under 100 ms. It prints a table and writes
``bench/results/pods-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench import common, pods_floor
from kajitori.client import informer, kubeconfig, rest, websocket
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet.network import node_network
from kajitori.kubelet.runtimes.oci import busybox, mounts, runc, sandbox_network, state
from kajitori.testing import netns
from kajitori.testing import node_network as test_node_network

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NAMESPACE = "bench-pods"
IMAGE = "busybox"
TARGETS = {"start_p50_ms": 300.0, "start_p99_ms": 1000.0, "exec_p50_ms": 100.0}
CNI_BRIDGE = Path("/usr/lib/cni/bridge")
LINE = b"0123456789" * 9 + b"abcdefghi\n"  # 100 bytes
_MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Plan:
    pods: int
    parallel: int
    sequential: int
    execs: int
    log_mib: int
    floor_runs: int
    timeout: float
    floor_waves: int = 5
    profile: Path | None = None  # py-spy's collapsed stacks of the server during the starts


def skip_reason() -> str | None:
    """Why this machine cannot run the benchmark, else ``None``."""
    if os.geteuid() != 0:
        return "needs root (runc, network namespaces)"
    for binary in ("runc", "ip"):
        if shutil.which(binary) is None:
            return f"needs {binary}"
    if not busybox.BUSYBOX.exists():
        return "needs busybox-static (/bin/busybox)"
    if not CNI_BRIDGE.exists():
        return "needs the CNI plugins (containernetworking-plugins)"
    return None


# -- floors ------------------------------------------------------------------------


def runc_run_floor(root: Path, rootfs: Path, runs: int) -> list[float]:
    """``runc run`` of ``true`` in a fresh busybox container, ``runs`` times (the bare cost)."""
    bundle = root / "floor"
    bundle.mkdir(parents=True, exist_ok=True)
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["true"])
    config["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(config))
    runc_root = root / "floor-runc"
    times = []
    for n in range(runs):
        began = time.perf_counter()
        subprocess.run(
            ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), f"floor-{n}"],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - began)
        subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", f"floor-{n}"])
    return times


def runc_exec_floor(runc_root: Path, container_id: str, runs: int) -> list[float]:
    """A no-op ``runc exec`` in a running pod container: what any exec path costs at least."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(
            ["runc", "--root", str(runc_root), "exec", container_id, "true"],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - began)
    return times


async def cni_per_pod(root: Path, runs: int) -> dict[str, Any]:
    """CNI ADD and DEL of fresh pod namespaces on a node network of the driver's own."""
    async with netns.Namespaces() as namespaces:
        node = await namespaces.add("cni")
        options = sandbox_network.NetworkOptions(host_netns=node, state_dir=root / "cni-floor")
        network = sandbox_network.SandboxNetwork(options)
        adds, dels = [], []
        for n in range(runs):
            nsdir = root / "cni-ns" / str(n)
            nsdir.mkdir(parents=True)
            await runc.pin_namespaces(nsdir, hostname=f"cni-{n}")
            pod = {"metadata": {"name": f"cni-{n}", "namespace": NAMESPACE}, "spec": {}}
            began = time.perf_counter()
            await network.setup(pod, f"uid-{n}", nsdir / "net", "10.250.0.0/24")
            adds.append(time.perf_counter() - began)
            began = time.perf_counter()
            await network.teardown(f"uid-{n}", nsdir / "net", "10.250.0.0/24")
            dels.append(time.perf_counter() - began)
            mounts.unmount_all(nsdir)
    return {"add_ms": common.summary_ms(adds), "del_ms": common.summary_ms(dels)}


async def wave_floor(plan: Plan, directory: Path, rootfs: Path, report: dict[str, Any]) -> None:
    """The bare wave floor (pods_floor.py), before any kajitori process runs."""
    _progress(f"bare wave floor: {plan.floor_waves} waves of {plan.parallel}, twice")
    # Blocking (threads, subprocesses, its own leak count): off the event loop.
    report["floor_wave"] = await asyncio.to_thread(
        pods_floor.measure, directory, rootfs, waves=plan.floor_waves, parallel=plan.parallel
    )


async def run_floor_only(plan: Plan, directory: Path) -> dict[str, Any]:
    """``--floor-only``: the bare wave floor alone, no cluster."""
    report: dict[str, Any] = {
        "benchmark": "pods",
        "floor_only": True,
        "machine": common.machine(),
        "plan": dataclasses.asdict(plan),
    }
    images = busybox.BusyboxImages(directory / "floor-images")
    rootfs, _ = await images.ensure(IMAGE, "IfNotPresent", {})
    await wave_floor(plan, directory, rootfs, report)
    report["leftovers"] = list(report["floor_wave"]["leftovers"])
    return report


# -- the cluster -------------------------------------------------------------------


def pod_body(name: str, command: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": IMAGE, "command": command}],
        },
    }


class PodTimes:
    """When the driver's watch first saw each pod bound, Running and Ready."""

    def __init__(self) -> None:
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}

    def handler(self) -> informer.EventHandler:
        return informer.EventHandler(
            on_add=self.observe,
            on_update=lambda _, new: self.observe(new),
            on_delete=self.deleted,
        )

    def observe(self, pod: dict[str, Any]) -> None:
        now = time.perf_counter()
        name = pod["metadata"]["name"]
        self.objects[name] = pod
        if (pod.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(name, now)
        status = pod.get("status") or {}
        if status.get("phase") == "Running":
            self.running.setdefault(name, now)
        conditions = status.get("conditions") or ()
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            if name not in self.ready:
                self.ready[name] = now
                waiter = self.waiters.pop(name, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)

    def deleted(self, pod: Any) -> None:
        obj = pod.obj if isinstance(pod, informer.DeletedFinalStateUnknown) else pod
        self.objects.pop(obj["metadata"]["name"], None)

    def ready_future(self, name: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if name in self.ready:
            future.set_result(self.ready[name])
        else:
            self.waiters[name] = future
        return future


class Driver:
    """The driver's client, watch and the operations it times."""

    def __init__(self, plan: Plan, server: common.ServerProcess) -> None:
        self.plan = plan
        self.server = server
        config = kubeconfig.load_kubeconfig(server.data_dir / "kubeconfig")
        self.client = rest.Client.from_kubeconfig(config)
        self.context = common.client_ssl_context(server.data_dir)
        self.times = PodTimes()
        self.pods = informer.Informer(self.client, rest.PODS, namespace=NAMESPACE)
        self.pods.add_event_handler(self.times.handler())

    async def close(self) -> None:
        await self.pods.stop()
        await self.client.aclose()

    async def node_ready(self) -> dict[str, Any]:
        """Wait for the node to be Ready with a podCIDR (pods need it for CNI)."""
        deadline = time.monotonic() + self.plan.timeout
        while time.monotonic() < deadline:
            found = (await self.client.list(rest.NODES)).get("items") or []
            for node in found:
                conditions = (node.get("status") or {}).get("conditions") or ()
                ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
                if ready and (node.get("spec") or {}).get("podCIDR"):
                    return node
            await asyncio.sleep(0.1)
        raise TimeoutError("the node did not become Ready with a podCIDR")

    async def namespace(self) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        await self.client.create(rest.NAMESPACES, body)
        deadline = time.monotonic() + 30
        while True:  # pods need the default ServiceAccount (ServiceAccount admission)
            try:
                await self.client.get(rest.SERVICEACCOUNTS, "default", namespace=NAMESPACE)
                break
            except rest.ApiError as exc:
                if not exc.not_found or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)
        self.pods.start()
        await self.pods.wait_for_sync()

    async def start_pod(self, name: str, command: list[str]) -> float:
        """Create one pod and wait for its Ready; seconds from the create request."""
        future = self.times.ready_future(name)
        began = time.perf_counter()
        await self.client.create(rest.PODS, pod_body(name, command), namespace=NAMESPACE)
        seen = await asyncio.wait_for(future, self.plan.timeout)
        return seen - began

    async def start_many(self) -> dict[str, Any]:
        """``plan.pods`` pods in waves of ``plan.parallel`` created at once, each wave once the
        one before is Ready."""
        created: dict[str, float] = {}
        latencies: list[float] = []

        async def one(n: int) -> float:
            name = f"pod-{n}"
            created[name] = time.perf_counter()
            return await self.start_pod(name, ["sleep", "3600"])

        began = time.perf_counter()
        contention = common.Contention()
        for first in range(0, self.plan.pods, self.plan.parallel):
            wave = range(first, min(first + self.plan.parallel, self.plan.pods))
            latencies += await asyncio.gather(*(one(n) for n in wave))
        elapsed = time.perf_counter() - began
        bound = [self.times.bound[n] - t for n, t in created.items() if n in self.times.bound]
        running = [self.times.running[n] - t for n, t in created.items() if n in self.times.running]
        return {
            "pods": self.plan.pods,
            "parallel": self.plan.parallel,
            "create_to_ready_ms": common.summary_ms(list(latencies)),
            "create_to_bound_ms": common.summary_ms(bound),
            "create_to_running_ms": common.summary_ms(running),
            "all_ready_s": round(elapsed, 2),
            "pods_per_second": round(self.plan.pods / elapsed, 1),
            "other_cpu_cores": contention.other_cpu_cores(),
        }

    async def start_sequential(self) -> dict[str, Any]:
        """``plan.sequential`` pods one after another: the start with no queueing."""
        latencies = [
            await self.start_pod(f"one-{n}", ["sleep", "3600"]) for n in range(self.plan.sequential)
        ]
        return common.summary_ms(latencies)

    async def exec_once(self, pod: str, argv: list[str]) -> bytes:
        """One exec through the API server; the command's stdout."""
        query = urllib.parse.urlencode(
            [("command", a) for a in argv] + [("container", "c"), ("stdout", "1"), ("stderr", "1")]
        )
        target = f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/exec?{query}"
        socket = await websocket.connect(
            "127.0.0.1",
            self.server.port,
            target,
            ssl_context=self.context,
            subprotocols=(websocket.V5, websocket.V4),
            server_hostname="localhost",
        )
        out = b""
        try:
            while (message := await socket.receive()) is not None:
                if isinstance(message, bytes) and message[:1] == bytes([websocket.STDOUT]):
                    out += message[1:]
                elif isinstance(message, bytes) and message[:1] == bytes([websocket.ERROR]):
                    status = json.loads(message[1:] or b"{}")
                    if status.get("status") != "Success":
                        raise RuntimeError(f"exec failed: {status}")
                    break
        finally:
            await socket.close()
        return out

    async def execs(self, pod: str) -> dict[str, Any]:
        await self.exec_once(pod, ["true"])  # warm: connections, the kubelet's first exec
        times = []
        contention = common.Contention()
        for _ in range(self.plan.execs):
            began = time.perf_counter()
            await self.exec_once(pod, ["true"])
            times.append(time.perf_counter() - began)
        return {**common.summary_ms(times), "other_cpu_cores": contention.other_cpu_cores()}

    async def log_throughput(self) -> dict[str, Any]:
        """MB/s of a container's output through pods/log?follow, from trigger to last byte."""
        size = self.plan.log_mib * _MIB
        lines = size // len(LINE)
        line = LINE.decode().strip()
        script = (
            "until [ -e /tmp/go ]; do sleep 0.02; done; "
            f"yes {line} | head -n {lines}; exec sleep 3600"
        )
        await self.start_pod("logger", ["sh", "-c", script])
        expected = lines * len(LINE)
        received = asyncio.get_running_loop().create_future()
        opened = asyncio.Event()
        loop = asyncio.get_running_loop()

        def follow() -> None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, context=self.context, timeout=120
            )
            try:
                path = f"/api/v1/namespaces/{NAMESPACE}/pods/logger/log?follow=true&container=c"
                conn.request("GET", path)
                response = conn.getresponse()
                loop.call_soon_threadsafe(opened.set)
                total = 0
                while total < expected:
                    chunk = response.read1(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                loop.call_soon_threadsafe(received.set_result, (total, time.perf_counter()))
            except Exception as exc:  # handed to the awaiting side
                loop.call_soon_threadsafe(received.set_exception, exc)
            finally:
                conn.close()

        reader = loop.run_in_executor(None, follow)
        await opened.wait()
        await asyncio.sleep(0.2)  # the kubelet's follow is open before the container writes
        contention = common.Contention()
        began = time.perf_counter()
        await self.exec_once("logger", ["touch", "/tmp/go"])
        total, ended = await asyncio.wait_for(received, self.plan.timeout)
        await reader
        seconds = ended - began
        return {
            "bytes": total,
            "expected_bytes": expected,
            "seconds": round(seconds, 2),
            "mb_per_s": round(total / seconds / 1e6, 1),
            "lines_per_s": round(total / len(LINE) / seconds),
            "other_cpu_cores": contention.other_cpu_cores(),
        }

    async def delete_all(self, oci_root: Path) -> dict[str, Any]:
        """Delete every pod of the namespace; until the watch saw the last go, and until the
        kubelet removed the last one's containers, mounts and network (its directory)."""
        began, count = time.perf_counter(), len(self.times.objects)
        await self.client.delete_collection(rest.PODS, namespace=NAMESPACE)
        deadline = time.monotonic() + self.plan.timeout
        while self.times.objects and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        gone = time.perf_counter() - began
        while any((oci_root / "pods").iterdir()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return {
            "pods": count,
            "all_gone_s": round(gone, 2),
            "all_removed_s": round(time.perf_counter() - began, 2),
        }


# -- memory ------------------------------------------------------------------------


def _status_kb(pid: int, field: str, name: str = "status") -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def shims_under(root: Path) -> list[int]:
    """Live shims whose working directory (their bundle) is under ``root``."""
    found = []
    prefix = os.path.realpath(root) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != state.SHIM_COMM:
                continue
            if os.readlink(entry / "cwd").startswith(prefix):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def memory(server: common.ServerProcess, oci_root: Path) -> dict[str, Any]:
    shims = shims_under(oci_root)
    pss = sum(_status_kb(pid, "Pss", "smaps_rollup") for pid in shims)
    rss = sum(_status_kb(pid, "VmRSS") for pid in shims)
    return {
        "server_rss_mib": round(server.status_kb("VmRSS") / 1024, 1),
        "server_hwm_mib": round(server.status_kb("VmHWM") / 1024, 1),
        "shims": len(shims),
        "shims_pss_mib": round(pss / 1024, 1),
        "shim_rss_mib_each": round(rss / max(len(shims), 1) / 1024, 1),
    }


class CpuAccount:
    """CPU of the server and everything it starts (runc, shims, CNI plugins), from a cgroup v1
    ``cpuacct`` group of the bench's own: the containers run in their own cgroups, other
    processes of the shared machine in none of it, so this holds however busy it is."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self) -> None:
        self.path: Path | None = None

    def adopt(self, pid: int) -> None:
        if not (self.ROOT / "cpuacct.usage").exists():
            return  # cgroup v2 or no cpuacct: the figure is left out
        self.path = self.ROOT / f"kjbench-pods-{secrets.token_hex(3)}"
        self.path.mkdir()
        (self.path / "cgroup.procs").write_text(str(pid))

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        if self.path is None:
            return
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (self.ROOT / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()


# -- the run -----------------------------------------------------------------------


def clean_leftovers(oci_root: Path) -> list[str]:
    """What the server left behind after its pods were deleted (should be nothing), removed."""
    left: list[str] = []
    runc_root = oci_root / "runc"
    if runc_root.exists():
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "--format", "json"],
            capture_output=True,
            text=True,
        )
        for found in json.loads(listed.stdout or "null") or []:
            left.append(f"runc {found['id']}")
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", found["id"]])
    for pid in shims_under(oci_root):
        left.append(f"shim {pid}")
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    for pod_dir in (oci_root / "pods").glob("*") if (oci_root / "pods").exists() else ():
        left.append(f"pod {pod_dir.name}")
        mounts.unmount_all(pod_dir)
        mounts.remove_cgroups(f"/kajitori/pod{pod_dir.name}")
    return left


def bench_network() -> node_network.NodeNetwork:
    """A node network of the bench's own: a cluster name and node CIDR no other run uses
    (the bridge, veths and namespaces are named after the cluster)."""
    return node_network.NodeNetwork(
        f"kjbench-{secrets.token_hex(3)}",
        [kubelet_cmd.worker_name(0)],
        node_cidr=f"172.31.{200 + secrets.randbelow(50)}.0/28",
    )


async def remove_network(network: node_network.NodeNetwork) -> list[str]:
    """What ``up`` left of its node network (nothing, unless it was killed), removed."""
    left = [f"bridge {network.bridge}"] if Path(f"/sys/class/net/{network.bridge}").exists() else []
    left += [
        f"netns {n.netns}" for n in network.nodes if Path(netns.Namespaces.path(n.netns)).exists()
    ]
    if left:
        await network.teardown()
    return left


async def run(plan: Plan, directory: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "pods",
        "machine": common.machine(),
        "plan": dataclasses.asdict(plan),
    }
    images = busybox.BusyboxImages(directory / "floor-images")
    rootfs, _ = await images.ensure(IMAGE, "IfNotPresent", {})
    _progress("floor: runc run")
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    report["floor_runc_run_ms"] = common.summary_ms(
        runc_run_floor(directory, rootfs, plan.floor_runs)
    )
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_used = now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime
    report["floor_runc_run_ms"]["cpu_per_run"] = round(cpu_used / plan.floor_runs * 1000, 1)
    _progress("CNI ADD/DEL per pod")
    report["cni"] = await cni_per_pod(directory, plan.floor_runs)
    await wave_floor(plan, directory, rootfs, report)
    oci_root = directory / "oci"
    os.environ.update(KAJITORI_OCI_ROOT=str(oci_root), KAJITORI_OCI_IMAGES="busybox")
    network = bench_network()
    args = ["--nodes=1", "--runtime=oci", f"--cluster-name={network.cluster_name}"]
    args.append(f"--node-cidr={network.subnet}")
    # A pod range of its own too: the host routes to pods must not meet another cluster's.
    args.append(f"--cluster-cidr={test_node_network.free_cluster_cidr()}")
    server = common.ServerProcess(directory / "server", extra_args=args, core=None)
    server.start()
    cpu = CpuAccount()
    cpu.adopt(server.pid)  # threads and children started from now on are counted
    node_root = oci_root / kubelet_cmd.worker_name(0)  # the node's runtime root (decision 0031)
    driver = Driver(plan, server)
    try:
        await measure_cluster(plan, driver, server, node_root, report, cpu)
    finally:
        with contextlib.suppress(Exception):
            await driver.close()
        server.stop()
        try:
            report["leftovers"] = clean_leftovers(node_root) + await remove_network(network)
            report["leftovers"] += report["floor_wave"]["leftovers"]
        finally:
            cpu.remove()
    return report


async def measure_cluster(
    plan: Plan,
    driver: Driver,
    server: common.ServerProcess,
    oci_root: Path,
    report: dict[str, Any],
    cpu: CpuAccount,
) -> None:
    node = await driver.node_ready()
    report["node"] = {"name": node["metadata"]["name"], "podCIDR": node["spec"]["podCIDR"]}
    await driver.namespace()
    _progress("warm-up pod (builds the busybox image)")
    report["first_pod_ms"] = round(await driver.start_pod("warmup", ["sleep", "3600"]) * 1000, 1)
    _progress(f"{plan.sequential} pods one at a time")
    report["start_sequential_ms"] = await driver.start_sequential()
    # The node takes 110 pods (upstream's maxPods): the hundred and the logger start on an
    # empty node.
    report["delete_sequential"] = await driver.delete_all(oci_root)
    report["idle_memory"] = memory(server, oci_root)
    _progress(f"{plan.pods} pods, {plan.parallel} at a time")
    before, server_before = cpu.seconds(), server.cpu_seconds()
    with profiling(plan.profile, server.pid):
        report["start"] = await driver.start_many()
    after, server_after = cpu.seconds(), server.cpu_seconds()
    per_pod = 1000 / plan.pods
    # The server's own threads (API server, scheduler, kubelet); the rest of the node's CPU
    # went to the processes it started (shims, runc, CNI plugins).
    report["start"]["server_cpu_ms_per_pod"] = round((server_after - server_before) * per_pod, 1)
    if before is not None and after is not None:
        report["start"]["node_cpu_ms_per_pod"] = round((after - before) * per_pod, 1)
    report["memory"] = memory(server, oci_root)
    report["memory"]["pods_running"] = len(driver.times.objects)
    _progress(f"{plan.execs} execs")
    server_before = server.cpu_seconds()
    with profiling(plan.profile and plan.profile.with_suffix(".exec.txt"), server.pid):
        report["exec_ms"] = await driver.execs("pod-0")
    # The server's side of an exec (both TLS hops, the relay, the kubelet, spawning runc exec).
    per_exec = 1000 / (plan.execs + 1)  # the warm-up exec included
    report["exec_ms"]["server_cpu_ms"] = round((server.cpu_seconds() - server_before) * per_exec, 1)
    target = driver.times.objects["pod-0"]
    container_id = f"{target['metadata']['uid']}-c-0"
    report["floor_runc_exec_ms"] = common.summary_ms(
        runc_exec_floor(oci_root / "runc", container_id, plan.execs)
    )
    _progress(f"log streaming, {plan.log_mib} MiB")
    report["logs"] = await driver.log_throughput()
    _progress("deleting every pod")
    report["delete"] = await driver.delete_all(oci_root)


@contextlib.contextmanager
def profiling(output: Path | None, pid: int) -> Any:
    """py-spy on the server meanwhile (do not quote timings from such a run)."""
    if output is None:
        yield
        return
    spy = subprocess.Popen(
        ["py-spy", "record", "--nonblocking", "--format", "raw", "-r", "200", "-o", str(output),
         "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    try:
        yield
    finally:
        spy.send_signal(2)
        spy.wait(timeout=30)


def ratio(measured: float | None, floor: float | None) -> float | None:
    if not measured or not floor:
        return None
    return round(measured / floor, 1)


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(what, target, measured, floor, ratio) for the table."""
    start = report.get("start", {}).get("create_to_ready_ms", {})
    execs = report.get("exec_ms", {})
    run_floor = report.get("floor_runc_run_ms", {}).get("p50")
    # The waves' floor: the bare wave a core's worth at a time (pods finish in order, as the
    # kubelet's start gate makes them); all of a wave at once is the row below.
    gated = report.get("floor_wave", {}).get("per_core", {})
    at_once = report.get("floor_wave", {}).get("all_at_once", {})
    wave_floor = gated.get("ready_ms", {})
    exec_floor = report.get("floor_runc_exec_ms", {}).get("p50")
    logs = report.get("logs", {})
    cni = report.get("cni", {})
    mem = report.get("memory", {})

    def fmt(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value}{unit}"

    def r(value: float | None) -> str:
        return "-" if value is None else f"{value}x"

    return [
        ("pod start p50 (ms)", "< 300", fmt(start.get("p50")), fmt(wave_floor.get("p50")),
         r(ratio(start.get("p50"), wave_floor.get("p50")))),
        ("pod start p99 (ms)", "< 1000", fmt(start.get("p99")), fmt(wave_floor.get("p99")),
         r(ratio(start.get("p99"), wave_floor.get("p99")))),
        ("pod start max (ms)", "", fmt(start.get("max")), fmt(wave_floor.get("max")),
         r(ratio(start.get("max"), wave_floor.get("max")))),
        ("bare wave, all at once p50 (ms)", "< 300", fmt(at_once.get("ready_ms", {}).get("p50")),
         "", ""),
        ("bare wave, all at once p99 (ms)", "< 1000", fmt(at_once.get("ready_ms", {})
         .get("p99")), "", ""),
        ("pod start alone p50 (ms)", "", fmt(report.get("start_sequential_ms", {}).get("p50")),
         fmt(run_floor), r(ratio(report.get("start_sequential_ms", {}).get("p50"), run_floor))),
        ("node CPU per pod start (ms)", "", fmt(report.get("start", {})
         .get("node_cpu_ms_per_pod")), fmt(gated.get("node_cpu_ms_per_start")),
         r(ratio(report.get("start", {}).get("node_cpu_ms_per_pod"),
         gated.get("node_cpu_ms_per_start")))),
        ("runc run of true (ms; CPU)", "", fmt(run_floor), fmt(report.get("floor_runc_run_ms",
         {}).get("cpu_per_run")), "CPU"),
        ("exec p50 (ms)", "< 100", fmt(execs.get("p50")), fmt(exec_floor),
         r(ratio(execs.get("p50"), exec_floor))),
        ("exec p99 (ms)", "", fmt(execs.get("p99")), fmt(report.get("floor_runc_exec_ms", {})
         .get("p99")), ""),
        ("server CPU per exec (ms)", "", fmt(execs.get("server_cpu_ms")), "", ""),
        ("server CPU per pod start (ms)", "",
         fmt(report.get("start", {}).get("server_cpu_ms_per_pod")), "", ""),
        ("log follow (MB/s)", "", fmt(logs.get("mb_per_s")), "", ""),
        ("CNI ADD p50 (ms)", "", fmt(cni.get("add_ms", {}).get("p50")), "", ""),
        ("CNI DEL p50 (ms)", "", fmt(cni.get("del_ms", {}).get("p50")), "", ""),
        (f"server RSS, {mem.get('pods_running', '?')} pods (MiB)", "",
         fmt(mem.get("server_rss_mib")), fmt(report.get("idle_memory", {})
         .get("server_rss_mib")), "idle"),
        ("shims PSS total (MiB)", "", fmt(mem.get("shims_pss_mib")), "", ""),
    ]  # fmt: skip


def print_report(report: dict[str, Any]) -> None:
    if report.get("floor_only"):
        print_floor(report)
        return
    table = [("", "target", "measured", "floor", "ratio"), *rows(report)]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    start = report.get("start", {})
    print(
        f"\n{start.get('pods')} pods, {start.get('parallel')} at a time: all Ready in "
        f"{start.get('all_ready_s')} s; bound p50 {start.get('create_to_bound_ms', {}).get('p50')}"
        f" ms, Running p50 {start.get('create_to_running_ms', {}).get('p50')} ms; other CPU "
        f"{start.get('other_cpu_cores')} cores; load average at start "
        f"{report['machine']['load_average_at_start']}"
    )
    print_floor(report)
    if report.get("leftovers"):
        print(f"LEFT BEHIND (removed now): {report['leftovers']}")


def print_floor(report: dict[str, Any]) -> None:
    """The bare wave floor's lines (pods_floor.py), with the kajitori waves' ratio if run."""
    floor = report.get("floor_wave") or {}
    start = (report.get("start") or {}).get("create_to_ready_ms") or {}
    for name in ("all_at_once", "per_core"):
        found = floor.get(name)
        if not found:
            continue
        ready = found["ready_ms"]
        line = (
            f"bare wave floor, {found['waves']} x {found['parallel']}, {found['at_once']} at "
            f"once: p50 {ready['p50']} / p99 {ready['p99']} / max {ready['max']} ms; node CPU "
            f"{found.get('node_cpu_ms_per_start')} ms per start; steps p50 "
            f"{found['steps_p50_ms']}; other CPU {found.get('other_cpu_cores')} cores"
        )
        if found.get("idle_estimate_ms"):
            estimate = found["idle_estimate_ms"]
            line += f" (all cores its own, from its CPU: p50 ~{estimate['p50']} / max ~"
            line += f"{estimate['max']} ms)"
        if start:
            line += (
                f"; kajitori / floor: p50 x{ratio(start.get('p50'), ready['p50'])}, "
                f"p99 x{ratio(start.get('p99'), ready['p99'])}"
            )
        print(line)
    if floor:
        print(f"  load average before the floor {floor.get('load_average_at_start')}")
    if report.get("floor_only") and report.get("leftovers"):
        print(f"LEFT BEHIND: {report['leftovers']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20 pods, 10 execs, 8 MiB of logs")
    parser.add_argument("--pods", type=int, help="pods to start (default 100)")
    parser.add_argument("--parallel", type=int, default=20, help="pods being started at once")
    parser.add_argument(
        "--sequential", type=int, help="pods then started one at a time (default 10)"
    )
    parser.add_argument("--execs", type=int, help="execs timed (default 50)")
    parser.add_argument("--log-mib", type=int, help="MiB the logging container writes (64)")
    parser.add_argument(
        "--floor-runs", type=int, help="runc runs and CNI ADD/DELs for the floors (default 20)"
    )
    parser.add_argument(
        "--floor-waves", type=int, help="waves of --parallel for the bare wave floor (default 5)"
    )
    parser.add_argument(
        "--floor-only", action="store_true", help="only the bare wave floor (no cluster)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="limit per wait, seconds")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server's starts into FILE (execs: FILE.exec.txt)"
    )
    parser.add_argument("--output", type=Path, help="JSON path (default bench/results/pods-<ts>)")
    args = parser.parse_args(argv)
    reason = skip_reason()
    if reason is not None:
        print(f"bench.pods skipped: {reason}")
        return
    plan = Plan(
        pods=args.pods or (20 if args.quick else 100),
        parallel=args.parallel,
        sequential=args.sequential or (5 if args.quick else 10),
        execs=args.execs or (10 if args.quick else 50),
        log_mib=args.log_mib or (8 if args.quick else 64),
        floor_runs=args.floor_runs or (5 if args.quick else 20),
        timeout=args.timeout,
        floor_waves=args.floor_waves or (1 if args.quick else 5),
        profile=args.profile,
    )
    measure = run_floor_only if args.floor_only else run
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-pods-") as directory:
        report = asyncio.run(measure(plan, Path(directory)))
    print_report(report)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.output or RESULTS_DIR / f"pods-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"\nwrote {path}")


def _progress(message: str) -> None:
    print(f"[bench.pods] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
