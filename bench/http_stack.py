"""Benchmark: kajitori's HttpServer against uvicorn, and ECDSA against RSA handshakes.

Run ``python -m bench.http_stack`` (add ``--seconds`` to change each cell's
length). It serves a trivial ASGI JSON endpoint from a server subprocess
pinned to one core, drives it over TLS keep-alive from this process pinned to
the other, at concurrency 1, 16 and 64, and prints a table and then JSON.
Server CPU per request is read from /proc, so the table also shows that the
load generator costs less than the server it measures. A second table
measures full TLS handshakes (one new connection per request) with an ECDSA
P-256 and an RSA 2048 serving certificate, which is how the PKI's key type
was chosen.

uvicorn is not a kajitori dependency: install it (``pip install uvicorn``) to
get its column; without it only our server is measured. The decision this
feeds is docs/decisions/0001-http-stack.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import oid

from bench import loadgen
from kajitori.auth import pki

BODY = b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
CONCURRENCY = (1, 16, 64)


async def noop_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The endpoint under test: answers every request with the same small JSON body."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


# -- server side (runs in the subprocess) -----------------------------------


def serve(kind: str, port: int, certs: Path, key_type: str) -> None:
    _pin(0)
    cert, key, ca = certs / f"{key_type}.crt", certs / f"{key_type}.key", certs / "ca.crt"
    if kind == "uvicorn":
        import uvicorn

        config = uvicorn.Config(
            noop_app,
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_ca_certs=str(ca),
            ssl_cert_reqs=ssl.CERT_OPTIONAL,
            http="httptools",
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
        )
        uvicorn.Server(config).run()
        return
    asyncio.run(_serve_ours(port, cert, key, ca))


async def _serve_ours(port: int, cert: Path, key: Path, ca: Path) -> None:
    from kajitori.server import http

    context = http.make_server_ssl_context(cert, key, ca)
    server = http.HttpServer(noop_app, host="127.0.0.1", port=port, ssl_context=context)
    await server.serve_forever()


# -- driver side -------------------------------------------------------------


class ServerProcess:
    """A benchmark server subprocess and the CPU time it has used."""

    def __init__(self, kind: str, certs: Path, key_type: str = "ec") -> None:
        self.kind = kind
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.http_stack", "--serve", kind),
                *("--port", str(self.port), "--certs", str(certs), "--key-type", key_type),
            ],
            cwd=Path(__file__).resolve().parents[1],  # so that -m bench.http_stack resolves
        )
        _wait_for_port(self.port, self.process)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def measure(
    server: ServerProcess,
    context: ssl.SSLContext,
    *,
    concurrency: int,
    seconds: float,
    reconnect: bool = False,
) -> dict[str, Any]:
    # A short warm-up so connection setup and first-call costs stay out of the numbers.
    await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=concurrency,
        total_requests=concurrency * 20, reconnect=reconnect,
    )  # fmt: skip
    cpu_before = server.cpu_seconds()
    result = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=concurrency,
        duration=seconds, reconnect=reconnect,
    )  # fmt: skip
    server_cpu = server.cpu_seconds() - cpu_before
    row = {"server": server.kind, "concurrency": concurrency, **result.summary()}
    row["server_cpu_us_per_request"] = round(server_cpu / max(result.requests, 1) * 1e6, 1)
    return row


async def run_benchmarks(seconds: float, certs: Path) -> dict[str, list[dict[str, Any]]]:
    _pin(1)
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    kinds = ["kajitori"] + (["uvicorn"] if _has_uvicorn() else [])
    keep_alive: list[dict[str, Any]] = []
    for kind in kinds:
        server = ServerProcess(kind, certs)
        try:
            for concurrency in CONCURRENCY:
                keep_alive.append(
                    await measure(server, context, concurrency=concurrency, seconds=seconds)
                )
        finally:
            server.stop()
    handshakes: list[dict[str, Any]] = []
    for key_type in ("ec", "rsa"):
        server = ServerProcess("kajitori", certs, key_type)
        try:
            row = await measure(server, context, concurrency=4, seconds=seconds, reconnect=True)
            handshakes.append({"key": key_type, **row})
        finally:
            server.stop()
    return {"keep_alive": keep_alive, "handshakes": handshakes}


def write_certs(directory: Path) -> None:
    """The cluster CA, an ECDSA serving cert from pki, and an RSA 2048 one for comparison."""
    ca = pki.generate_ca()
    ec_pair = pki.issue_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    (directory / "ec.crt").write_bytes(ec_pair.cert_pem)
    (directory / "ec.key").write_bytes(ec_pair.key_pem)
    rsa_cert, rsa_key = _rsa_serving_cert(ca)
    (directory / "rsa.crt").write_bytes(rsa_cert)
    (directory / "rsa.key").write_bytes(rsa_key)


def _rsa_serving_cert(ca: pki.CertAndKey) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, "rsa")]))
        .issuer_name(ca.certificate().subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def print_tables(results: dict[str, list[dict[str, Any]]]) -> None:
    print("TLS keep-alive, trivial JSON endpoint")
    print(
        f"{'server':<10}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'srv µs/req':>12}{'cli µs/req':>12}"
    )
    for r in results["keep_alive"]:
        print(
            f"{r['server']:<10}{r['concurrency']:>6}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['server_cpu_us_per_request']:>12.0f}"
            f"{r['client_cpu_us_per_request']:>12.0f}"
        )
    print("\nFull TLS handshake per request (kajitori, concurrency 4)")
    print(f"{'key':<10}{'conn/s':>10}{'srv µs/conn':>13}{'cli µs/conn':>13}")
    for r in results["handshakes"]:
        print(
            f"{r['key']:<10}{r['rps']:>10.0f}{r['server_cpu_us_per_request']:>13.0f}"
            f"{r['client_cpu_us_per_request']:>13.0f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--serve", choices=["kajitori", "uvicorn"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key-type", default="ec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.certs, args.key_type)
        return
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-") as directory:
        certs = Path(directory)
        write_certs(certs)
        results = asyncio.run(run_benchmarks(args.seconds, certs))
    print_tables(results)
    print(json.dumps(results, indent=1))


def _has_uvicorn() -> bool:
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        print("uvicorn is not installed: measuring kajitori only", file=sys.stderr)
        return False
    return True


def _pin(cpu: int) -> None:
    """Keep server and load generator on different cores so neither steals the other's time."""
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > cpu:  # type: ignore[operator]
        os.sched_setaffinity(0, {cpu})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"benchmark server did not listen on {port}")


if __name__ == "__main__":
    main()
