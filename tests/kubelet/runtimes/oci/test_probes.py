"""Probes on real containers: exec, httpGet and tcpSocket through a kubelet over the oci runtime.

The netprobe helper is also tested on its own against servers on the host's
loopback (no namespace to join): tcp, http and the grpc health protocol.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from tests.kubelet.runtimes.oci import helpers, test_oci_network
from tests.kubelet.runtimes.oci.test_oci_network import node  # noqa: F401 (a fixture)
from tests.kubelet.test_kubelet import eventually

from kajitori.client import rest
from kajitori.kubelet import kubelet
from kajitori.kubelet.runtimes.oci import netprobe, runtime

Object = dict[str, Any]
NODE = helpers.NODE
needs_runc = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"


# ----- the helper, on the host's loopback ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 200 if self.path == "/ok" else 503
            self.send_response(code)
            self.end_headers()
            self.wfile.write(self.headers.get("X-Probe", "").encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_netprobe_tcp_and_http(web: int) -> None:
    assert netprobe.probe("tcpSocket", "127.0.0.1", web, 1.0, {}) == (True, "")
    closed = free_port()
    ok, message = netprobe.probe("tcpSocket", "127.0.0.1", closed, 1.0, {})
    assert not ok and message == f"dial tcp 127.0.0.1:{closed}: connect: connection refused"
    headers = {"path": "/ok", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}
    assert netprobe.probe("httpGet", "127.0.0.1", web, 1.0, headers) == (True, "yes")
    ok, message = netprobe.probe("httpGet", "127.0.0.1", web, 1.0, {"path": "/bad"})
    assert (ok, message) == (False, "HTTP probe failed with statuscode: 503")


def test_netprobe_grpc_health_protocol() -> None:
    """A grpc server answering grpc.health.v1.Health/Check per service, as a real one would."""
    statuses = {"": 1, "down": 2}

    def check(request: bytes, context: grpc.ServicerContext) -> bytes:
        service = request[2:].decode() if request else ""
        return b"\x08" + bytes([statuses.get(service, 3)])

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        assert netprobe.probe("grpc", "127.0.0.1", port, 2.0, {}) == (True, "")
        down = netprobe.probe("grpc", "127.0.0.1", port, 2.0, {"service": "down"})
        assert down == (False, 'service unhealthy (responded with "NOT_SERVING")')
    finally:
        server.stop(None)
    ok, message = netprobe.probe("grpc", "127.0.0.1", free_port(), 0.5, {})
    assert not ok and message.startswith("timeout: failed to connect service")


# ----- real containers through the kubelet ----------------------------------------------------


def pod(name: str, *containers: Object, restart_policy: str = "Always") -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 2,
            "automountServiceAccountToken": False,  # no token volume: probes only
            "containers": list(containers),
        },
    }


def exec_probe(script: str, **fields: Any) -> Object:
    return {"exec": {"command": ["sh", "-c", script]}, "periodSeconds": 1, **fields}


async def pod_where(admin: rest.Client, name: str, check: Any, timeout: float = 15.0) -> Object:
    async def found() -> Object | None:
        current = await admin.get(rest.PODS, name, namespace="default")
        return current if check(current.get("status") or {}) else None

    return await eventually(found, timeout=timeout)


def condition(status: Object, kind: str) -> str:
    return next((c["status"] for c in status.get("conditions") or () if c["type"] == kind), "")


def container(status: Object, name: str = "c") -> Object:
    return next(c for c in status.get("containerStatuses") or () if c["name"] == name)


async def event_messages(admin: rest.Client, name: str) -> list[tuple[str, str]]:
    found = await admin.list(rest.EVENTS, namespace="default")
    return [
        (e["reason"], e["message"])
        for e in found["items"]
        if e["involvedObject"].get("name") == name
    ]


@needs_runc
async def test_exec_readiness_flips_ready_when_a_file_appears(
    admin: rest.Client, host: kubelet.KubeletHost, oci: helpers.Harness
) -> None:
    probe = exec_probe("test -f /tmp/ready")
    created = await admin.create(
        rest.PODS,
        pod("readiness", helpers.sh("c", LOOP, readinessProbe=probe)),
        namespace="default",
    )
    uid = created["metadata"]["uid"]
    status = (await pod_where(admin, "readiness", lambda s: s.get("phase") == "Running"))["status"]
    assert container(status)["ready"] is False and container(status)["started"] is True
    assert condition(status, "Ready") == "False"
    assert condition(status, "ContainersReady") == "False"
    code, _, _ = await oci.runtime.exec(uid, "c", ["touch", "/tmp/ready"])
    assert code == 0
    status = (await pod_where(admin, "readiness", lambda s: condition(s, "Ready") == "True"))[
        "status"
    ]
    assert container(status)["ready"] is True
    assert condition(status, "ContainersReady") == "True"


@needs_runc
async def test_failing_liveness_restarts_the_container_with_upstreams_events(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    probe = exec_probe("cat /tmp/alive", failureThreshold=1)
    await admin.create(
        rest.PODS, pod("liveness", helpers.sh("c", LOOP, livenessProbe=probe)), namespace="default"
    )
    status = (
        await pod_where(
            admin,
            "liveness",
            lambda s: container(s)["restartCount"] == 1 if s.get("containerStatuses") else False,
        )
    )["status"]
    assert "terminated" in container(status)["lastState"]
    messages = await event_messages(admin, "liveness")
    assert (
        "Unhealthy",
        "Liveness probe failed: cat: can't open '/tmp/alive': No such file or directory\n",
    ) in messages
    assert ("Killing", "Container c failed liveness probe, will be restarted") in messages


@needs_runc
async def test_a_startup_probe_holds_liveness_back_until_it_succeeds(
    admin: rest.Client, host: kubelet.KubeletHost, oci: helpers.Harness
) -> None:
    startup = exec_probe("test -f /tmp/started", failureThreshold=30)
    liveness = exec_probe("false", failureThreshold=1)
    created = await admin.create(
        rest.PODS,
        pod("startup", helpers.sh("c", LOOP, startupProbe=startup, livenessProbe=liveness)),
        namespace="default",
    )
    uid = created["metadata"]["uid"]

    async def startup_failures() -> Object | None:
        # Identical events are one Event whose count grows (the recorder's correlation).
        found = await admin.list(rest.EVENTS, namespace="default")
        mine = [e for e in found["items"] if e["involvedObject"].get("name") == "startup"]
        failed = [e for e in mine if e["message"].startswith("Startup probe failed")]
        messages = [(e["reason"], e["message"]) for e in mine]
        return {"messages": messages} if failed and failed[0].get("count", 1) >= 2 else None

    messages = (await eventually(startup_failures, timeout=15.0))["messages"]
    assert not [m for m in messages if m[1].startswith("Liveness")]
    status = (await admin.get(rest.PODS, "startup", namespace="default"))["status"]
    assert container(status)["started"] is False and container(status)["restartCount"] == 0
    assert condition(status, "Ready") == "False"
    await oci.runtime.exec(uid, "c", ["touch", "/tmp/started"])
    await pod_where(admin, "startup", lambda s: container(s)["restartCount"] >= 1)
    messages = await event_messages(admin, "startup")
    assert ("Killing", "Container c failed liveness probe, will be restarted") in messages


@needs_runc
async def test_http_and_tcp_probes_reach_busybox_httpd_in_the_pod(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    web = helpers.sh(
        "web",
        "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www",
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"httpGet": {"port": "http", "path": "/index.html"}, "periodSeconds": 1},
        livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1},
    )
    missing = helpers.sh(
        "miss",
        LOOP,
        readinessProbe={"httpGet": {"port": 8080, "path": "/missing"}, "periodSeconds": 1},
    )
    await admin.create(rest.PODS, pod("web", web, missing), namespace="default")

    def web_ready(status: Object) -> bool:
        return bool(status.get("containerStatuses")) and container(status, "web")["ready"]

    status = (await pod_where(admin, "web", web_ready))["status"]
    assert container(status, "miss")["ready"] is False
    assert container(status, "web")["restartCount"] == 0
    assert condition(status, "Ready") == "False"

    async def not_found() -> Object | None:
        messages = await event_messages(admin, "web")
        wanted = ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
        return {} if wanted in messages else None

    await eventually(not_found, timeout=10.0)


# ----- on the pod network (CNI): probes dial the pod's IP, as upstream's ---------------------


@pytest.mark.skipif(test_oci_network.REASON is not None, reason=test_oci_network.REASON or "")
async def test_http_probe_dials_the_pod_ip_on_the_pod_network(
    admin: rest.Client,
    node: tuple[kubelet.KubeletHost, runtime.OciRuntime, str],  # noqa: F811 (the fixture)
) -> None:
    """httpd listening on the pod's IP only (not loopback) is found ready."""
    web = helpers.sh(
        "web",
        "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p $(hostname -i):8080 -h /www",
        readinessProbe={"httpGet": {"port": 8080, "path": "/index.html"}, "periodSeconds": 1},
    )
    created = await admin.create(rest.PODS, pod("onnet", web), namespace="default")
    status = (await pod_where(admin, "onnet", lambda s: condition(s, "Ready") == "True", 20.0))[
        "status"
    ]
    assert container(status, "web")["ready"] is True
    _, oci, _ = node
    code, out, _ = await oci.exec(created["metadata"]["uid"], "web", ["hostname", "-i"])
    assert (code, out.decode().split()) == (0, [status["podIP"]])  # httpd is not on loopback
