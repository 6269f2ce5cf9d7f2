"""The aggregation layer end to end: a real aggregated API server behind a Service.

A small HTTPS server (the admission tests' ``WebhookServer``, answering GETs
here) serves discovery for ``metrics.example.com/v1`` and one resource list,
in a network namespace of the test's own (EndpointSlices refuse loopback), and
checks the front proxy's client certificate against kajitori's request-header
CA. Through the real kubectl and the official client the test registers it as
an APIService and checks what upstream's aggregator does: the Available
condition for a missing Service, missing endpoints, a failing and a passing
discovery check; proxied requests carrying the caller as X-Remote-* headers and
no credentials; a watch streamed through; the group in /apis, /apis/<group>
and ``kubectl api-resources``; the 503 of an unavailable APIService.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from tests.admission.webhook_server import WebhookServer, routed_namespace

from kajitori.testing import netns
from kajitori.testing.cluster import wait_for, wait_until
from kajitori.testing.inprocess import InProcessCluster

pytestmark = [
    pytest.mark.kajitori(controllers=False),
    pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason())),
]

Object = dict[str, Any]
GROUP = "metrics.example.com"
NAMESPACE = "metrics-system"


@dataclass(frozen=True)
class Seen:
    path: str
    query: str
    headers: list[tuple[str, str]]
    peer_cn: str

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


RESOURCE_LIST = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": f"{GROUP}/v1",
    "resources": [
        {
            "name": "nodes",
            "singularName": "node",
            "namespaced": False,
            "kind": "NodeMetrics",
            "verbs": ["get", "list", "watch"],
        }
    ],
}
NODE_LIST = {
    "kind": "NodeMetricsList",
    "apiVersion": f"{GROUP}/v1",
    "metadata": {},
    "items": [{"metadata": {"name": "node-a"}, "usage": {"cpu": "10m"}}],
}

AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
# What the server's own aggregated discovery says (it has a short name the list lacks).
AGGREGATED = {
    "kind": "APIGroupDiscoveryList",
    "apiVersion": "apidiscovery.k8s.io/v2",
    "metadata": {},
    "items": [
        {
            "metadata": {"name": GROUP},
            "versions": [
                {
                    "version": "v1",
                    "resources": [
                        {
                            "resource": "nodes",
                            "responseKind": {
                                "group": GROUP,
                                "version": "v1",
                                "kind": "NodeMetrics",
                            },
                            "scope": "Cluster",
                            "singularResource": "node",
                            "shortNames": ["nm"],
                            "verbs": ["get", "list", "watch"],
                        }
                    ],
                }
            ],
        }
    ],
}


class AggregatedServer(WebhookServer):
    """Answers GETs as a tiny aggregated API server; ``seen`` lists every request."""

    def __init__(self, dns_names: list[str], *, host: str, netns: str) -> None:
        self.seen: list[Seen] = []
        self.release_watch = threading.Event()
        super().__init__(dns_names, host=host, netns=netns)

    def trust_front_proxy(self, ca_pem: str) -> None:
        """Ask for a client certificate signed by the request-header CA (verified when sent)."""
        context = self._server.socket.context
        context.load_verify_locations(cadata=ca_pem)
        context.verify_mode = ssl.CERT_OPTIONAL

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                peer = (
                    self.connection.getpeercert()
                    if isinstance(self.connection, ssl.SSLSocket)
                    else None
                )
                cn = ""
                for rdn in (peer or {}).get("subject", ()):
                    for key, value in rdn:
                        if key == "commonName":
                            cn = value
                with server._lock:
                    server.seen.append(
                        Seen(parts.path, parts.query, list(self.headers.items()), cn)
                    )
                if parts.path == f"/apis/{GROUP}/v1/nodes" and "watch=" in parts.query:
                    self._watch()
                    return
                if parts.path == "/apis" and "as=APIGroupDiscoveryList" in (
                    self.headers.get("Accept") or ""
                ):
                    data = json.dumps(AGGREGATED).encode()
                    self._send(200, data, content_type=AGGREGATED_TYPE)
                    return
                bodies = {
                    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
                    f"/apis/{GROUP}/v1": RESOURCE_LIST,
                    f"/apis/{GROUP}/v1/nodes": NODE_LIST,
                }
                body = bodies.get(parts.path)
                status = 200 if body is not None else 404
                self._send(status, json.dumps(body or {"kind": "Status"}).encode())

            def _send(
                self, status: int, data: bytes, content_type: str = "application/json"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _watch(self) -> None:
                # HTTP/1.0 without a length: the body is what comes until the close.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                item = NODE_LIST["items"][0]
                self.wfile.write(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
                self.wfile.flush()
                server.release_watch.wait(20)
                self.wfile.write(json.dumps({"type": "MODIFIED", "object": item}).encode() + b"\n")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[AggregatedServer, str, str]]:
    """The aggregated server, its namespace's address, and the namespace's path."""
    with (
        routed_namespace() as (namespace, address),
        AggregatedServer([f"metrics.{NAMESPACE}.svc"], host=address, netns=namespace) as server,
    ):
        yield server, address, namespace


@pytest.fixture(scope="module")
def cluster(
    kajitori_module_cluster: InProcessCluster, backend: tuple[AggregatedServer, str, str]
) -> InProcessCluster:
    server, _, _ = backend
    ca = (kajitori_module_cluster.data_dir / "pki" / "front-proxy-ca.crt").read_text()
    server.trust_front_proxy(ca)
    kajitori_module_cluster.kubectl("create", "namespace", NAMESPACE)
    return kajitori_module_cluster


def _apply(cluster: InProcessCluster, obj: Object) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _service(name: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
    }


def _slice(service: str, address: str, port: int, *, ready: bool = True) -> Object:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-1",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}],
    }


def _api_service(version: str, service: str, ca_bundle: str) -> Object:
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"{version}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "version": version,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "service": {"namespace": NAMESPACE, "name": service},
            "caBundle": ca_bundle,
        },
    }


def _available(cluster: InProcessCluster, name: str) -> Object | None:
    done = cluster.kubectl("get", "apiservice", name, "-o", "json", check=False)
    if done.returncode != 0:
        return None
    for condition in json.loads(done.stdout).get("status", {}).get("conditions", []):
        if condition["type"] == "Available":
            return dict(condition)
    return None


def _wait_reason(cluster: InProcessCluster, name: str, reason: str) -> Object:
    return wait_for(
        lambda: (c := _available(cluster, name)) and c["reason"] == reason and c,
        what=f"{name} Available reason {reason}",
    )


def test_missing_service_and_endpoints_are_reported(
    cluster: InProcessCluster, backend: tuple[AggregatedServer, str, str]
) -> None:
    """ServiceNotFound, EndpointsNotFound, then MissingEndpoints, each with upstream's message."""
    server, address, _ = backend
    name = f"v1beta1.{GROUP}"
    _apply(cluster, _api_service("v1beta1", "late", server.ca_bundle))
    condition = _wait_reason(cluster, name, "ServiceNotFound")
    assert (condition["status"], condition["message"]) == (
        "False",
        f'service/late in "{NAMESPACE}" is not present',
    )
    # An unavailable APIService is answered by the aggregator itself, as Go's http.Error.
    with httpx.Client(verify=_admin_context(cluster)) as http:
        refused = http.get(f"{cluster.url}/apis/{GROUP}/v1beta1/nodes")
    assert (refused.status_code, refused.text) == (503, "service unavailable\n")
    assert refused.headers["content-type"] == "text/plain; charset=utf-8"
    assert not server.requests_to(f"/apis/{GROUP}/v1beta1/nodes")

    _apply(cluster, _service("late"))
    condition = _wait_reason(cluster, name, "EndpointsNotFound")
    assert condition["message"] == f'cannot find endpointslices for service/late in "{NAMESPACE}"'

    _apply(cluster, _slice("late", address, server.port, ready=False))
    condition = _wait_reason(cluster, name, "MissingEndpoints")
    assert condition["message"] == (
        f'endpointslices for service/late in "{NAMESPACE}" have no addresses with port name "https"'
    )
    row = cluster.kubectl("get", "apiservice", name).stdout.splitlines()[1].split()
    assert row[:4] == [name, f"{NAMESPACE}/late", "False", "(MissingEndpoints)"]
    cluster.kubectl("delete", "apiservice", name)


def test_failed_discovery_check_names_the_dial_error(
    cluster: InProcessCluster, backend: tuple[AggregatedServer, str, str]
) -> None:
    """A ready endpoint where nothing listens: FailedDiscoveryCheck with Go's dial words."""
    server, address, _ = backend
    closed_port = 1  # nothing listens there in the test's namespace
    name = f"v1alpha1.{GROUP}"
    _apply(cluster, _service("refusing"))
    _apply(cluster, _slice("refusing", address, closed_port))
    _apply(cluster, _api_service("v1alpha1", "refusing", server.ca_bundle))
    condition = _wait_reason(cluster, name, "FailedDiscoveryCheck")
    url = f"https://{address}:{closed_port}/apis/{GROUP}/v1alpha1"
    assert condition["message"] == (
        f'failing or missing response from {url}: Get "{url}": '
        f"dial tcp {address}:{closed_port}: connect: connection refused"
    )
    cluster.kubectl("delete", "apiservice", name)


@pytest.fixture(scope="module")
def registered(
    cluster: InProcessCluster, backend: tuple[AggregatedServer, str, str]
) -> AggregatedServer:
    server, address, _ = backend
    _apply(cluster, _service("metrics"))
    _apply(cluster, _slice("metrics", address, server.port))
    _apply(cluster, _api_service("v1", "metrics", server.ca_bundle))
    _wait_reason(cluster, f"v1.{GROUP}", "Passed")
    return server


def test_passing_check_and_row(cluster: InProcessCluster, registered: AggregatedServer) -> None:
    """Available True, Passed, "all checks passed"; the check came as system:kube-aggregator."""
    condition = _available(cluster, f"v1.{GROUP}")
    assert condition is not None
    assert (condition["status"], condition["message"]) == ("True", "all checks passed")
    row = cluster.kubectl("get", "apiservice", f"v1.{GROUP}").stdout.splitlines()[1].split()
    assert row[:3] == [f"v1.{GROUP}", f"{NAMESPACE}/metrics", "True"]
    check = registered.requests_to(f"/apis/{GROUP}/v1")[0]
    assert check.values("X-Remote-User") == ["system:kube-aggregator"]
    assert check.values("X-Remote-Group") == ["system:masters"]
    assert check.peer_cn == "front-proxy-client"


def test_requests_are_proxied_as_the_front_proxy(
    cluster: InProcessCluster, registered: AggregatedServer
) -> None:
    """kubectl get --raw reaches the server with the caller in X-Remote-*, no credentials."""
    before = len(registered.requests_to(f"/apis/{GROUP}/v1/nodes"))
    out = cluster.kubectl("get", "--raw", f"/apis/{GROUP}/v1/nodes?limit=5").stdout
    assert json.loads(out) == NODE_LIST
    seen = registered.requests_to(f"/apis/{GROUP}/v1/nodes")[before]
    assert seen.query == "limit=5"
    assert seen.peer_cn == "front-proxy-client"
    assert seen.values("X-Remote-User") == ["kubernetes-admin"]
    assert seen.values("X-Remote-Group") == ["system:masters", "system:authenticated"]
    assert seen.values("Host") == [f"metrics.{NAMESPACE}.svc:443"]

    # Impersonated: the impersonated user is sent, never the Impersonate-* headers;
    # authorization judged jane first (RBAC lets her read it as a system:masters member).
    denied = cluster.kubectl("get", "--raw", f"/apis/{GROUP}/v1/nodes", "--as=jane", check=False)
    assert 'User "jane" cannot list resource "nodes" in API group "metrics.example.com"' in (
        denied.stderr
    )
    cluster.kubectl(
        "get",
        "--raw",
        f"/apis/{GROUP}/v1/nodes",
        "--as=jane",
        "--as-group=devs",
        "--as-group=system:masters",
        "--as-uid=1234",
    )
    seen = registered.requests_to(f"/apis/{GROUP}/v1/nodes")[-1]
    assert seen.values("X-Remote-User") == ["jane"]
    assert seen.values("X-Remote-Uid") == ["1234"]
    assert seen.values("X-Remote-Group") == ["devs", "system:masters", "system:authenticated"]
    assert not [k for k, _ in seen.headers if k.lower().startswith("impersonate-")]


def test_bearer_tokens_and_spoofed_identities_are_not_forwarded(
    cluster: InProcessCluster, registered: AggregatedServer
) -> None:
    """A token's user goes as X-Remote-User; the token and the client's own X-Remote-* do not."""
    cluster.kubectl("create", "serviceaccount", "reader", "-n", NAMESPACE)
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "metrics-reader",
        "--clusterrole=cluster-admin",
        f"--serviceaccount={NAMESPACE}:reader",
    )
    token = cluster.kubectl("create", "token", "reader", "-n", NAMESPACE).stdout.strip()
    ca = cluster.data_dir / "pki" / "ca.crt"
    response = httpx.get(
        f"{cluster.url}/apis/{GROUP}/v1/nodes",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Remote-User": "mallory",
            "X-Remote-Extra-Scopes": "all",
        },
        verify=ssl.create_default_context(cafile=str(ca)),
    )
    assert response.status_code == 200, response.text
    seen = registered.requests_to(f"/apis/{GROUP}/v1/nodes")[-1]
    assert seen.values("X-Remote-User") == [f"system:serviceaccount:{NAMESPACE}:reader"]
    assert seen.values("X-Remote-Group") == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{NAMESPACE}",
        "system:authenticated",
    ]
    assert seen.values("Authorization") == []
    assert seen.values("X-Remote-Extra-Scopes") == []
    # The token's extra (its credential id) travels with the key percent-escaped.
    (credential,) = seen.values("X-Remote-Extra-authentication.kubernetes.io%2Fcredential-id")
    assert credential.startswith("JTI=")


def _admin_context(cluster: InProcessCluster) -> ssl.SSLContext:
    pki_dir = cluster.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
    return context


def test_watch_streams_through(cluster: InProcessCluster, registered: AggregatedServer) -> None:
    """The first event arrives while the aggregated server still holds the stream open."""
    url = f"{cluster.url}/apis/{GROUP}/v1/nodes?watch=1"
    with (
        httpx.Client(verify=_admin_context(cluster), timeout=20) as http,
        http.stream("GET", url) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        assert json.loads(next(lines))["type"] == "ADDED"
        registered.release_watch.set()
        assert json.loads(next(lines))["type"] == "MODIFIED"
        assert list(lines) == []


def test_remote_group_in_discovery(cluster: InProcessCluster, registered: AggregatedServer) -> None:
    """/apis, /apis/<group> and kubectl api-resources (aggregated discovery) show the group."""
    groups = json.loads(cluster.kubectl("get", "--raw", "/apis").stdout)["groups"]
    assert groups[-1] == {
        "name": GROUP,
        "versions": [{"groupVersion": f"{GROUP}/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": f"{GROUP}/v1", "version": "v1"},
    }
    group = json.loads(cluster.kubectl("get", "--raw", f"/apis/{GROUP}").stdout)
    assert (group["kind"], group["name"]) == ("APIGroup", GROUP)

    def listed() -> list[str] | None:
        out = cluster.kubectl("api-resources", f"--api-group={GROUP}", "--no-headers").stdout
        return out.split() or None

    row = wait_for(listed, what="the remote resource in api-resources")
    # Taken from the server's aggregated document (the short name is only there).
    assert row == ["nodes", "nm", f"{GROUP}/v1", "false", "NodeMetrics"]
    # The server answers no Table: kubectl prints names from the plain list.
    out = cluster.kubectl("get", f"nodes.{GROUP}").stdout.split()
    assert out == ["NAME", "AGE", "node-a", "<unknown>"]


def test_deleting_the_apiservice_stops_the_proxy(
    cluster: InProcessCluster, registered: AggregatedServer
) -> None:
    """Without the APIService the path is kajitori's again: 404, and the group leaves /apis."""
    cluster.kubectl("delete", "apiservice", f"v1.{GROUP}")
    wait_until(
        lambda: cluster.kubectl("get", "--raw", f"/apis/{GROUP}/v1", check=False).returncode != 0,
        what="proxy gone",
    )
    gone = cluster.kubectl("get", "--raw", f"/apis/{GROUP}/v1", check=False)
    assert "NotFound" in gone.stderr or "not found" in gone.stderr
    names = [
        g["name"] for g in json.loads(cluster.kubectl("get", "--raw", "/apis").stdout)["groups"]
    ]
    assert GROUP not in names
