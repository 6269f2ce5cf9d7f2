"""Benchmark: the watch fan-out's CPU per delivered event, in one process, without HTTP.

Run ``python -m bench.watch_inprocess [--backend sqlite|etcd] [--concurrency 64]``
(about 20 s). A ``Store`` of ConfigMaps over a fresh backend, its watch cache,
and ``--watchers`` watches of one namespace, each drained by the watch
handler's own pump (``server/handlers/watch.py``) into a stand-in for the
HTTP connection that frames each chunk as the server does and keeps it.
Creates run at ``--concurrency`` for ``--writes`` writes, with the watchers
and without, alternately for ``--rounds`` rounds. It prints the process's CPU
per write in both cases, the fan-out's CPU per delivered event
((with − without) / watchers), and the delay from each create's return to
the pump's sending of its event (p50/p99).

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

from bench import common
from kajitori.registry.core import configmaps
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions, Store
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


async def _backend(kind: str, directory: Path) -> tuple[interface.Backend, Any]:
    if kind == "etcd":
        from kajitori.storage.etcd import EtcdBackend
        from kajitori.testing.etcd_server import EtcdServer

        etcd = EtcdServer(directory / "etcd")
        await asyncio.to_thread(etcd.start)
        return EtcdBackend(etcd.endpoint, prefix="/bench"), etcd
    from kajitori.storage.sqlite import SqliteBackend

    return SqliteBackend(directory / "kajitori.db"), None


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-watch-") as directory:
        backend, etcd = await _backend(args.backend, Path(directory))
        await backend.start()
        alone, watched, delays = [], [], []
        try:
            for round_ in range(args.rounds):
                for watchers in (0, args.watchers):
                    cpu, cell_delays = await _cell(
                        backend, watchers, args.concurrency, args.writes, f"ns-{round_}-{watchers}"
                    )
                    (watched if watchers else alone).append(cpu / args.writes * 1e6)
                    delays += cell_delays
        finally:
            await backend.close()
            if etcd is not None:
                await asyncio.to_thread(etcd.stop)
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
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
