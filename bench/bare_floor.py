"""Floor (c) of ``bench.api``: kajitori's own HTTPS server and storage backend with no Kubernetes in between.

A process of its own (``python -m bench.bare_floor serve``, pinned to core 0
as the API server is) runs ``kajitori.server.http.HttpServer`` with the
cluster's serving certificate and client-certificate verification, and the
same storage backend the API server uses (``SqliteBackend`` with
``synchronous=FULL``, or ``EtcdBackend`` against the same etcd under another
prefix), behind an app that does only what no create or get can skip:

* ``GET /healthz``: a 2-byte answer and nothing else (the transport alone);
* ``POST``: decode the JSON body, give it a uid and a creationTimestamp,
  encode it, ``backend.create`` it (a durable write), set its
  resourceVersion, encode and answer it: no authentication, authorization,
  admission, defaulting, validation, managedFields or watch cache;
* ``GET <path>``: ``backend.get`` of the path's key (a linearizable read on
  etcd, as the API server's GET), its value answered as it is.

Its cells bound from above what the API server can reach on this machine: a
Kubernetes create cannot cost less CPU than this one, which is the work any
create must do, on the same transport and storage. ``bench.api`` measures it
in the same run as the server and prints both ratios against floor (a).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench import common, loadgen

_READY = "bare floor ready on port "
# The key prefix of the objects it writes (another prefix than the API server's).
_PREFIX = "/bare-floor"
OPERATIONS = ("noop", "create", "get")
GETS = 100


class BareServer(common.ServerProcess):
    """The bare app in a child process, measured as ``common.measure`` measures the API server."""

    def __init__(self, data_dir: Path, backend_args: list[str]) -> None:
        super().__init__(data_dir, command="bare-floor")
        self.backend_args = backend_args

    def start(self, timeout: float = 60.0) -> None:
        pki = self.data_dir / "pki"
        cmd = [sys.executable, "-m", "bench.bare_floor", "serve", "--pki", str(pki)]
        self.process = subprocess.Popen(
            [*cmd, *self.backend_args], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        if self.core is not None:
            common.pin(self.core, self.process.pid)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(_READY):
            self.stop()
            raise RuntimeError(f"the bare floor server did not start: {line!r}")
        self.port = int(line[len(_READY) :])


async def measure(
    data_dir: Path, backend_args: list[str], *, rounds: int, seconds: float
) -> dict[str, Any]:
    """Alternating c=64 rounds of the bare no-op, create and get; their medians."""
    server = BareServer(data_dir, backend_args)
    server.start()
    try:
        context = common.client_ssl_context(data_dir)
        path = "/api/v1/namespaces/bare/configmaps"
        await loadgen.run(
            host="127.0.0.1", port=server.port, ssl_context=context, connections=16,
            total_requests=GETS, make_request=_creates(path, "obj"),
        )  # fmt: skip
        factories = {
            "noop": lambda r: loadgen.constant("GET", "/healthz"),
            "create": lambda r: _creates(path, f"round{r}"),
            "get": lambda r: _gets(path, "obj"),
        }
        runs: list[dict[str, dict[str, float]]] = []
        for r in range(rounds):
            cells = {}
            for operation in OPERATIONS:
                row = await common.measure(
                    server, context, concurrency=64, seconds=seconds,
                    make_request=factories[operation](r), warmup=0 if operation == "create" else 10,
                )  # fmt: skip
                cells[operation] = {
                    key: row[key] for key in ("rps", "server_cpu_us_per_request", "errors")
                }
            runs.append(cells)
        median = {
            operation: {
                key: round(statistics.median(cells[operation][key] for cells in runs), 1)
                for key in ("rps", "server_cpu_us_per_request")
            }
            for operation in OPERATIONS
        }
        return {"rounds": runs, "median": median}
    finally:
        server.stop()


def _creates(path: str, prefix: str) -> loadgen.RequestFactory:
    from bench import api

    return lambda i: ("POST", path, api.JSON_HEADERS, api.configmap_body(f"{prefix}-{i}"))


def _gets(path: str, prefix: str) -> loadgen.RequestFactory:
    from bench import api

    requests = [("GET", f"{path}/{prefix}-{i}", api.JSON_HEADERS, b"") for i in range(GETS)]
    return lambda i: requests[i % GETS]


# -- the server side --------------------------------------------------------------


def _app(backend: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await _answer(send, 200, b"ok", b"text/plain")
        elif scope["method"] == "POST":
            await _create(backend, scope, receive, send)
        else:
            _, value = await backend.get(_PREFIX + scope["path"])
            if value is None:
                await _answer(send, 404, b"{}", b"application/json")
            else:
                await _answer(send, 200, value.value, b"application/json")

    return app


async def _create(backend: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    obj = orjson.loads(message["body"])
    meta = obj["metadata"]
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = f"{_PREFIX}{scope['path']}/{meta['name']}"
    revision = await backend.create(key, orjson.dumps(obj))
    meta["resourceVersion"] = str(revision)
    await _answer(send, 201, orjson.dumps(obj), b"application/json")


async def _answer(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve(args: argparse.Namespace) -> None:
    from kajitori.server.http import HttpServer, make_server_ssl_context

    backend: Any
    if args.etcd_endpoint:
        from kajitori.storage.etcd import EtcdBackend

        backend = EtcdBackend(args.etcd_endpoint, prefix=_PREFIX)
    else:
        from kajitori.storage.sqlite import SqliteBackend

        backend = SqliteBackend(args.sqlite)
    await backend.start()
    pki = Path(args.pki)
    context = make_server_ssl_context(pki / "apiserver.crt", pki / "apiserver.key", pki / "ca.crt")
    server = HttpServer(_app(backend), host="127.0.0.1", port=0, ssl_context=context)
    await server.start()
    print(f"{_READY}{server.port}", flush=True)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_floor")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="run the bare server (bench.api starts it)")
    serving.add_argument("--pki", required=True, help="a kajitori data directory's pki/")
    where = serving.add_mutually_exclusive_group(required=True)
    where.add_argument("--sqlite", help="the SQLite file to write")
    where.add_argument("--etcd-endpoint", help="the etcd to write, under /bare-floor")
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
