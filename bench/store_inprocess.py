"""Benchmark: CPU per ConfigMap create and GET at the ``Store``, in one process, without HTTP.

Run ``python -m bench.store_inprocess [--backend sqlite|etcd]`` (about 20 s;
etcd is started by ``kajitori.testing.etcd_server``). A ``Store`` of
ConfigMaps over a fresh backend, with its watch cache running as in the
server, takes ``--concurrency`` concurrent creates of ~1 KB ConfigMaps (as
``bench.api`` sends) and then GETs of 100 of them in turn
(``Store.get_json``, the GET handler's read), alternately for ``--rounds``
rounds. ``--no-watch-cache`` leaves the cache off, to size what the storage
watch costs per create.

It prints the CPU per create and per GET (median and minimum over the
rounds), split into this process's main thread (the event loop) and its
other threads (etcd: gRPC's I/O threads and the watch stream's reader;
SQLite: the writer). The CPU is this process's own (``time.process_time``,
``time.thread_time``), so, as with ``bench.watch_inprocess``, two source
trees can be compared on a shared machine: put one first on
``PYTHONPATH`` and run both alternately. ``--core N`` pins this process to
one core, as ``bench.api`` pins the server, once etcd has started (etcd is
not pinned with it). TLS, HTTP and the request handler are not in these
figures; ``bench.api`` has them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common
from kajitori.registry.core import configmaps
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import Store

_CTX = RequestContext()
_GET_NAMESPACE = "bench-get"
_GET_OBJECTS = 100


def _configmap(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": {"payload": "x" * 900},
    }


def _cpu() -> tuple[float, float]:
    """(whole process, this thread: the event loop's) CPU seconds so far."""
    return time.process_time(), time.thread_time()


async def _cell(store: Store, operation: str, count: int, concurrency: int, round_: int) -> Any:
    """(main, other) µs of CPU per operation for ``count`` operations at ``concurrency``."""
    sequence = iter(range(count))

    async def worker() -> None:
        for i in sequence:
            if operation == "create":
                await store.create(f"bench-{round_}", _configmap(f"c-{i}"), _CTX)
            else:
                await store.get_json(_GET_NAMESPACE, f"obj-{i % _GET_OBJECTS}")

    total, main = _cpu()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    # Let the watch stream deliver the last creates' events: their cost is the create's.
    await asyncio.sleep(0.05)
    total_after, main_after = _cpu()
    main_us = (main_after - main) / count * 1e6
    return main_us, max((total_after - total) / count * 1e6 - main_us, 0.0)


async def run(args: argparse.Namespace) -> None:
    rows: dict[str, list[tuple[float, float]]] = {"create": [], "get": []}
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-store-") as directory:
        async with common.storage_backend(args.backend, Path(directory)) as backend:
            if args.core is not None:
                common.pin(args.core)
            await backend.start()
            store = Store(configmaps.RESOURCE, backend)
            try:
                if not args.no_watch_cache:
                    await store.running_watch_cache()
                for i in range(_GET_OBJECTS):
                    await store.create(_GET_NAMESPACE, _configmap(f"obj-{i}"), _CTX)
                for round_ in range(args.rounds):
                    rows["create"].append(
                        await _cell(store, "create", args.writes, args.concurrency, round_)
                    )
                    rows["get"].append(
                        await _cell(store, "get", args.writes * 4, args.concurrency, round_)
                    )
            finally:
                await store.stop_watch_cache()
    cache = "off" if args.no_watch_cache else "on"
    print(f"{args.backend}, c={args.concurrency}, watch cache {cache}, {args.rounds} rounds:")
    for operation, cells in rows.items():
        totals = [main + other for main, other in cells]
        print(
            f"  {operation:6s} {statistics.median(totals):6.1f} µs of CPU"
            f" (min {min(totals):.1f}; main thread {statistics.median(m for m, _ in cells):.1f},"
            f" other threads {statistics.median(o for _, o in cells):.1f})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "etcd"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--writes", type=int, default=2000, help="creates per round (GETs: 4x)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-watch-cache", action="store_true", help="creates without the cache")
    parser.add_argument("--core", type=int, help="pin this process to this core (not etcd)")
    args = parser.parse_args(argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
