"""One httpGet, tcpSocket or grpc probe from inside a pod's network namespace.

Run as a program (``python -S netprobe.py NETNS KIND HOST PORT TIMEOUT
[JSON]``), not imported: ``setns(2)`` moves the calling thread into the
pod's network namespace, which the kubelet's own process must never do
(Python 3.11 has no ``os.setns`` either, so it goes through ctypes, as
pinns.py does). It joins the namespace pinned at ``NETNS``, probes
``HOST:PORT`` within ``TIMEOUT`` seconds and prints what upstream's prober
reports (the failure message, or the body's start); exit status 0 is
success, 1 failure. ``JSON`` carries httpGet's ``path``, ``scheme`` and
``httpHeaders``, or grpc's ``service``.

The grpc kind needs ``grpcio`` from site-packages, so the runtime starts it
without ``-S``; it calls ``grpc.health.v1.Health/Check`` with the request
and response encoded by hand (two one-field protobuf messages), which
spares a dependency on ``grpcio-health-checking``.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
USER_AGENT = "kube-probe/1.37"
SERVING_STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def join_netns(path: str) -> None:
    # Rootless (decision 0033): the pod's user namespace owns its network namespace, so an
    # unprivileged prober joins it first (``user`` beside ``net`` in the sandbox directory).
    user = os.path.join(os.path.dirname(path), "user")
    if os.geteuid() != 0 and os.path.exists(user):
        _setns(user, CLONE_NEWUSER)
    _setns(path, CLONE_NEWNET)


def _setns(path: str, kind: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, kind) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _dial_error(host: str, port: int, exc: OSError) -> str:
    """Go's net.Dial wording, which upstream's messages carry."""
    if isinstance(exc, TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    reason = (exc.strerror or str(exc)).lower()
    return f"dial tcp {host}:{port}: connect: {reason}"


def tcp(host: str, port: int, timeout: float) -> tuple[bool, str]:
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return False, _dial_error(host, port, exc)
    return True, ""


def http(host: str, port: int, timeout: float, options: dict) -> tuple[bool, str]:
    import http.client
    import ssl

    path = options.get("path") or "/"
    scheme = str(options.get("scheme") or "HTTP").lower()
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in options.get("httpHeaders") or ():
        headers[header["name"]] = header["value"]
    url = f"{scheme}://{host}:{port}{path}"
    if scheme == "https":
        context = ssl._create_unverified_context()  # upstream skips verification too
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        with connection.getresponse() as response:
            body = response.read(10 * 1024).decode(errors="replace")
    except OSError as exc:
        if isinstance(exc, ConnectionRefusedError | TimeoutError) or exc.errno:
            return False, f'Get "{url}": {_dial_error(host, port, exc)}'
        return False, f'Get "{url}": {exc}'
    finally:
        connection.close()
    if 200 <= response.status < 400:
        return True, body
    return False, f"HTTP probe failed with statuscode: {response.status}"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def health_request(service: str) -> bytes:
    """``HealthCheckRequest{service}`` in protobuf wire format."""
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def health_status(response: bytes) -> int:
    """``HealthCheckResponse.status`` (field 1, a varint); 0 when absent."""
    index, status = 0, 0
    while index < len(response):
        tag = response[index]
        index += 1
        value, shift = 0, 0
        while True:
            byte = response[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if tag == 0x08:
            status = value
        elif tag & 7 == 2:
            index += value
    return status


def grpc_check(host: str, port: int, timeout: float, options: dict) -> tuple[bool, str]:
    import grpc  # type: ignore[import-untyped]

    target = f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            reply = check(health_request(options.get("service") or ""), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, f"timeout: health rpc did not complete within {timeout:g}s"
            if code == grpc.StatusCode.UNAVAILABLE:
                return False, f'timeout: failed to connect service "{target}" within {timeout:g}s'
            return False, f"error: health rpc probe failed: {code.name}: {exc.details()}"
    status = health_status(reply)
    if status == 1:
        return True, ""
    name = SERVING_STATUSES.get(status, str(status))
    return False, f'service unhealthy (responded with "{name}")'


def probe(kind: str, host: str, port: int, timeout: float, options: dict) -> tuple[bool, str]:
    if kind == "tcpSocket":
        return tcp(host, port, timeout)
    if kind == "httpGet":
        return http(host, port, timeout, options)
    if kind == "grpc":
        return grpc_check(host, port, timeout, options)
    return False, f"unknown probe kind {kind}"


def main(argv: list[str]) -> int:
    netns, kind, host, port, timeout = argv[:5]
    options = json.loads(argv[5]) if len(argv) > 5 else {}
    if netns != "-":
        join_netns(netns)
    ok, output = probe(kind, host, int(port), float(timeout), options)
    sys.stdout.write(output)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
