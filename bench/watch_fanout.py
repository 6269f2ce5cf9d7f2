"""Benchmark: watch delivery latency and the server CPU each delivered event costs.

Run ``python -m bench.watch_fanout`` (about 1 minute per backend and round).
It runs ``bench.api``'s watch cells alone (100 watchers of one namespace
while ConfigMaps are created at concurrency 1, 16 and 64, latency from each
create's acknowledgement to each watcher's read) plus one create cell at
c=64 without watchers, each on a fresh ``kajitori up`` (pinned to core 0,
driver on core 1, as ``bench.api``), and prints per cell: writes/s, p50/p99
delivery, server CPU per write, and the fan-out's CPU per delivered event:
(CPU per write with watchers − CPU per write without) / watchers.

``--trees A,B`` alternates servers run from other source trees (each a
directory holding the ``kajitori`` package, put first on ``PYTHONPATH``;
``.`` is the installed one) round by round, for A/B comparisons on a shared
machine where only back-to-back medians mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import api, common
from kajitori.testing.etcd_server import EtcdServer


async def one_server(
    kind: str,
    tree: str,
    plan: api.Plan,
    workdir: Path,
    concurrency: list[int],
    profile: Path | None = None,
) -> dict[str, Any]:
    """Start a server from ``tree`` on ``kind`` and run the cells; one row per cell."""
    workdir.mkdir(parents=True, exist_ok=True)
    etcd = EtcdServer(workdir / "etcd") if kind == "etcd" else None
    if etcd is not None:
        await asyncio.to_thread(etcd.start)
    saved = os.environ.get("PYTHONPATH")
    if tree != ".":
        os.environ["PYTHONPATH"] = str(Path(tree).resolve())
    try:
        extra = ["--storage", "etcd", "--etcd-endpoint", etcd.endpoint] if etcd else []
        server = common.ServerProcess(workdir / "server", extra_args=extra)
        server.start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        await asyncio.sleep(1.0)
        context = common.client_ssl_context(workdir / "server")
        profiler = common.Profiler(profile, kind)
        await api.create_namespace(server, context, "bench-create")
        base = await common.measure(
            server, context, concurrency=64, seconds=plan.seconds,
            make_request=api.creates("bench-create", "c"), warmup=0,
        )  # fmt: skip
        rows: dict[str, Any] = {"create_c64_cpu_us": base["server_cpu_us_per_request"]}
        for c in concurrency:
            row = await api.watch_cell(server, context, plan, c, profiler=profiler)
            cpu_us = row["server_cpu_share"] / max(row["writes_per_second"], 1e-9) * 1e6
            row["cpu_us_per_write"] = round(cpu_us, 1)
            rows[f"c{c}"] = row
        return rows
    finally:
        server.stop()
        if etcd is not None:
            await asyncio.to_thread(etcd.stop)


def _print(results: dict[tuple[str, str], list[dict[str, Any]]], concurrency: list[int]) -> None:
    print(
        "backend tree   c  rounds | writes/s | p50 ms (each) | p99 ms (each) | cpu µs/write"
        " | fan-out µs/event (vs create c=64) | other cpu"
    )
    for (kind, tree), runs in results.items():
        base = statistics.median(r["create_c64_cpu_us"] for r in runs)
        for c in concurrency:
            cells = [r[f"c{c}"] for r in runs]
            wps = statistics.median(x["writes_per_second"] for x in cells)
            p50 = [x["p50_ms"] for x in cells]
            p99 = [x["p99_ms"] for x in cells]
            cpu = statistics.median(x["cpu_us_per_write"] for x in cells)
            watchers = cells[0]["watchers"]
            fan = (cpu - base) / watchers if watchers else 0.0
            other = [x["other_cpu_cores"] for x in cells]
            missing = sum(x["events_missing"] for x in cells)
            print(
                f"{kind:6} {tree[-12:]:>6} {c:3} {len(runs):3}    | {wps:7.0f}  |"
                f" {statistics.median(p50):6.1f} {p50} | {statistics.median(p99):6.1f} {p99} |"
                f" {cpu:7.0f} | {fan:6.1f} (create {base:.0f}) | {other}"
                + (f" MISSING {missing}" if missing else "")
            )


async def run(args: argparse.Namespace) -> None:
    concurrency = [int(c) for c in args.concurrency.split(",")]
    plan = api.Plan(
        backends=(), seconds=args.seconds, small_list=0, large_list=0,
        watchers=args.watchers, quick=False,
    )  # fmt: skip
    api.bytecode_as_installed()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-watch-") as directory:
        for round_ in range(args.rounds):
            for kind in args.backends.split(","):
                for tree in args.trees.split(","):
                    workdir = Path(directory) / f"{round_}-{kind}-{abs(hash(tree))}"
                    rows = await one_server(kind, tree, plan, workdir, concurrency, args.profile)
                    results.setdefault((kind, tree), []).append(rows)
                    summary = {c: rows[f"c{c}"]["p99_ms"] for c in concurrency}
                    print(f"[watch_fanout] round {round_} {kind} {tree}: p99 {summary}",
                          file=sys.stderr, flush=True)  # fmt: skip
    _print(results, concurrency)
    if args.output:
        rows = [{"backend": k, "tree": t, "runs": runs} for (k, t), runs in results.items()]
        args.output.write_text(json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", default="sqlite,etcd")
    parser.add_argument("--trees", default=".", help="comma-separated source dirs (. = installed)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--output", type=Path, help="write every row as JSON here")
    parser.add_argument("--profile", type=Path, help="py-spy the c=64 watch cell into DIR")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
