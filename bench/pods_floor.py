"""The bare wave floor of ``bench.pods``: pods started in waves by runc and the CNI plugins alone.

The pod-start targets of issue 6 are for waves of 20 pods created at once.
Whether a 2-core machine can meet them at all is a question for a
measurement, not an argument, so ``bench.pods`` also starts the same waves
with no kajitori at all (no API server, scheduler, kubelet or shim), the
cheapest way the same parts allow, in the same run. Per "pod", in a worker
thread of the driver:

1. **sandbox**: new network, IPC and UTS namespaces pinned to files, with
   loopback up (``pinns.pin`` in a thread of its own that ends right after:
   the kubelet's way, no process);
2. **CNI ADD**: the plugin chain of the kubelet's own conflist
   (``pod_network_conflist`` as ``cmd/kubelet.py`` configures it: bridge with
   host-local IPAM, portmap only when hostPorts are on, which they are not),
   each plugin exec'd with the CNI environment and its config on stdin,
   inside a node namespace through ``ip netns exec``, as the kubelet does;
3. **rootfs**: an overlay of the cached busybox image (upper and work dirs
   of its own), made with ``mount(2)``;
4. ``runc create`` then ``runc start`` of ``sleep 3600`` joining the pinned
   namespaces, stdio on /dev/null (no shim, no log, no probes);

and the pod is "ready" when ``runc start`` returned. Each pod is timed from
the start of its wave. ``waves`` waves of ``parallel`` pods, a wave once the
one before is all started, every pod left running until the end (as the
cluster's pods are), twice: all of a wave at once (``all_at_once``), and
as many at once as there are cores (``per_core``), so pods finish in order
as the kubelet's start gate makes them. The node CPU per start is a cgroup-v1
``cpuacct`` group the driver process sits in during the waves: its threads,
``ip``, the plugins and runc (runc's init moves into the container's own
cgroup before it execs, as in the cluster's figure).

Everything is then removed (``runc delete --force``, CNI DEL with the ADD's
result, unmounts, the cgroups, the node namespace with its bridge) and
counted again (``kajitori.testing.leaks``): ``leftovers`` lists what was
still there, and should be empty. Host-global names are unique to the run:
the node namespace ``kjfloor-<random>`` (the bridge and pod veths live inside
it) and the cgroup ``/kjfloor-<random>``; the pod namespaces are files
under the run's own directory. Root only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench import common
from kajitori.kubelet.network import cni, pod_network
from kajitori.kubelet.runtimes.oci import mounts, pinns, sandbox_network
from kajitori.testing import leaks

POD_CIDR = "10.250.0.0/24"  # inside the run's own node namespace: no host route can meet it
COMMAND = ["sleep", "3600"]
CPUACCT = Path("/sys/fs/cgroup/cpuacct")
STEPS = ("sandbox", "cni_add", "rootfs", "runc_create", "runc_start")


@dataclasses.dataclass
class Pod:
    """One started "pod": what it holds, for the removal, and how long each step took."""

    n: int
    directory: Path
    steps: dict[str, float] = dataclasses.field(default_factory=dict)
    ready: float = 0.0  # seconds from its wave's start to ``runc start`` returning
    pinned: bool = False
    result: dict[str, Any] | None = None  # the last plugin's Result (DEL's prevResult)
    created: bool = False

    @property
    def container_id(self) -> str:
        return f"floor-{self.n}"


class WaveFloor:
    """Starts waves of bare pods under ``directory`` from the busybox ``rootfs``; removes them."""

    def __init__(self, directory: Path, rootfs: Path) -> None:
        self.token = secrets.token_hex(3)
        self.root = directory / f"floor-wave-{self.token}"
        self.rootfs = rootfs
        self.node = f"kjfloor-{self.token}"
        self.cgroup_parent = f"/kjfloor-{self.token}"
        self.runc_root = self.root / "runc"
        self.cni_state = self.root / "cni"
        # The kubelet's chain: cmd/kubelet.py leaves NetworkOptions' hostPort default alone.
        kubelets = sandbox_network.NetworkOptions(host_netns=self.node)
        self.conflist = pod_network.pod_network_conflist(
            POD_CIDR,
            ipam_dir=self.cni_state / "networks",
            is_gateway=True,
            host_ports=kubelets.host_ports,
        )
        self.plugins = [self._plugin_path(p["type"]) for p in self.conflist.plugins]
        self.pods: list[Pod] = []
        self._template: dict[str, Any] = {}
        self._numbers = itertools.count(1)  # next() is atomic under the GIL: pods' threads share it

    @staticmethod
    def _plugin_path(plugin_type: str) -> str:
        found = cni.find_plugin(plugin_type, cni.DEFAULT_CNI_PATH)
        if found is None:
            raise RuntimeError(f"CNI plugin {plugin_type} is not installed")
        return found

    # -- set-up and removal ---------------------------------------------------------

    def setup(self) -> None:
        """The node namespace (where the bridge and host veths go) and the spec template."""
        (self.root / "pods").mkdir(parents=True)
        subprocess.run(["ip", "netns", "add", self.node], check=True)
        subprocess.run(["ip", "netns", "exec", self.node, "ip", "link", "set", "lo", "up"])
        template = self.root / "template"
        template.mkdir()
        subprocess.run(["runc", "spec", "--bundle", str(template)], check=True)
        self._template = json.loads((template / "config.json").read_text())

    def remove(self) -> list[str]:
        """Remove every pod and the node namespace; what was still there afterwards."""
        # A core's worth at a time: a hundred ``runc delete`` + CNI DEL one by one take ~10 s.
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(self._remove_pod, self.pods))
        left = self._count_left()
        mounts.remove_cgroups(self.cgroup_parent)
        subprocess.run(["ip", "netns", "del", self.node], stderr=subprocess.DEVNULL)
        left += [f"cgroup {path}" for path in mounts.cgroup_dirs(self.cgroup_parent)]
        if Path(leaks.NETNS_DIR / self.node).exists():
            left.append(f"netns {self.node}")
        if not left:
            shutil.rmtree(self.root, ignore_errors=True)
        return left

    def _remove_pod(self, pod: Pod) -> None:
        if pod.created:
            subprocess.run(
                ["runc", "--root", str(self.runc_root), "delete", "--force", pod.container_id],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        if pod.pinned:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._cni(pod, "DEL", reversed(range(len(self.plugins))), pod.result)
        mounts.unmount_all(pod.directory)
        if not mounts.mounts_under(pod.directory):  # never remove files through a live mount
            shutil.rmtree(pod.directory, ignore_errors=True)

    def _count_left(self) -> list[str]:
        counts = asyncio.run(leaks.count(self.root, cni_state=self.cni_state, node_netns=self.node))
        return [f"{what} {n}" for what, n in dataclasses.asdict(counts).items() if n]

    # -- one pod --------------------------------------------------------------------

    def start_pod(self, began: float) -> Pod:
        """Start one pod; its step durations and its ready time from ``began``."""
        n = next(self._numbers)
        pod = Pod(n, self.root / "pods" / str(n))
        self.pods.append(pod)
        pod.directory.mkdir()
        step = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal step
            now = time.perf_counter()
            pod.steps[name], step = now - step, now

        self._pin(pod)
        lap("sandbox")
        pod.result = self._cni(pod, "ADD", range(len(self.plugins)), None)
        lap("cni_add")
        bundle = self._rootfs_and_spec(pod)
        lap("rootfs")
        # runc's errors go to its log: the container inherits runc's stdio, and a pipe there
        # would stay open as long as it runs.
        runc = ["runc", "--root", str(self.runc_root), "--log", str(bundle / "runc.log")]
        pod.created = True  # from here a delete is due whatever happens
        _run([*runc, "create", "--bundle", str(bundle), pod.container_id], bundle)
        lap("runc_create")
        _run([*runc, "start", pod.container_id], bundle)
        lap("runc_start")
        pod.ready = time.perf_counter() - began
        return pod

    def _pin(self, pod: Pod) -> None:
        ns = pod.directory / "ns"
        ns.mkdir()
        failed: list[BaseException] = []

        def work() -> None:
            try:
                pinns.pin(str(ns), f"floor-{pod.n}")
            except BaseException as exc:  # handed to the pod's thread
                failed.append(exc)

        thread = threading.Thread(target=work, name="kjfloor-pinns")  # ends in the new netns
        thread.start()
        thread.join()
        pod.pinned = True  # a partial pin still leaves bind mounts to undo
        if failed:
            raise failed[0]

    def _cni(
        self, pod: Pod, command: str, order: Any, prev: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Run the conflist's plugins in ``order`` for ``command``; the last Result."""
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": pod.container_id,
            "CNI_NETNS": str(pod.directory / "ns" / "net"),
            "CNI_IFNAME": "eth0",
            "CNI_PATH": os.pathsep.join(cni.DEFAULT_CNI_PATH),
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=floor;K8S_POD_NAME=floor-{pod.n};"
            f"K8S_POD_INFRA_CONTAINER_ID={pod.container_id}",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        for index in order:
            config = dict(self.conflist.plugins[index])
            config.update(cniVersion=self.conflist.cni_version, name=self.conflist.name)
            if prev is not None:
                config["prevResult"] = prev
            done = subprocess.run(
                ["ip", "netns", "exec", self.node, self.plugins[index]],
                input=json.dumps(config).encode(),
                env=env,
                capture_output=True,
            )
            if done.returncode != 0:
                raise subprocess.CalledProcessError(
                    done.returncode, f"CNI {command} {config['type']}", done.stdout, done.stderr
                )
            if done.stdout.strip():
                prev = json.loads(done.stdout)
        return prev

    def _rootfs_and_spec(self, pod: Pod) -> Path:
        bundle = pod.directory / "bundle"
        for name in ("rootfs", "upper", "work"):
            (bundle / name).mkdir(parents=True)
        mounts.mount_overlay(
            bundle / "rootfs", lower=self.rootfs, upper=bundle / "upper", work=bundle / "work"
        )
        config = json.loads(json.dumps(self._template))
        config["process"].update(terminal=False, args=COMMAND)
        config["root"] = {"path": str(bundle / "rootfs"), "readonly": False}
        config["hostname"] = f"floor-{pod.n}"
        ns = pod.directory / "ns"
        joined = {"network": ns / "net", "ipc": ns / "ipc", "uts": ns / "uts"}
        config["linux"]["namespaces"] = [
            {"type": entry["type"], "path": str(joined[entry["type"]])}
            if entry["type"] in joined
            else entry
            for entry in config["linux"]["namespaces"]
        ]
        config["linux"]["cgroupsPath"] = f"{self.cgroup_parent}/{pod.n}"
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    # -- the waves ------------------------------------------------------------------

    def waves(self, waves: int, parallel: int, at_once: int) -> dict[str, Any]:
        """``waves`` waves of ``parallel`` pods, ``at_once`` of them starting at a time."""
        latencies: list[float] = []
        started: list[Pod] = []
        cpu = _CpuAccount()
        busy = common._machine_busy_seconds()
        began_all = time.perf_counter()
        with cpu, concurrent.futures.ThreadPoolExecutor(at_once) as pool:
            for _ in range(waves):
                began = time.perf_counter()
                futures = [pool.submit(self.start_pod, began) for _ in range(parallel)]
                wave = [future.result() for future in futures]
                started += wave
                latencies += [pod.ready for pod in wave]
        elapsed = time.perf_counter() - began_all
        count = waves * parallel
        report: dict[str, Any] = {
            "waves": waves,
            "parallel": parallel,
            "at_once": at_once,
            "ready_ms": common.summary_ms(latencies),
            "steps_p50_ms": {
                name: round(statistics.median(p.steps[name] for p in started) * 1000, 1)
                for name in STEPS
            },
            "all_started_s": round(elapsed, 2),
        }
        if cpu.seconds is not None:
            report["node_cpu_ms_per_start"] = round(cpu.seconds / count * 1000, 1)
            other = common._machine_busy_seconds() - busy - cpu.seconds
            report["other_cpu_cores"] = round(max(other, 0.0) / elapsed, 2)
        report["children_cpu_ms_per_start"] = round(cpu.children / count * 1000, 1)
        report["driver_cpu_ms_per_start"] = round(cpu.own / count * 1000, 1)
        report["idle_estimate_ms"] = idle_estimate(report, at_once)
        return report


def _run(argv: list[str], bundle: Path) -> None:
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if done.returncode != 0:
        log = (bundle / "runc.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {log}")


class _CpuAccount:
    """CPU of this process and its children while inside the block: a cpuacct cgroup of its
    own when cgroup v1 offers one (``seconds``), and getrusage (``own``, ``children``)."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.own = self.children = 0.0

    def __enter__(self) -> _CpuAccount:
        self._path: Path | None = None
        if (CPUACCT / "cpuacct.usage").exists():
            self._home = _cpuacct_of_self()
            self._path = CPUACCT / f"kjfloor-cpu-{secrets.token_hex(3)}"
            self._path.mkdir()
            (self._path / "cgroup.procs").write_text(str(os.getpid()))
        self._own, self._children = _rusage()
        return self

    def __exit__(self, *exc_info: object) -> None:
        own, children = _rusage()
        self.own, self.children = own - self._own, children - self._children
        if self._path is None:
            return
        self.seconds = int((self._path / "cpuacct.usage").read_text()) / 1e9
        for pid in (self._path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (self._home / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self._path.rmdir()


def _cpuacct_of_self() -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            return CPUACCT / path.lstrip("/")
    return CPUACCT


def _rusage() -> tuple[float, float]:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def idle_estimate(report: dict[str, Any], at_once: int) -> dict[str, float] | None:
    """Derived, not measured: the wave's p50 and max if it had every core to itself and
    each start cost the CPU it was measured at. Pods a core's worth at a time finish in
    order (pod k of a wave at k x CPU / cores); all at once share the cores and finish
    together at the end. For reading a run on a busy machine, beside its measured figures."""
    cpu = report.get("node_cpu_ms_per_start")
    if cpu is None:
        return None
    cores = os.cpu_count() or 1
    parallel = report["parallel"]
    last = parallel * cpu / cores
    middle = last if at_once >= parallel else (parallel + 1) / 2 * cpu / cores
    return {"p50": round(middle, 1), "max": round(last, 1)}


def measure(directory: Path, rootfs: Path, *, waves: int, parallel: int) -> dict[str, Any]:
    """The floor both ways (a wave all at once, then a core's worth at a time), then removed;
    ``leftovers`` is what the removal found still there (should be empty)."""
    report: dict[str, Any] = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    cores = os.cpu_count() or 1
    for name, at_once in (("all_at_once", parallel), ("per_core", min(cores, parallel))):
        floor = WaveFloor(directory, rootfs)
        try:
            floor.setup()
            report[name] = floor.waves(waves, parallel, at_once)
        finally:
            left = floor.remove()
        report.setdefault("leftovers", []).extend(left)
        report.setdefault("netns", []).append(floor.node)  # its host-global names
        report.setdefault("cgroups", []).append(floor.cgroup_parent)
    report["plugins"] = [plugin["type"] for plugin in floor.conflist.plugins]
    return report
