"""Benchmark: the watch fan-out's CPU per delivered event, in one process, without HTTP.

Run ``python -m bench.watch_inprocess [--backend sqlite|etcd] [--concurrency 64]``
(about 20 s), or with ``--cluster`` for pods as the one-process cluster watches
them (below). A ``Store`` of ConfigMaps over a fresh backend, its watch cache,
and ``--watchers`` watches of one namespace, each drained by the watch
handler's own pump (``server/handlers/watch.py``) into a stand-in for the
HTTP connection that frames each chunk as the server does and keeps it.
Creates run at ``--concurrency`` for ``--writes`` writes, with the watchers
and without, alternately for ``--rounds`` rounds. It prints the process's CPU
per write in both cases, the fan-out's CPU per delivered event
((with − without) / watchers), and the delay from each create's return to
the pump's sending of its event (p50/p99).

``--cluster``: the cost of delivering a pod's changes, commit to decoded
object, without the writes. ``--writes`` pods are created, updated twice (as
their binding and status writes change them) and deleted at
``--concurrency``, and the storage batches are recorded. Each round then
hands those batches to a fresh watch cache (as storage would) with
``--watchers`` watchers of all namespaces, each drained by the handler's pump
with bookmarks on (as informers ask) into a reader that decodes every line
(as ``client.rest`` does); ``--selector-watchers`` of them select with
``spec.nodeName!=`` (the kubelets' selector). It prints the CPU per delivered
event (every event reaches every watcher), and the readers' decoding alone.

CPU is ``time.process_time`` of this process (all its threads), so unlike
``bench.watch_fanout`` (the same watch cells over HTTPS against ``kajitori
up``) it does not need a quiet machine to compare two source trees: put one
first on ``PYTHONPATH`` and run both, alternately. TLS, HTTP parsing and the
sockets are not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import orjson

from bench import common
from kajitori.machinery import fields
from kajitori.registry.core import configmaps, pods
from kajitori.registry.generic import cacher
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store
from kajitori.server.handlers import watch as watch_handler
from kajitori.storage import interface

_CTX = RequestContext()


class _Connection:
    """Where a watcher's chunks go: framed as the HTTP server frames them, then kept."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, int]] = []  # (when sent, events in it)

    async def send(self, message: dict[str, Any]) -> None:
        body = message.get("body", b"")
        if body:
            chunk = b"%x\r\n%b\r\n" % (len(body), body)
            self.chunks.append((time.perf_counter(), chunk.count(b"\n") - 2))

    def received(self) -> int:
        return sum(count for _, count in self.chunks)


async def _cell(
    backend: interface.Backend, watchers: int, concurrency: int, writes: int, namespace: str
) -> tuple[float, list[float]]:
    """CPU seconds for ``writes`` creates with ``watchers`` watching, and each delivery's delay."""
    store = Store(configmaps.RESOURCE, backend)
    await store.running_watch_cache()
    start = await backend.current_revision()
    connections = [_Connection() for _ in range(watchers)]
    pumps = []
    for connection in connections:
        scope = types.SimpleNamespace(
            store=store, send=connection.send, media=types.SimpleNamespace(transform="")
        )
        events = store.watch_batches(namespace, ListOptions(resource_version=str(start)))
        pumps.append(asyncio.ensure_future(watch_handler._pump(scope, events, False)))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    acked: dict[int, float] = {}
    sequence = iter(range(writes))

    async def writer() -> None:
        for i in sequence:
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"w-{i}", "labels": {"app": "bench"}},
                "data": {"payload": "x" * 900},
            }
            created = await store.create(namespace, obj, _CTX)
            acked[int(created["metadata"]["resourceVersion"])] = time.perf_counter()

    cpu = time.process_time()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c.received() < writes for c in connections):
        await asyncio.sleep(0.001)
    cpu = time.process_time() - cpu
    for pump in pumps:
        pump.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    await store.stop_watch_cache()
    # A watcher gets the events in revision order: its n-th is the n-th revision.
    revisions = sorted(acked)
    delays = []
    for connection in connections:
        taken = 0
        for at, count in connection.chunks:
            delays += [max(at - acked[r], 0.0) for r in revisions[taken : taken + count]]
            taken += count
    return cpu, delays


class _Reader:
    """An in-process informer's reader: every line of every chunk decoded, its CPU kept apart."""

    def __init__(self) -> None:
        self.events = 0
        self.decode_cpu = 0.0

    async def send(self, message: dict[str, Any]) -> None:
        body = message.get("body", b"")
        if body:
            cpu = time.process_time()
            for line in body.split(b"\n"):
                if line and orjson.loads(line)["type"] != "BOOKMARK":
                    self.events += 1
            self.decode_cpu += time.process_time() - cpu


async def _record(backend: interface.Backend, pods_: int, concurrency: int) -> list[list[Any]]:
    """The storage batches of ``pods_`` pods' lives (create, two updates, delete)."""
    store = Store(pods.RESOURCE, backend, watch_cache=None)
    start = await backend.current_revision()
    batches: list[list[Any]] = []
    stop = backend.watch_into(  # type: ignore[attr-defined]
        store.prefix, after_revision=start, deliver=batches.append, end=lambda _: None
    )
    sequence = iter(range(pods_))

    async def writer() -> None:
        for i in sequence:
            obj = await store.create("cluster", _pod(i), _CTX)
            for step in range(2):
                obj["metadata"]["labels"]["step"] = str(step)
                obj, _ = await store.update("cluster", f"p-{i}", obj, _CTX)
            await store.delete("cluster", f"p-{i}", DeleteOptions(grace_period_seconds=0), _CTX)

    await asyncio.gather(*(writer() for _ in range(concurrency)))
    await asyncio.sleep(0.1)
    stop()
    return batches


async def _replay(
    backend: interface.Backend, batches: list[list[Any]], watchers: int, selecting: int
) -> tuple[float, float, int]:
    """CPU seconds to deliver ``batches`` to the watchers, their decoding's, events delivered."""
    store = Store(pods.RESOURCE, backend)
    cache = cacher.WatchCache(store)
    # Storage is not watched: the recorded batches are handed over as its callback would.
    cache._oldest = batches[0][0].revision - 1
    cache._loop = asyncio.get_running_loop()
    cache._stop_watch = lambda: None
    cache._started = cache._loop.create_future()
    cache._started.set_result(None)
    store._watch_cache = cache
    readers = [_Reader() for _ in range(watchers)]
    pumps = []
    for i, reader in enumerate(readers):
        scope = types.SimpleNamespace(
            store=store, send=reader.send, media=types.SimpleNamespace(transform="")
        )
        opts = ListOptions(resource_version=str(cache._oldest))
        if i < selecting:
            opts.field_selector = fields.parse_field_selector("spec.nodeName!=")
            opts.field_names = ("spec.nodeName",)
        # As the handler asks when bookmarks are wanted; an older tree has no ``idle``.
        try:
            events = store.watch_batches(
                "", opts, send_initial_events=False, idle=watch_handler.BOOKMARK_INTERVAL
            )
        except TypeError:
            events = store.watch_batches("", opts, send_initial_events=False)
        pumps.append(asyncio.ensure_future(watch_handler._pump(scope, events, True)))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    total = sum(len(batch) for batch in batches) * watchers
    cpu = time.process_time()
    for batch in batches:
        cache._append(batch)
        # The loop turns between two commits: the pumps and readers run.
        for _ in range(3):
            await asyncio.sleep(0)
    deadline = time.monotonic() + 60
    while sum(reader.events for reader in readers) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{[r.events for r in readers]} of {total // watchers} delivered")
        await asyncio.sleep(0.001)
    cpu = time.process_time() - cpu
    for pump in pumps:
        pump.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    cache._shut_down()
    return cpu, sum(reader.decode_cpu for reader in readers), total


def _pod(i: int) -> dict[str, Any]:
    """A Deployment's pod as the cluster's are (its node named: every selector matches)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"p-{i}",
            "labels": {"app": "bench", "pod-template-hash": "5d8f7c9b4"},
            "annotations": {"bench/i": str(i)},
        },
        "spec": {
            "nodeName": f"node-{i % 100}",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.local/app:1",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": f"E{k}", "value": "v" * 20} for k in range(5)],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


async def run_cluster(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-watch-") as directory:
        async with common.storage_backend(args.backend, Path(directory)) as backend:
            await backend.start()
            per_event, decoding = [], []
            batches = await _record(backend, args.writes, args.concurrency)
            for _ in range(args.rounds):
                cpu, decode_cpu, total = await _replay(
                    backend, batches, args.watchers, args.selector_watchers
                )
                per_event.append(cpu / total * 1e6)
                decoding.append(decode_cpu / total * 1e6)
    events = sum(len(batch) for batch in batches)
    print(
        f"{args.backend} pods, {args.writes} pods' lives at c={args.concurrency}"
        f" ({events} events in {len(batches)} batches), {args.watchers} watchers"
        f" ({args.selector_watchers} with selectors), {args.rounds} rounds:"
        f" {statistics.median(per_event):.2f} µs of CPU per delivered event"
        f" {[round(f, 2) for f in per_event]}, of which the readers' decoding"
        f" {statistics.median(decoding):.2f}"
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-watch-") as directory:
        async with common.storage_backend(args.backend, Path(directory)) as backend:
            await backend.start()
            alone: list[float] = []
            watched: list[float] = []
            delays: list[float] = []
            for round_ in range(args.rounds):
                for watchers in (0, args.watchers):
                    cpu, cell_delays = await _cell(
                        backend, watchers, args.concurrency, args.writes, f"ns-{round_}-{watchers}"
                    )
                    (watched if watchers else alone).append(cpu / args.writes * 1e6)
                    delays += cell_delays
    base = statistics.median(alone)
    fan_out = [(cpu - base) / args.watchers for cpu in watched]
    print(
        f"{args.backend} c={args.concurrency}, {args.watchers} watchers, {args.rounds} rounds:"
        f" create alone {base:.0f} µs of CPU, with watchers {statistics.median(watched):.0f} µs;"
        f" fan-out {statistics.median(fan_out):.2f} µs per delivered event"
        f" {[round(f, 2) for f in fan_out]}; delay from create to send"
        f" p50 {common.percentile(delays, 0.5) * 1000:.2f} ms,"
        f" p99 {common.percentile(delays, 0.99) * 1000:.2f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "etcd"), default="sqlite")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--writes", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cluster", action="store_true", help="pods' lives, replayed (above)")
    parser.add_argument("--selector-watchers", type=int, default=1, help="with --cluster")
    args = parser.parse_args(argv)
    asyncio.run(run_cluster(args) if args.cluster else run(args))


if __name__ == "__main__":
    main()
