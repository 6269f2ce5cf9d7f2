"""Benchmark: the API server's throughput, watch latency and footprint, against its floors.

Run ``python -m bench.api`` (about 3-4 minutes; ``--quick`` for a ~30 s
smoke run; ``--backends sqlite`` for one backend). For each storage backend
it starts ``python -m kajitori up`` as a separate process pinned to core 0,
drives it over HTTPS keep-alive with the admin client certificate from this
process pinned to core 1, and measures, at concurrency 1, 16 and 64:

* creates/s, gets/s of ~1 KB ConfigMaps, and lists/s of a namespace holding
  100 and 5,000 of them;
* watch delivery latency with 100 watchers on one namespace: from the moment
  a create's response has arrived here (its acknowledgement) to the moment
  each watcher has read the event, while creates run at that concurrency;
* floor (a), the same server stack doing no work: the API server has no
  no-op route, so ``GET /healthz`` (request info, authentication,
  authorization, routing, a 2-byte body) stands in for it;
* floor (b), the backend's raw write rate without the API server: 64
  concurrent ``create`` calls on ``SqliteBackend`` in this process, or on
  ``EtcdBackend`` against the same etcd;
* ``kajitori up`` time from spawn to its ready line and to the first
  successful HTTPS request, on a fresh data directory (``cold``: PKI and
  database created) and again on the same one (``warm``), and the server's
  VmRSS one second after the warm start (``idle``) and its high-water mark at
  the end (``peak``).

It prints tables with the targets beside the figures, and writes everything
to ``bench/results/api-<timestamp>.json`` (or ``--output``). ``--profile
DIR`` additionally samples the server with py-spy during the concurrency-64
create and get cells and prints the hottest functions; py-spy takes CPU
too, so do not quote figures from a profiled run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import common, loadgen
from kajitori.storage import interface
from kajitori.testing.etcd_server import EtcdServer

CONCURRENCY = (1, 16, 64)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
NOOP_PATH = "/healthz"
RAW_WRITERS = 64
JSON_HEADERS = (("content-type", "application/json"), ("accept", "application/json"))
_PAYLOAD = "x" * 900  # with metadata, the ConfigMap sent is ~1 KB


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run measures and for how long."""

    backends: tuple[str, ...]
    seconds: float
    small_list: int
    large_list: int
    watchers: int
    quick: bool
    profile_dir: Path | None = None


# -- requests ------------------------------------------------------------------


def configmap_body(name: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "data": {"payload": _PAYLOAD},
        }
    )


def creates(namespace: str, prefix: str) -> loadgen.RequestFactory:
    """POST a new ConfigMap named ``prefix-<sequence>`` per request."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    return lambda i: ("POST", path, JSON_HEADERS, configmap_body(f"{prefix}-{i}"))


def gets(namespace: str, prefix: str, count: int) -> loadgen.RequestFactory:
    """GET the ``count`` ConfigMaps ``prefix-0..`` in turn (requests built once)."""
    base = f"/api/v1/namespaces/{namespace}/configmaps/{prefix}"
    requests = [("GET", f"{base}-{i}", JSON_HEADERS, b"") for i in range(count)]
    return lambda i: requests[i % count]


def lists(namespace: str) -> loadgen.RequestFactory:
    return loadgen.constant("GET", f"/api/v1/namespaces/{namespace}/configmaps")


# -- floors --------------------------------------------------------------------


async def raw_write_rate(backend: interface.Backend, seconds: float) -> dict[str, Any]:
    """Floor (b): ``RAW_WRITERS`` tasks calling ``backend.create`` back to back."""
    value = configmap_body("raw-0000000")
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def writer(index: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                await backend.create(f"/raw/{index}/{n}", value)
            except interface.StorageError:
                errors += 1
            latencies.append(time.perf_counter() - began)
            n += 1

    began = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(RAW_WRITERS)))
    elapsed = time.perf_counter() - began
    return {
        "concurrency": RAW_WRITERS,
        "writes": len(latencies),
        "seconds": round(elapsed, 3),
        "writes_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(common.percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(common.percentile(latencies, 0.99) * 1000, 3),
        "errors": errors,
    }


async def raw_floor(
    backend_kind: str, workdir: Path, etcd: EtcdServer | None, seconds: float
) -> dict[str, Any]:
    if backend_kind == "etcd":
        from kajitori.storage.etcd import EtcdBackend

        assert etcd is not None
        backend: interface.Backend = EtcdBackend(etcd.endpoint, prefix="/raw-floor")
        how = "EtcdBackend.create (a txn put) against the same etcd, in the driver process"
    else:
        from kajitori.storage.sqlite import SqliteBackend

        backend = SqliteBackend(workdir / "raw-floor.db")
        how = "SqliteBackend.create (synchronous=FULL, as the server) in the driver process"
    await backend.start()
    try:
        row = await raw_write_rate(backend, seconds)
    finally:
        await backend.close()
    return {"how": how, **row}


# -- the server under load -----------------------------------------------------


async def populate(
    server: common.ServerProcess,
    context: ssl.SSLContext,
    *,
    namespace: str,
    prefix: str,
    count: int,
) -> None:
    """Create ``count`` ConfigMaps ``prefix-0..count-1`` (not measured)."""
    if count <= 0:
        return
    result = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=min(16, count),
        total_requests=count, make_request=creates(namespace, prefix),
    )  # fmt: skip
    if result.statuses.get(201) != count:
        raise RuntimeError(
            f"populating {namespace}: {dict(result.statuses)}, {result.errors} errors"
        )


async def create_namespace(
    server: common.ServerProcess, context: ssl.SSLContext, name: str
) -> None:
    body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    result = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=1, total_requests=1,
        make_request=loadgen.constant("POST", "/api/v1/namespaces", body),
    )  # fmt: skip
    if result.statuses.get(201) != 1:
        raise RuntimeError(f"creating namespace {name}: {dict(result.statuses)}")


async def operations(
    server: common.ServerProcess, context: ssl.SSLContext, plan: Plan, profiler: Profiler
) -> dict[str, list[dict[str, Any]]]:
    """The floor (a) and create/get/list cells, each at every concurrency."""
    for namespace in ("bench-create", "bench-small", "bench-large"):
        await create_namespace(server, context, namespace)
    await populate(server, context, namespace="bench-small", prefix="obj", count=plan.small_list)
    await populate(server, context, namespace="bench-large", prefix="obj", count=plan.large_list)
    factories: dict[str, Callable[[int], loadgen.RequestFactory]] = {
        "noop": lambda c: loadgen.constant("GET", NOOP_PATH),
        "create": lambda c: creates("bench-create", f"c{c}"),
        "get": lambda c: gets("bench-small", "obj", plan.small_list),
        "list_small": lambda c: lists("bench-small"),
        "list_large": lambda c: lists("bench-large"),
    }
    objects = {"list_small": plan.small_list, "list_large": plan.large_list}
    rows: dict[str, list[dict[str, Any]]] = {}
    for operation, factory in factories.items():
        rows[operation] = []
        for concurrency in CONCURRENCY:
            with profiler.sampling(server, operation, concurrency, plan.seconds):
                row = await common.measure(
                    server, context, concurrency=concurrency, seconds=plan.seconds,
                    make_request=factory(concurrency),
                    warmup=0 if operation == "create" else (2 if operation == "list_large" else 10),
                )  # fmt: skip
            if operation in objects:
                row["objects"] = objects[operation]
            rows[operation].append(row)
            _progress(f"{operation} c={concurrency}: {row['rps']:.0f}/s")
    return rows


async def watch_cell(
    server: common.ServerProcess, context: ssl.SSLContext, plan: Plan, concurrency: int
) -> dict[str, Any]:
    """``plan.watchers`` watches on a fresh namespace while creates run at ``concurrency``."""
    namespace = f"bench-watch-{concurrency}"
    await create_namespace(server, context, namespace)
    path = f"/api/v1/namespaces/{namespace}/configmaps?watch=1"
    streams = [
        common.WatchStream.open(context, port=server.port, path=path) for _ in range(plan.watchers)
    ]
    try:
        # A first event every stream has seen proves all watches are established.
        await populate(server, context, namespace=namespace, prefix="sync", count=1)
        await _until(lambda: all(s.received for s in streams), timeout=30)
        for stream in streams:
            stream.received.clear()
        completions: list[tuple[int, float]] = []
        cpu_before = server.cpu_seconds()
        result = await loadgen.run(
            host="127.0.0.1", port=server.port, ssl_context=context, connections=concurrency,
            duration=plan.seconds, make_request=creates(namespace, "w"), completions=completions,
        )  # fmt: skip
        acked = {f"w-{seq}".encode(): at for seq, at in completions}
        await _until(lambda: all(len(s.received) >= len(acked) for s in streams), timeout=20)
        server_cpu = server.cpu_seconds() - cpu_before
    finally:
        for stream in streams:
            stream.close()
    return _watch_row(concurrency, result, acked, streams, server_cpu, plan.watchers)


def _watch_row(
    concurrency: int,
    result: loadgen.Result,
    acked: dict[bytes, float],
    streams: list[common.WatchStream],
    server_cpu: float,
    watchers: int,
) -> dict[str, Any]:
    delays = [at - acked[name] for s in streams for name, at in s.received if name in acked]
    early = sum(1 for d in delays if d < 0)
    clamped = [max(d, 0.0) for d in delays]
    expected = len(acked) * watchers
    return {
        "concurrency": concurrency,
        "watchers": watchers,
        "writes": len(acked),
        "writes_per_second": round(result.requests_per_second, 1),
        "write_statuses": dict(result.statuses),
        "events_expected": expected,
        "events_delivered": len(delays),
        "events_missing": expected - len(delays),
        "delivered_before_ack": early,
        "p50_ms": round(common.percentile(clamped, 0.50) * 1000, 3),
        "p99_ms": round(common.percentile(clamped, 0.99) * 1000, 3),
        "max_ms": round(max(clamped, default=0.0) * 1000, 3),
        "server_cpu_share": round(server_cpu / max(result.seconds, 1e-9), 2),
    }


async def _until(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


# -- one backend ---------------------------------------------------------------


async def bench_backend(kind: str, plan: Plan, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    etcd = EtcdServer(workdir / "etcd") if kind == "etcd" else None
    if etcd is not None:
        await asyncio.to_thread(etcd.start)
    try:
        raw = await raw_floor(kind, workdir, etcd, plan.seconds)
        _progress(f"{kind} raw writes: {raw['writes_per_second']:.0f}/s")
        extra = ["--storage", "etcd", "--etcd-endpoint", etcd.endpoint] if etcd else []
        return {"raw_writes": raw, **await _bench_server(kind, plan, workdir / "server", extra)}
    finally:
        if etcd is not None:
            await asyncio.to_thread(etcd.stop)


async def _bench_server(kind: str, plan: Plan, data_dir: Path, extra: list[str]) -> dict[str, Any]:
    cold = common.ServerProcess(data_dir, extra_args=extra)
    cold.start()
    cold.stop()
    server = common.ServerProcess(data_dir, extra_args=extra)
    server.start()
    try:
        await asyncio.sleep(1.0)
        startup = {
            "cold_ready_line_s": round(cold.ready_line_seconds, 3),
            "cold_first_request_s": round(cold.first_request_seconds, 3),
            "warm_ready_line_s": round(server.ready_line_seconds, 3),
            "warm_first_request_s": round(server.first_request_seconds, 3),
            "idle_rss_mb": round(server.status_kb("VmRSS") / 1024, 1),
        }
        _progress(f"{kind} server pid {server.pid} ready: {startup}")
        context = common.client_ssl_context(data_dir)
        profiler = Profiler(plan.profile_dir, kind)
        ops = await operations(server, context, plan, profiler)
        watch = []
        for concurrency in CONCURRENCY:
            watch.append(await watch_cell(server, context, plan, concurrency))
            _progress(f"watch c={concurrency}: p99 {watch[-1]['p99_ms']} ms")
        startup["peak_rss_mb"] = round(server.status_kb("VmHWM") / 1024, 1)
        return {
            "startup": startup,
            "operations": ops,
            "watch": watch,
            "profiles": profiler.summaries,
        }
    finally:
        server.stop()


# -- profiling -----------------------------------------------------------------


class Profiler:
    """py-spy on the server during the concurrency-64 create and get cells, when asked."""

    PROFILED = frozenset({"create", "get"})

    def __init__(self, directory: Path | None, backend: str) -> None:
        self.directory = directory
        self.backend = backend
        self.summaries: dict[str, Any] = {}

    def sampling(
        self, server: common.ServerProcess, operation: str, concurrency: int, seconds: float
    ) -> _Sampling:
        wanted = self.directory is not None and operation in self.PROFILED and concurrency == 64
        return (
            _Sampling(self, server, operation, seconds)
            if wanted
            else _Sampling(None, server, operation, seconds)
        )


class _Sampling:
    def __init__(
        self,
        profiler: Profiler | None,
        server: common.ServerProcess,
        operation: str,
        seconds: float,
    ) -> None:
        self._profiler = profiler
        self._server = server
        self._operation = operation
        self._seconds = max(1, int(seconds))
        self._process: subprocess.Popen[bytes] | None = None
        self._output = Path()

    def __enter__(self) -> None:
        if self._profiler is None or self._profiler.directory is None:
            return
        self._profiler.directory.mkdir(parents=True, exist_ok=True)
        self._output = self._profiler.directory / f"{self._profiler.backend}-{self._operation}.txt"
        self._process = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self._server.pid), "--duration", str(self._seconds),
             "--rate", "250", "--nonblocking", "--format", "raw", "--output", str(self._output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def __exit__(self, *exc_info: object) -> None:
        if self._process is None or self._profiler is None:
            return
        self._process.wait(timeout=self._seconds + 30)
        summary = summarise_profile(self._output)
        self._profiler.summaries[self._operation] = summary
        print(f"\n{self._profiler.backend} {self._operation} c=64, {summary['samples']} samples")
        for label in ("self", "inclusive"):
            print(f"  top {label}:")
            for name, share in summary[label][:15]:
                print(f"    {share:6.1%}  {name}")


def summarise_profile(path: Path) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(frame) for frame in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:40]
        return [(name, round(n / max(total, 1), 4)) for name, n in ranked]

    return {"samples": total, "self": top(own), "inclusive": top(inclusive)}


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` → ``name (file.py)``: lines folded into functions."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})" if where else name


# -- targets, tables, JSON -----------------------------------------------------


def _at(rows: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    return next(row for row in rows if row["concurrency"] == concurrency)


def targets(kind: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure it is judged on, and whether it is met."""
    ops, startup = result["operations"], result["startup"]
    noop = _at(ops["noop"], 64)["rps"]
    create, get = _at(ops["create"], 64)["rps"], _at(ops["get"], 64)["rps"]
    raw = result["raw_writes"]["writes_per_second"]
    checks = [
        ("creates/s at c=64 ≥ 40% of no-op req/s", create / noop, 0.40, ">="),
        ("gets/s at c=64 ≥ 60% of no-op req/s", get / noop, 0.60, ">="),
    ]
    if kind == "etcd":
        checks.append(
            ("creates/s at c=64 ≥ 50% of raw etcd puts at c=64", create / raw, 0.50, ">=")
        )
    for row in result["watch"]:
        checks.append(
            (
                f"watch p99 < 50 ms, {row['watchers']} watchers, writes at c={row['concurrency']}",
                row["p99_ms"],
                50.0,
                "<",
            )
        )
    checks += [
        ("ready line < 1 s (cold start)", startup["cold_ready_line_s"], 1.0, "<"),
        ("first HTTPS request < 1 s (cold start)", startup["cold_first_request_s"], 1.0, "<"),
        ("idle RSS < 150 MB", startup["idle_rss_mb"], 150.0, "<"),
    ]
    return [
        {"target": name, "value": round(value, 3), "threshold": threshold,
         "met": value >= threshold if op == ">=" else value < threshold}
        for name, value, threshold, op in checks
    ]  # fmt: skip


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Each API operation at c=64 as a fraction of floor (a) and, for creates, floor (b)."""
    ops = result["operations"]
    noop = _at(ops["noop"], 64)["rps"]
    out = {
        f"{op}_vs_noop": round(_at(rows, 64)["rps"] / noop, 3)
        for op, rows in ops.items()
        if op != "noop"
    }
    out["create_vs_raw_writes"] = round(
        _at(ops["create"], 64)["rps"] / result["raw_writes"]["writes_per_second"], 3
    )
    return out


def print_report(report: dict[str, Any]) -> None:
    for kind, result in report["backends"].items():
        print(f"\n=== {kind} === (no-op floor: GET {NOOP_PATH})")
        print(
            f"{'operation':<12}{'objects':>8}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'srv µs/req':>12}{'non-2xx':>9}"
        )
        for op, rows in result["operations"].items():
            for r in rows:
                bad = (
                    sum(n for code, n in r["statuses"].items() if not 200 <= int(code) < 300)
                    + r["errors"]
                )
                print(
                    f"{op:<12}{r.get('objects', ''):>8}{r['concurrency']:>6}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}"
                    f"{r['p99_ms']:>9.2f}{r['server_cpu_us_per_request']:>12.0f}{bad:>9}"
                )
        raw = result["raw_writes"]
        print(
            f"raw backend writes (no API server), c={raw['concurrency']}: {raw['writes_per_second']:.0f}/s, p99 {raw['p99_ms']:.1f} ms"
        )
        print("ratios at c=64: " + ", ".join(f"{k} {v:.0%}" for k, v in result["ratios"].items()))
        print(
            f"\nwatch ({result['watch'][0]['watchers']} watchers){'':<4}{'conc':>6}{'writes/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'missing':>9}"
        )
        for w in result["watch"]:
            print(
                f"{'':<22}{w['concurrency']:>6}{w['writes_per_second']:>10.0f}{w['p50_ms']:>9.2f}{w['p99_ms']:>9.2f}{w['max_ms']:>9.1f}{w['events_missing']:>9}"
            )
        print(
            "\nstartup and memory: " + ", ".join(f"{k} {v}" for k, v in result["startup"].items())
        )
        print(f"\n{'target':<70}{'figure':>10}{'met':>6}")
        for t in result["targets"]:
            print(f"{t['target']:<70}{t['value']:>10.3f}{'yes' if t['met'] else 'NO':>6}")


# -- command line --------------------------------------------------------------


async def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    common.pin(common.CLIENT_CORE)
    report: dict[str, Any] = {
        "benchmark": "api",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": common.machine(),
        "plan": {
            **dataclasses.asdict(plan),
            "profile_dir": str(plan.profile_dir or ""),
            "concurrency": list(CONCURRENCY),
        },
        "noop_endpoint": f"GET {NOOP_PATH}: the API server has no no-op route; /healthz is the cheapest real route through the same handler chain (request info, authn, authz, routing)",
        "backends": {},
    }
    for kind in plan.backends:
        result = await bench_backend(kind, plan, workdir / kind)
        result["ratios"] = ratios(result)
        result["targets"] = targets(kind, result)
        report["backends"][kind] = result
    return report


def parse_plan(argv: list[str] | None) -> tuple[Plan, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~30 s smoke run: short cells, 1,000-object large list",
    )
    parser.add_argument(
        "--backends", default="sqlite,etcd", help="comma-separated: sqlite, etcd (default: both)"
    )
    parser.add_argument("--seconds", type=float, help="length of each cell (default 3, quick 0.5)")
    parser.add_argument(
        "--large-list", type=int, help="objects in the large list (default 5000, quick 1000)"
    )
    parser.add_argument(
        "--small-list", type=int, default=100, help="objects in the small list (default 100)"
    )
    parser.add_argument(
        "--watchers", type=int, default=100, help="concurrent watchers (default 100)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSON path (default bench/results/api-<timestamp>.json)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the server during c=64 create/get; raw stacks go to DIR",
    )
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if unknown := set(backends) - {"sqlite", "etcd"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    plan = Plan(
        backends=backends,
        seconds=args.seconds or (0.5 if args.quick else 3.0),
        small_list=args.small_list,
        large_list=args.large_list or (1000 if args.quick else 5000),
        watchers=args.watchers,
        quick=args.quick,
        profile_dir=args.profile,
    )
    return plan, args.output


def main(argv: list[str] | None = None) -> None:
    plan, output = parse_plan(argv)
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-api-") as directory:
        report = asyncio.run(run(plan, Path(directory)))
    print_report(report)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = output or RESULTS_DIR / f"api-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")


def _progress(message: str) -> None:
    print(f"[bench.api] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
