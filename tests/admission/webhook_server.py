"""A real TLS admission webhook for tests: an HTTPS server on 127.0.0.1, on a thread.

It listens on 127.0.0.1 unless given another address (and network namespace: a webhook
behind a Service listens in a namespace of the test's own, see ``routed_namespace``). Each path answers with its own function of the AdmissionReview request (the
``response`` fields besides ``uid``, which is copied); every review received
is kept, with its query string, for the test to read. The serving
certificate is issued by a CA of its own (``ca_bundle``) for 127.0.0.1 and
the names given (a Service's ``<name>.<namespace>.svc``).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import secrets
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kajitori.auth import pki

Object = dict[str, Any]
Answer = Callable[[Object], Object]


def allow(_request: Object) -> Object:
    return {"allowed": True}


def deny(message: str, code: int | None = None) -> Answer:
    def answer(_request: Object) -> Object:
        status: Object = {"message": message}
        if code is not None:
            status["code"] = code
        return {"allowed": False, "status": status}

    return answer


def json_patch(*operations: Object) -> Answer:
    encoded = base64.b64encode(json.dumps(list(operations)).encode()).decode()

    def answer(_request: Object) -> Object:
        return {"allowed": True, "patchType": "JSONPatch", "patch": encoded}

    return answer


def slow(seconds: float) -> Answer:
    def answer(_request: Object) -> Object:
        time.sleep(seconds)
        return {"allowed": True}

    return answer


@dataclass(frozen=True)
class Received:
    path: str
    query: str
    review: Object

    @property
    def request(self) -> Object:
        request: Object = self.review["request"]
        return request


class WebhookServer:
    """Answers AdmissionReviews by path; ``received`` lists what came in, oldest first."""

    def __init__(
        self, dns_names: Sequence[str] = (), *, host: str = "127.0.0.1", netns: str = ""
    ) -> None:
        ca = pki.generate_ca("webhook-test-ca")
        serving = pki.issue_serving_cert(
            ca, dns_names=["localhost", *dns_names], ip_addresses=[host]
        )
        self.host = host
        self.ca_bundle = base64.b64encode(ca.cert_pem).decode()
        self.answers: dict[str, Answer] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        # A listening socket belongs to the network namespace it was made in, and so do
        # the connections it accepts, whichever thread serves them.
        with in_network_namespace(netns):
            self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert.write_bytes(serving.cert_pem)
            key.write_bytes(serving.key_pem)
            context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"https://{self.host}:{self.port}{path}"

    def calls(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                review = json.loads(self.rfile.read(length))
                with server._lock:
                    server.received.append(Received(parts.path, parts.query, review))
                answer = server.answers.get(parts.path, allow)
                response = {"uid": review["request"]["uid"], **answer(review["request"])}
                body = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": response,
                    }
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the caller gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_network_namespace(path: str) -> Iterator[None]:
    """Run the block with this thread in the network namespace at ``path`` ("" = stay)."""
    if not path:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(path) as target:
        _setns(libc, target.fileno())
        try:
            yield
        finally:
            _setns(libc, home.fileno())


def _setns(libc: ctypes.CDLL, fd: int) -> None:
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _ip(*argv: str, check: bool = True) -> None:
    subprocess.run(["ip", *argv], check=check, capture_output=True, timeout=10)


@contextlib.contextmanager
def routed_namespace() -> Iterator[tuple[str, str]]:
    """A network namespace of the test's own, reachable from this one over a veth pair.

    Yields (its path, its address). An EndpointSlice may not hold a loopback address, and
    test traffic goes only to loopback or into namespaces the tests create, so a webhook
    behind a Service listens in here. Removing the namespace removes both veth ends.
    """
    suffix = secrets.token_hex(3)
    name, host_if = f"kajitori-wh-{suffix}", f"kjwh{suffix}"
    subnet = f"10.252.{secrets.randbelow(256)}"
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{subnet}.2/30", "dev", "eth0")
        _ip("netns", "exec", name, "ip", "link", "set", "eth0", "up")
        yield f"/run/netns/{name}", f"{subnet}.2"
    finally:
        _ip("netns", "del", name, check=False)
        _ip("link", "del", host_if, check=False)
