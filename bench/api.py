"""Benchmark: the API server's throughput, watch latency and footprint, against its floors.

Run ``python -m bench.api`` (about 4 minutes; ``--quick`` for a 30-45 s
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
* floor (c), ``bench.bare_floor``: kajitori's HTTPS server and the same
  backend with nothing between them (a create only decodes, stamps, stores
  and answers; a get only reads storage), alternating c=64 rounds; its
  creates and gets against floor (a) are the most the ratio targets could
  show on this machine, since every create and get does at least that work;
* ``kajitori up`` time from spawn to its ready line and to the first
  successful HTTPS request, on a fresh data directory (``cold``: PKI and
  database created; kajitori's bytecode compiled, as an install leaves it)
  and again on the same one (``warm``), and the server's
  VmRSS one second after the warm start (``idle``) and its high-water mark at
  the end (``peak``).

The ratio targets (creates and gets against the no-op route) are judged on
the medians of ``--ratio-rounds`` further rounds of the c=64 no-op, create
and get cells, in alternation, once the server has settled after the list
objects were made: one cell of each, minutes apart, moves with what the
server or the host did in its seconds.

Each cell also records ``other_cpu_cores``: the CPU other processes on this
shared machine used meanwhile (cores' worth); a cell where it is high was
measured on a busy machine and its figure is low for that reason.

It prints tables with the targets beside the figures, and writes everything
to ``bench/results/api-<timestamp>.json`` (or ``--output``). ``--profile
DIR`` additionally samples the server with py-spy (``pip install py-spy``)
during the concurrency-64 create, get and watch cells and prints the hottest
functions; py-spy takes CPU too, so do not quote figures from a profiled run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import functools
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import bare_floor, common, loadgen
from kajitori.storage import interface
from kajitori.testing.etcd_server import EtcdServer

CONCURRENCY = (1, 16, 64)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
NOOP_PATH = "/healthz"
NOOP_CHOICE = (
    f"GET {NOOP_PATH}: the API server has no no-op route; /healthz is the cheapest real route"
    " through the same handler chain (request info, authn, authz, routing)"
)
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
    ratio_rounds: int = 3
    # The server under test: "up" (API server, controllers and scheduler in one process, as a
    # user runs it) or "apiserver" (the API server alone, as upstream's benchmarks measure
    # kube-apiserver; in-process controllers' watches are then not in its CPU).
    server_command: str = "up"


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
    server: common.ServerProcess, context: ssl.SSLContext, plan: Plan, profiler: common.Profiler
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


# The operations the ratio targets compare, measured in alternation at c=64.
RATIO_OPERATIONS = ("noop", "create", "get")
# The server counts as settled when it uses less than this share of its core.
SETTLED_CPU_SHARE = 0.05


async def settle(server: common.ServerProcess, *, timeout: float = 15.0) -> float:
    """Wait until the server's background work (controllers catching up with the objects
    just made, collections) has died down; the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        before = server.cpu_seconds()
        await asyncio.sleep(0.5)
        if (server.cpu_seconds() - before) / 0.5 < SETTLED_CPU_SHARE:
            break
    return round(time.monotonic() - began, 2)


async def ratio_rounds(
    server: common.ServerProcess, context: ssl.SSLContext, plan: Plan
) -> dict[str, Any]:
    """The no-op, create and get cells at c=64 again, alternating, ``plan.ratio_rounds`` times
    on a settled server; the ratio targets are judged on their medians.

    One cell of each, measured minutes apart, moves with whatever the server
    or the host did in that cell's seconds (the no-op cell alone has ranged
    from 46 to 82 µs of server CPU per request on one tree); alternating
    rounds meet the same conditions, and a median is not moved by one of them.
    """
    waited = await settle(server)
    factories: dict[str, Callable[[int], loadgen.RequestFactory]] = {
        "noop": lambda r: loadgen.constant("GET", NOOP_PATH),
        "create": lambda r: creates("bench-create", f"round{r}"),
        "get": lambda r: gets("bench-small", "obj", plan.small_list),
    }
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(plan.ratio_rounds):
        cells = {}
        for operation in RATIO_OPERATIONS:
            row = await common.measure(
                server, context, concurrency=64, seconds=plan.seconds,
                make_request=factories[operation](r), warmup=0 if operation == "create" else 10,
            )  # fmt: skip
            cells[operation] = {
                key: row[key]
                for key in ("rps", "server_cpu_us_per_request", "other_cpu_cores", "errors")
            }
        rounds.append(cells)
        _progress(f"ratio round {r + 1}: " + ", ".join(
            f"{op} {cell['rps']:.0f}/s" for op, cell in cells.items()
        ))  # fmt: skip
    median = {
        operation: {
            key: round(statistics.median(cells[operation][key] for cells in rounds), 1)
            for key in ("rps", "server_cpu_us_per_request")
        }
        for operation in RATIO_OPERATIONS
    }
    return {"settled_after_s": waited, "rounds": rounds, "median": median}


async def watch_cell(
    server: common.ServerProcess,
    context: ssl.SSLContext,
    plan: Plan,
    concurrency: int,
    *,
    profiler: common.Profiler,
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
        writes = _TimedWrites(creates(namespace, "w"))
        cpu_before = server.cpu_seconds()
        contention = common.Contention()
        with profiler.sampling(server, "watch", concurrency, plan.seconds):
            result = await loadgen.run(
                host="127.0.0.1", port=server.port, ssl_context=context, connections=concurrency,
                duration=plan.seconds, make_request=writes, completions=writes.completions,
            )  # fmt: skip
        acked = writes.acked()
        # Wait for every acknowledged write by name: a count alone is also met by
        # events of writes still in flight when the cell ended (sent, never acknowledged).
        await _until(lambda: all(_has_all(s, acked) for s in streams), timeout=20)
        server_cpu = server.cpu_seconds() - cpu_before
        other = contention.other_cpu_cores()
    finally:
        for stream in streams:
            stream.close()
    row = {"concurrency": concurrency, "watchers": plan.watchers, "writes": len(acked)}
    row["writes_per_second"] = round(result.requests_per_second, 1)
    row["write_statuses"] = dict(result.statuses)
    row["server_cpu_share"] = round(server_cpu / max(result.seconds, 1e-9), 2)
    row["other_cpu_cores"] = other
    return {**row, **_delivery(writes, streams, plan.watchers)}


def _has_all(stream: common.WatchStream, names: dict[bytes, float]) -> bool:
    if len(stream.received) < len(names):
        return False
    return names.keys() <= {name for name, _ in stream.received}


class _TimedWrites:
    """A request factory that remembers when each create was sent and acknowledged."""

    def __init__(self, factory: loadgen.RequestFactory) -> None:
        self._factory = factory
        self.sent: dict[bytes, float] = {}
        self.completions: list[tuple[int, float]] = []

    def __call__(self, sequence: int) -> loadgen.Request:
        # loadgen calls the factory immediately before it sends the request.
        self.sent[f"w-{sequence}".encode()] = time.perf_counter()
        return self._factory(sequence)

    def acked(self) -> dict[bytes, float]:
        return {f"w-{sequence}".encode(): at for sequence, at in self.completions}


def _delivery(
    writes: _TimedWrites, streams: list[common.WatchStream], watchers: int
) -> dict[str, Any]:
    """Watch delivery delays, from each write's acknowledgement and from its sending."""
    acked = writes.acked()
    received = [(name, at) for s in streams for name, at in s.received if name in acked]
    after_ack = [at - acked[name] for name, at in received]
    after_send = [at - writes.sent[name] for name, at in received]
    first: dict[bytes, float] = {}
    for name, at in received:
        first[name] = min(at, first.get(name, at))
    spread = [at - first[name] for name, at in received]
    clamped = [max(d, 0.0) for d in after_ack]
    expected = len(acked) * watchers

    def ms(values: list[float], fraction: float) -> float:
        return round(common.percentile(values, fraction) * 1000, 3)

    return {
        "events_expected": expected,
        "events_delivered": len(received),
        "events_missing": expected - len(received),
        # Events may reach a watcher before the write's own response does; the
        # delay from acknowledgement is then counted as 0 (the signed figures
        # are kept beside it).
        "delivered_before_ack": sum(1 for d in after_ack if d < 0),
        "p50_ms": ms(clamped, 0.50),
        "p99_ms": ms(clamped, 0.99),
        "max_ms": round(max(clamped, default=0.0) * 1000, 3),
        "signed_from_ack_p1_ms": ms(after_ack, 0.01),
        "signed_from_ack_p50_ms": ms(after_ack, 0.50),
        "signed_from_ack_p99_ms": ms(after_ack, 0.99),
        "from_send_p50_ms": ms(after_send, 0.50),
        "from_send_p99_ms": ms(after_send, 0.99),
        # How long after the first watcher the others got the same event: the
        # server's fan-out cost, which neither queueing of writes nor the
        # order of acknowledgement and event affects.
        "fanout_spread_p50_ms": ms(spread, 0.50),
        "fanout_spread_p99_ms": ms(spread, 0.99),
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
        bare = (
            ["--etcd-endpoint", etcd.endpoint] if etcd else ["--sqlite", str(workdir / "bare.db")]
        )
        result = await _bench_server(kind, plan, workdir / "server", extra, bare)
        return {"raw_writes": raw, **result}
    finally:
        if etcd is not None:
            await asyncio.to_thread(etcd.stop)


@functools.cache
def bytecode_as_installed() -> None:
    """Let the timed servers load compiled modules, as an installed kajitori does.

    ``pip install`` compiles a package's modules and an editable install's
    first import writes them, so a user's ``kajitori up`` loads bytecode; one
    untimed start and stop, once per run, makes sure it exists before any
    start is timed. Under ``PYTHONDONTWRITEBYTECODE`` (set on this project's
    shared machines) nothing would be written and every timed start would
    recompile each of kajitori's modules from source, 0.3-0.5 s no user
    spends: the servers then get a bytecode cache of their own,
    ``bench/results/pycache``, outside the source tree.
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", ""):
        os.environ["PYTHONPYCACHEPREFIX"] = str(RESULTS_DIR / "pycache")
    with tempfile.TemporaryDirectory(prefix="bench-api-primer-") as primer_dir:
        primer = common.ServerProcess(Path(primer_dir))
        primer.start()
        primer.stop()


async def _bench_server(
    kind: str, plan: Plan, data_dir: Path, extra: list[str], bare_args: list[str]
) -> dict[str, Any]:
    bytecode_as_installed()
    cold = common.ServerProcess(data_dir, extra_args=extra, command=plan.server_command)
    cold.start()
    cold.stop()
    # Floor (c) serves with the certificates the cold start made, before the server runs.
    bare = await bare_floor.measure(
        data_dir, bare_args, rounds=plan.ratio_rounds, seconds=plan.seconds
    )
    _progress(f"{kind} bare floor: " + ", ".join(
        f"{op} {cell['rps']:.0f}/s" for op, cell in bare["median"].items()
    ))  # fmt: skip
    server = common.ServerProcess(data_dir, extra_args=extra, command=plan.server_command)
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
        profiler = common.Profiler(plan.profile_dir, kind)
        ops = await operations(server, context, plan, profiler)
        interleaved = await ratio_rounds(server, context, plan)
        watch = []
        for concurrency in CONCURRENCY:
            watch.append(await watch_cell(server, context, plan, concurrency, profiler=profiler))
            _progress(f"watch c={concurrency}: p99 {watch[-1]['p99_ms']} ms")
        startup["peak_rss_mb"] = round(server.status_kb("VmHWM") / 1024, 1)
        return {
            "startup": startup,
            "operations": ops,
            "ratio_rounds": interleaved,
            "bare_floor": bare,
            "watch": watch,
            "profiles": profiler.summaries,
        }
    finally:
        server.stop()


# -- targets, tables, JSON -----------------------------------------------------


def _at(rows: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    return next(row for row in rows if row["concurrency"] == concurrency)


def targets(kind: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target (a stable id, its wording) with the figure it is judged on, and whether met."""
    startup, median = result["startup"], result["ratio_rounds"]["median"]
    noop = median["noop"]["rps"]
    create, get = median["create"]["rps"], median["get"]["rps"]
    raw = result["raw_writes"]["writes_per_second"]
    # Creates on etcd are judged against etcd's own put rate (decision 0043): its floor alone
    # is below 50% of the no-op route here, so the no-op ratio could not tell kajitori apart.
    checks = []
    if kind == "etcd":
        wording = "creates/s at c=64 ≥ 50% of raw etcd puts at c=64"
        checks.append(("create_vs_raw_etcd", wording, create / raw, 0.50, ">="))
    else:
        wording = "creates/s at c=64 ≥ 40% of no-op req/s"
        checks.append(("create_vs_noop", wording, create / noop, 0.40, ">="))
    checks.append(("get_vs_noop", "gets/s at c=64 ≥ 60% of no-op req/s", get / noop, 0.60, ">="))
    for row in result["watch"]:
        c, watchers = row["concurrency"], row["watchers"]
        wording = f"watch p99 < 50 ms, {watchers} watchers, writes at c={c}"
        checks.append((f"watch_p99_c{c}", wording, row["p99_ms"], 50.0, "<"))
    checks += [
        ("ready_line", "ready line < 1 s (cold start)", startup["cold_ready_line_s"], 1.0, "<"),
        ("first_request", "first HTTPS request < 1 s (cold start)",
         startup["cold_first_request_s"], 1.0, "<"),
        ("idle_rss", "idle RSS < 150 MB", startup["idle_rss_mb"], 150.0, "<"),
    ]  # fmt: skip
    return [
        {"id": key, "target": wording, "value": round(value, 3), "threshold": threshold,
         "met": value >= threshold if op == ">=" else value < threshold}
        for key, wording, value, threshold, op in checks
    ]  # fmt: skip


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Each API operation at c=64 as a fraction of floor (a) and, for creates, floor (b).

    ``<op>_vs_noop_by_cpu`` divides server CPU per no-op request by server
    CPU per ``op`` request instead: the server is pinned to one core and
    CPU-bound, so this is the throughput ratio it would reach on an idle
    machine, and it stays put when other processes take the core for a
    while (the throughput ratio does not, if they do so during only one of
    the two cells).
    """
    ops = result["operations"]
    noop = _at(ops["noop"], 64)
    out: dict[str, float] = {}
    for op, rows in ops.items():
        if op != "noop":
            row = _at(rows, 64)
            out[f"{op}_vs_noop"] = round(row["rps"] / noop["rps"], 3)
            cost = max(row["server_cpu_us_per_request"], 1e-9)
            out[f"{op}_vs_noop_by_cpu"] = round(noop["server_cpu_us_per_request"] / cost, 3)
    out["create_vs_raw_writes"] = round(
        _at(ops["create"], 64)["rps"] / result["raw_writes"]["writes_per_second"], 3
    )
    return out


def interleaved_ratios(result: dict[str, Any]) -> dict[str, float]:
    """``ratios``' create and get figures from the medians of the alternating rounds."""
    median = result["ratio_rounds"]["median"]
    noop = median["noop"]
    out: dict[str, float] = {}
    for op in ("create", "get"):
        out[f"{op}_vs_noop"] = round(median[op]["rps"] / noop["rps"], 3)
        cost = max(median[op]["server_cpu_us_per_request"], 1e-9)
        out[f"{op}_vs_noop_by_cpu"] = round(noop["server_cpu_us_per_request"] / cost, 3)
    out["create_vs_raw_writes"] = round(
        median["create"]["rps"] / result["raw_writes"]["writes_per_second"], 3
    )
    return out


def ceilings(result: dict[str, Any]) -> dict[str, float]:
    """Floor (c)'s creates and gets against floor (a): the most the ratio targets could show.

    ``bare_<op>_vs_noop`` divides the bare server's req/s by the API server's
    no-op route's (both medians of alternating rounds); ``..._by_cpu`` does the
    same with server CPU per request, which moves less with the host.
    ``bare_<op>_vs_bare_noop`` compares with the bare server's own no-op: the
    transport alone, with no authentication or authorization either.
    """
    noop = result["ratio_rounds"]["median"]["noop"]
    bare = result["bare_floor"]["median"]
    out: dict[str, float] = {}
    for op in ("create", "get"):
        out[f"bare_{op}_vs_noop"] = round(bare[op]["rps"] / noop["rps"], 3)
        cost = max(bare[op]["server_cpu_us_per_request"], 1e-9)
        out[f"bare_{op}_vs_noop_by_cpu"] = round(noop["server_cpu_us_per_request"] / cost, 3)
        out[f"bare_{op}_vs_bare_noop"] = round(bare[op]["rps"] / bare["noop"]["rps"], 3)
    return out


def print_report(report: dict[str, Any]) -> None:
    command = report["plan"]["server_command"]
    for kind, result in report["backends"].items():
        print(f"\n=== {kind}, kajitori {command} === (no-op floor: GET {NOOP_PATH})")
        _print_operations(result)
        _print_watch(result["watch"])
        startup = ", ".join(f"{k} {v}" for k, v in result["startup"].items())
        print(f"\nstartup and memory: {startup}")
        print(f"\n{'target':<72}{'figure':>10}{'met':>6}")
        for t in result["targets"]:
            print(f"{t['target']:<72}{t['value']:>10.3f}{'yes' if t['met'] else 'NO':>6}")


def _print_operations(result: dict[str, Any]) -> None:
    print(
        f"{'operation':<12}{'objects':>8}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv µs/req':>12}{'non-2xx':>9}{'other cpu':>11}"
    )
    for op, rows in result["operations"].items():
        for r in rows:
            failed = sum(n for code, n in r["statuses"].items() if not 200 <= int(code) < 300)
            print(
                f"{op:<12}{r.get('objects', ''):>8}{r['concurrency']:>6}{r['rps']:>10.0f}"
                f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['server_cpu_us_per_request']:>12.0f}"
                f"{failed + r['errors']:>9}{r['other_cpu_cores']:>11.2f}"
            )
    raw = result["raw_writes"]
    print(
        f"raw backend writes (no API server), c={raw['concurrency']}: "
        f"{raw['writes_per_second']:.0f}/s, p99 {raw['p99_ms']:.1f} ms"
    )
    print("ratios at c=64: " + ", ".join(f"{k} {v:.0%}" for k, v in result["ratios"].items()))
    rounds = result["ratio_rounds"]
    print(
        f"alternating c=64 rounds (settled after {rounds['settled_after_s']} s), req/s and"
        " server µs/req per round: "
        + "; ".join(
            ", ".join(
                f"{op} {c['rps']:.0f} ({c['server_cpu_us_per_request']:.0f})"
                for op, c in cells.items()
            )
            for cells in rounds["rounds"]
        )
    )
    print(
        "ratios from the rounds' medians (targets): "
        + ", ".join(f"{k} {v:.0%}" for k, v in result["interleaved_ratios"].items())
    )
    bare = result["bare_floor"]["median"]
    print(
        "floor (c), the HTTPS server and backend with nothing between, c=64 medians, req/s"
        " (server µs/req): "
        + ", ".join(
            f"{op} {c['rps']:.0f} ({c['server_cpu_us_per_request']:.0f})" for op, c in bare.items()
        )
    )
    print(
        "ceilings of the ratio targets (floor (c) against the no-op route): "
        + ", ".join(f"{k} {v:.0%}" for k, v in result["ceilings"].items())
    )


def _print_watch(rows: list[dict[str, Any]]) -> None:
    print(
        f"\nwatch, {rows[0]['watchers']} watchers: delay from ack (p50/p99/max; signed p50) and"
        " from the write being sent (p50/p99); spread after the first watcher got it (p99), ms"
    )
    print(
        f"{'conc':>6}{'writes/s':>10}{'p50':>8}{'p99':>8}{'max':>8}{'signed':>8}"
        f"{'sent p50':>10}{'sent p99':>10}{'spread p99':>12}{'missing':>9}{'other cpu':>11}"
    )
    for w in rows:
        print(
            f"{w['concurrency']:>6}{w['writes_per_second']:>10.0f}{w['p50_ms']:>8.2f}"
            f"{w['p99_ms']:>8.2f}{w['max_ms']:>8.1f}{w['signed_from_ack_p50_ms']:>8.2f}"
            f"{w['from_send_p50_ms']:>10.2f}{w['from_send_p99_ms']:>10.2f}"
            f"{w['fanout_spread_p99_ms']:>12.2f}{w['events_missing']:>9}"
            f"{w['other_cpu_cores']:>11.2f}"
        )


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
        "noop_endpoint": NOOP_CHOICE,
        "backends": {},
    }
    for kind in plan.backends:
        result = await bench_backend(kind, plan, workdir / kind)
        result["ratios"] = ratios(result)
        result["interleaved_ratios"] = interleaved_ratios(result)
        result["ceilings"] = ceilings(result)
        result["targets"] = targets(kind, result)
        report["backends"][kind] = result
    return report


def parse_plan(argv: list[str] | None) -> tuple[Plan, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a 30-45 s smoke run: 0.5 s cells, 500-object large list",
    )
    parser.add_argument(
        "--backends", default="sqlite,etcd", help="comma-separated: sqlite, etcd (default: both)"
    )
    parser.add_argument("--seconds", type=float, help="length of each cell (default 3, quick 0.5)")
    parser.add_argument(
        "--large-list", type=int, help="objects in the large list (default 5000, quick 500)"
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
        "--ratio-rounds",
        type=int,
        help="alternating no-op/create/get rounds at c=64 for the ratio targets (default 3,"
        " quick 1)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the server during c=64 create/get; raw stacks go to DIR",
    )
    parser.add_argument(
        "--server",
        choices=("up", "apiserver"),
        default="up",
        help="benchmark `kajitori up` (default) or `kajitori apiserver` (no in-process"
        " controllers)",
    )
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if unknown := set(backends) - {"sqlite", "etcd"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    plan = Plan(
        backends=backends,
        seconds=args.seconds or (0.5 if args.quick else 3.0),
        small_list=args.small_list,
        large_list=args.large_list or (500 if args.quick else 5000),
        watchers=args.watchers,
        quick=args.quick,
        profile_dir=args.profile,
        ratio_rounds=args.ratio_rounds or (1 if args.quick else 3),
        server_command=args.server,
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
