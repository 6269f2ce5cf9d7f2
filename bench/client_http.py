"""Micro-benchmark: the client's CPU per HTTPS request and per watch event, by transport.

Run ``python -m bench.client_http`` (about a minute). It starts ``kajitori
up`` pinned to core 0 (``bench.common.ServerProcess``) and, from this process
pinned to core 1, measures ``time.process_time`` (this process only: the
client's side) per operation for three HTTPS transports of the same calls:

* ``httpx``: ``rest.Client`` over ``httpx.AsyncClient`` (the path before
  decision 0050);
* ``aiohttp``: the same requests through an ``aiohttp.ClientSession``
  (bytes in and out, ``orjson`` as ``rest.Client``), when aiohttp is
  installed (it is no dependency of kajitori);
* ``http1``: ``rest.Client.from_kubeconfig``, our lean client (``client.http1``).

Operations: GET of a small ConfigMap, POST of a ~4 KB Pod, PUT of its
status, 8 GETs in flight at once, and reading watch events (ConfigMaps
created first, then replayed from the watch cache by a watch from the
resourceVersion before them, so only reading is timed). Rounds alternate
the transports; the report is the median µs of CPU per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import ServerProcess, pin
from kajitori.client import kubeconfig, rest

DRIVER_CORE = 1
NAMESPACE = "bench-http"
Op = Callable[[], Awaitable[Any]]


def _pod(name: str) -> dict[str, Any]:
    """A pod of about 4 KB of JSON, as a Deployment's pods with a few env vars and labels."""
    env = [{"name": f"VARIABLE_{i}", "value": "x" * 40} for i in range(40)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench-http"}},
        "spec": {
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "env": env}],
            "nodeName": "no-such-node",  # neither scheduled nor run: the server stays quiet
        },
    }


class Transport:
    """The operations of one transport: get, create, update_status, watch events."""

    name = ""

    async def get(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def update_status(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def watch(self, resource_version: str, count: int) -> int:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class RestTransport(Transport):
    def __init__(self, name: str, client: rest.Client) -> None:
        self.name = name
        self.client = client

    async def get(self, name: str) -> dict[str, Any]:
        return await self.client.get(rest.CONFIGMAPS, name, namespace=NAMESPACE)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.create(rest.PODS, body)

    async def update_status(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.update_status(rest.PODS, body)

    async def watch(self, resource_version: str, count: int) -> int:
        seen = 0
        events = self.client.watch(
            rest.CONFIGMAPS, namespace=NAMESPACE, resource_version=resource_version
        )
        async for _ in events:
            seen += 1
            if seen == count:
                break
        await events.aclose()  # type: ignore[attr-defined]
        return seen

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpTransport(Transport):
    name = "aiohttp"

    def __init__(self, config: kubeconfig.KubeConfig) -> None:
        import aiohttp  # only for this comparison

        self.base = config.server
        connector = aiohttp.TCPConnector(ssl=config.ssl_context(), limit=8, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base + path, data=data, headers=headers
        ) as response:
            content = await response.read()
            if response.status >= 300:
                raise RuntimeError(content)
            answer: dict[str, Any] = orjson.loads(content)
            return answer

    async def get(self, name: str) -> dict[str, Any]:
        return await self._call("GET", rest.CONFIGMAPS.path(namespace=NAMESPACE, name=name))

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", rest.PODS.path(namespace=NAMESPACE), body)

    async def update_status(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        path = rest.PODS.path(namespace=NAMESPACE, name=name, subresource="status")
        return await self._call("PUT", path, body)

    async def watch(self, resource_version: str, count: int) -> int:
        url = f"{self.base}{rest.CONFIGMAPS.path(namespace=NAMESPACE)}"
        params = {"watch": "true", "resourceVersion": resource_version}
        seen = 0
        async with self.session.get(url, params=params) as response:
            tail = b""
            async for chunk in response.content.iter_any():
                chunk, tail = tail + chunk, b""
                lines = chunk.split(b"\n")
                tail = lines.pop()
                for line in lines:
                    if line.strip():
                        orjson.loads(line)
                        seen += 1
                if seen >= count:
                    break
        return seen

    async def aclose(self) -> None:
        await self.session.close()


def _transports(config: kubeconfig.KubeConfig) -> list[Transport]:
    old = httpx.AsyncClient(
        base_url=config.server,
        verify=config.ssl_context(),
        timeout=rest.DEFAULT_TIMEOUT,
        limits=rest.HTTPS_LIMITS,
    )
    transports: list[Transport] = [RestTransport("httpx", rest.Client(old))]
    if importlib.util.find_spec("aiohttp") is not None:
        transports.append(AiohttpTransport(config))
    transports.append(RestTransport("http1", rest.Client.from_kubeconfig(config)))
    return transports


async def _cpu_per_op(op: Op, count: int) -> float:
    """µs of this process's CPU per call of ``op``, ``count`` calls one after another."""
    await op()  # warm: a connection, caches
    began = time.process_time()
    for _ in range(count):
        await op()
    return (time.process_time() - began) / count * 1e6


async def _round(
    transport: Transport, admin: rest.Client, count: int, tag: str
) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["get"] = await _cpu_per_op(lambda: transport.get("small"), count)
    serial = iter(range(10**9))
    figures["post_pod"] = await _cpu_per_op(
        lambda: transport.create(_pod(f"p-{tag}-{next(serial)}")), count
    )
    pod = await transport.create(_pod(f"status-{tag}"))

    async def put_status() -> None:
        nonlocal pod
        pod["status"]["message"] = f"m{next(serial)}"
        pod = await transport.update_status(pod)

    figures["put_status"] = await _cpu_per_op(put_status, count)

    async def eight() -> None:
        await asyncio.gather(*(transport.get("small") for _ in range(8)))

    figures["get_x8_per_req"] = await _cpu_per_op(eight, count // 8) / 8
    # Watch: the events exist first; only reading them is timed.
    events = min(count, 500)
    start = (await admin.list(rest.CONFIGMAPS, namespace=NAMESPACE, limit=1))["metadata"][
        "resourceVersion"
    ]
    for i in range(events):
        await admin.create(
            rest.CONFIGMAPS,
            {
                "metadata": {"name": f"w-{tag}-{i}", "namespace": NAMESPACE},
                "data": {"k": "v" * 200},
            },
        )
    began = time.process_time()
    seen = await transport.watch(start, events)
    figures["watch_event"] = (time.process_time() - began) / max(seen, 1) * 1e6
    figures["watch_events_seen"] = seen
    return figures


async def run(count: int, rounds: int) -> dict[str, Any]:
    pin(DRIVER_CORE)
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-http-") as tmp:
        server = ServerProcess(Path(tmp))
        server.start()
        try:
            config = kubeconfig.load_kubeconfig(Path(tmp) / "kubeconfig")
            admin = rest.Client.from_kubeconfig(config)
            await admin.create(rest.NAMESPACES, {"metadata": {"name": NAMESPACE}})
            await admin.create(
                rest.CONFIGMAPS,
                {"metadata": {"name": "small", "namespace": NAMESPACE}, "data": {"a": "b"}},
            )
            results: dict[str, list[dict[str, float]]] = {}
            for r in range(rounds):
                for transport in _transports(config):
                    try:
                        figures = await _round(transport, admin, count, f"{transport.name}-{r}")
                    finally:
                        await transport.aclose()
                    results.setdefault(transport.name, []).append(figures)
                    print(transport.name, r, json.dumps(figures), flush=True)
            await admin.aclose()
        finally:
            server.stop()
    return {
        name: {key: round(statistics.median(f[key] for f in runs), 1) for key in runs[0]}
        for name, runs in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=400, help="operations per measure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    summary = asyncio.run(run(args.count, args.rounds))
    text = json.dumps(summary, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
