"""``services/proxy``: the API server relays to a ready endpoint of the Service's port.

An API server in the test's loop, a Service without selector whose
Endpoints (written by hand) point at a small HTTP server — the "pod" —
on the host's own address (Endpoints may not name loopback addresses; a
connection to a local address stays on the machine). Requests go over HTTPS
as the admin or as a user allowed only ``get`` on ``services/proxy``.
Upstream's ResourceLocation is the spec: port by number (mapped to the
Service port's name) or name, 503 without a ready endpoint, endpoints of
Pods that no longer have the address skipped.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kajitori.auth import pki
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

Object = dict[str, Any]
BASE = "/api/v1/namespaces/default/services"


def _host_address() -> str:
    """The IPv4 address of the interface with the default route, or a skip."""
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True)
    words = route.stdout.split()
    if "dev" not in words:
        pytest.skip("no default route: no non-loopback address to serve the backend on")
    device = words[words.index("dev") + 1]
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", device, "scope", "global"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if "inet" not in shown:
        pytest.skip(f"{device} has no IPv4 address")
    return shown[shown.index("inet") + 1].split("/")[0]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one HTTP request with its method, target and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(v) for k, _, v in (h.partition(": ") for h in lines) if k.lower() == "content-length"),
        0,
    )
    body = (await reader.readexactly(length)).decode() if length else ""
    answer = f"{lines[0].rsplit(' ', 1)[0]} {body}".strip().encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n"
        + f"content-length: {len(answer)}\r\n\r\n".encode()
        + answer
    )
    await writer.drain()
    writer.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def apiserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[APIServerProcess]:
    process = APIServerProcess(APIServerConfig(data_dir=tmp_path_factory.mktemp("api"), port=0))
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend() -> AsyncIterator[tuple[str, int]]:
    address = _host_address()
    server = await asyncio.start_server(_echo, address, 0)
    try:
        yield address, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _https(apiserver: APIServerProcess, tmp: Path, cert: pki.CertAndKey) -> httpx.AsyncClient:
    assert apiserver.pki is not None
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "c.crt").write_bytes(cert.cert_pem)
    (tmp / "c.key").write_bytes(cert.key_pem)
    context = ssl.create_default_context(cafile=str(apiserver.pki.ca_cert_path))
    context.load_cert_chain(tmp / "c.crt", tmp / "c.key")
    return httpx.AsyncClient(base_url=apiserver.url, verify=context)


async def _pod(admin: rest.Client, name: str, ip: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    created = await admin.create(rest.PODS, pod, namespace="default")
    created["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
    await admin.request("PUT", f"/api/v1/namespaces/default/pods/{name}/status", body=created)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    apiserver: APIServerProcess, backend: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Service ``web`` (ports http 80, other 81) → web-0 at the backend; ``stale``'s only
    address names web-1, which has another IP; ``empty`` has no address."""
    ip, port = backend
    assert apiserver.http is not None and apiserver.pki is not None
    admin = rest.Client.in_process(apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, account, namespace="default")  # no controllers run
    await _pod(admin, "web-0", ip)
    await _pod(admin, "web-1", "192.0.2.254" if ip != "192.0.2.254" else "192.0.2.253")
    ports = [{"name": "http", "port": 80}, {"name": "other", "port": 81}]
    for name, ref in (("web", "web-0"), ("stale", "web-1"), ("empty", "")):
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}}
        service["spec"] = {"ports": ports}
        await admin.create(rest.SERVICES, service, namespace="default")
        target = {"kind": "Pod", "namespace": "default", "name": ref}
        subsets = [
            {
                "addresses": [{"ip": ip, "targetRef": target}],
                "ports": [{"name": "http", "port": port}],
            }
        ]
        endpoints: Object = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name}}
        endpoints["subsets"] = subsets if ref else []
        await admin.create(rest.ENDPOINTS, endpoints, namespace="default")
    # A user who may only GET through services/proxy.
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "proxy-get"},
        "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "proxy-get"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "proxy-get"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"}],
    }
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    await admin.request("POST", f"{rbac}/roles", body=role)
    await admin.request("POST", f"{rbac}/rolebindings", body=binding)
    await admin.aclose()
    viewer_cert = pki.issue_client_cert(apiserver.pki.ca, user="viewer", groups=())
    tmp = tmp_path_factory.mktemp("certs")
    clients = {
        "admin": _https(apiserver, tmp / "admin", apiserver.pki.admin),
        "viewer": _https(apiserver, tmp / "viewer", viewer_cert),
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.mark.parametrize("name", ["web:80", "web:http", "http:web:80"])
async def test_a_request_reaches_the_endpoint_with_path_query_and_method(
    cluster: dict[str, httpx.AsyncClient], name: str
) -> None:
    admin = cluster["admin"]
    response = await admin.get(f"{BASE}/{name}/proxy/a/b", params={"x": "1"})
    assert (response.status_code, response.text) == (200, "GET /a/b?x=1")
    posted = await admin.post(f"{BASE}/{name}/proxy/", content=b"payload")
    assert (posted.status_code, posted.text) == (200, "POST / payload")


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("web:82", 503, 'no service port 82 found for service "web"'),
        ("web:other", 503, 'no endpoints available for service "web"'),  # no such endpoint port
        ("empty:80", 503, 'no endpoints available for service "empty"'),
        ("stale:80", 503, 'no endpoints available for service "stale"'),  # pod IP moved on
        ("nope:80", 404, 'services "nope" not found'),  # a port number reads the Service
        ("nope:http", 404, 'endpoints "nope" not found'),
        ("ftp:web:80", 400, 'invalid service request "ftp:web:80"'),
    ],
)
async def test_no_usable_endpoint_answers_as_upstream(
    cluster: dict[str, httpx.AsyncClient], name: str, code: int, message: str
) -> None:
    response = await cluster["admin"].get(f"{BASE}/{name}/proxy/")
    status = response.json()
    assert (response.status_code, status["kind"], status["code"]) == (code, "Status", code)
    assert status["message"] == message


async def test_the_verb_is_the_http_methods_on_services_proxy(
    cluster: dict[str, httpx.AsyncClient],
) -> None:
    viewer = cluster["viewer"]
    assert (await viewer.get(f"{BASE}/web:80/proxy/")).text == "GET /"
    denied = await viewer.post(f"{BASE}/web:80/proxy/", content=b"x")
    assert denied.status_code == 403
    assert 'cannot create resource "services/proxy"' in denied.json()["message"]


async def test_discovery_lists_services_proxy_as_upstream(
    cluster: dict[str, httpx.AsyncClient],
) -> None:
    """Legacy and aggregated discovery: ServiceProxyOptions, create/delete/get/patch/update."""
    admin = cluster["admin"]
    verbs = ["create", "delete", "get", "patch", "update"]
    legacy = {r["name"]: r for r in (await admin.get("/api/v1")).json()["resources"]}
    assert legacy["services/proxy"]["kind"] == "ServiceProxyOptions"
    assert legacy["services/proxy"]["verbs"] == verbs
    assert legacy["pods/exec"]["verbs"] == ["create", "get"]
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    document = (await admin.get("/api", headers={"Accept": accept})).json()
    [v1] = document["items"][0]["versions"]
    services = next(r for r in v1["resources"] if r["resource"] == "services")
    subresources = {s["subresource"]: s for s in services["subresources"]}
    assert subresources["proxy"]["responseKind"]["kind"] == "ServiceProxyOptions"
    assert subresources["proxy"]["verbs"] == verbs
    assert list(subresources) == ["proxy", "status"]
