"""``kajitori up --runtime oci --nodes 2`` gives pods a working cluster network (decision 0031).

One cluster for the module (busybox pods: ``web`` and ``gated`` run httpd
on node 2, ``client`` and a hostNetwork pod run on node 1), under a random
cluster name, a free 172.31.X.0/24 and a free 10.2XX.0.0/16 pod network,
driven with the real kubectl. ``gated``'s readiness probe checks a file, so
tests can take it out of its Service and back. The host routes pod networks
to the nodes, so the API server reaches pods (``pods/proxy``,
``services/proxy``). The last test stops the cluster and checks that
nothing of its network is left on the host.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet.runtimes.oci import busybox, mounts
from kajitori.testing import node_network as testing_network
from kajitori.testing.cluster import KajitoriCluster, wait_until


def _skip_reason() -> str | None:
    reason = testing_network.skip_reason()
    if reason is None and not busybox.BUSYBOX.exists():
        reason = "busybox-static is not installed (/bin/busybox)"
    return reason


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

Object = dict[str, Any]
NODES = ("kajitori-worker", "kajitori-worker2")
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.2; done"
MANIFESTS = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  nodeName: kajitori-worker2
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "mkdir -p /w && echo hello-from-web > /w/index.html && exec httpd -f -p 8080 -h /w"]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: kajitori-worker
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: busybox, command: [sh, -c, "{LOOP}"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: empty}}
spec:
  selector: {{app: nothing}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: gated, labels: {{app: gated}}}}
spec:
  nodeName: kajitori-worker2
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "mkdir -p /w && echo hello-from-gated > /w/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /w"]
    readinessProbe:
      exec: {{command: [test, -f, /tmp/ready]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: gated}}
spec:
  selector: {{app: gated}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostnet}}
spec:
  nodeName: kajitori-worker
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: busybox, command: [sh, -c, "{LOOP}"]}}
"""


class Cluster:
    def __init__(
        self, up: KajitoriCluster, name: str, cidr: str, pod_cidr: str, oci_root: Path
    ) -> None:
        self.up, self.name, self.cidr, self.oci_root = up, name, cidr, oci_root
        self.pod_cidr = pod_cidr
        self.ip_forward = ""  # the host's setting before ``up``
        self.prefix = cidr.rsplit(".", 1)[0]  # 172.31.X

    def node_ip(self, index: int) -> str:
        return f"{self.prefix}.{index + 2}"

    @property
    def bridge_ip(self) -> str:
        return f"{self.prefix}.1"

    def get(self, *args: str) -> Object:
        return json.loads(self.up.kubectl("get", *args, "-o", "json").stdout)

    def in_client(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.up.kubectl("exec", "client", "--", *argv, check=False, timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("node-network")
    name, cidr = testing_network.cluster_name(), testing_network.free_node_cidr()
    pod_cidr = testing_network.free_cluster_cidr()
    ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    args = ("--nodes=2", "--runtime=oci", *testing_network.up_args(name, cidr, pod_cidr))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAJITORI_OCI_ROOT", str(tmp / "oci"))
        patch.setenv("KAJITORI_OCI_IMAGES", "busybox")  # no registry here
        with KajitoriCluster(tmp / "data", extra_args=args) as up:
            running = Cluster(up, name, cidr, pod_cidr, tmp / "oci")
            running.ip_forward = ip_forward
            up.wait_for_namespace_defaults("default")
            up.kubectl("apply", "-f", "-", stdin=MANIFESTS)

            def all_running() -> bool:
                pods = running.get("pods")["items"]
                return len(pods) == 4 and all(
                    p.get("status", {}).get("phase") == "Running" for p in pods
                )

            def served() -> bool:
                return all(running.get("endpoints", s).get("subsets") for s in ("web", "gated"))

            wait_until(all_running, timeout=60, what="pods Running")
            wait_until(served, what="web and gated endpoints")
            yield running


def test_nodes_are_on_the_node_network_with_kubelets_on_10250(cluster: Cluster) -> None:
    """InternalIPs .2 and .3; the API server reaches each kubelet there (kubectl logs)."""
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    for index, name in enumerate(NODES):
        status = nodes[name]["status"]
        assert {"type": "InternalIP", "address": cluster.node_ip(index)} in status["addresses"]
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert cluster.up.kubectl("logs", "client").returncode == 0  # through the kubelet API


def test_kubernetes_and_kube_dns_endpoints_are_the_bridge_address(cluster: Cluster) -> None:
    api = cluster.get("endpoints", "kubernetes")["subsets"][0]
    assert api["addresses"] == [{"ip": cluster.bridge_ip}]
    service = cluster.get("service", "kube-dns", "-n", "kube-system")
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert service["metadata"]["labels"]["k8s-app"] == "kube-dns"
    ports = {(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]}
    assert ports == {("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")}
    dns = cluster.get("endpoints", "kube-dns", "-n", "kube-system")["subsets"][0]
    assert dns["addresses"] == [{"ip": cluster.bridge_ip}]


@pytest.mark.parametrize(
    "target",
    ["pod-ip", "cluster-ip", "web.default.svc.cluster.local", "web"],
)
def test_a_pod_on_node_1_fetches_from_a_pod_on_node_2(cluster: Cluster, target: str) -> None:
    """By pod IP (kindnet-style routes), ClusterIP (kube-proxy), and DNS (FQDN, search path)."""
    web = cluster.get("pod", "web")
    assert web["spec"]["nodeName"] == "kajitori-worker2"
    service = cluster.get("service", "web")
    url = {
        "pod-ip": f"http://{web['status']['podIP']}:8080/",
        "cluster-ip": f"http://{service['spec']['clusterIP']}/",
    }.get(target, f"http://{target}/")
    # busybox's wget -T crashes (Debian 1.35): bound it with timeout instead.
    result = cluster.in_client("timeout", "10", "wget", "-q", "-O", "-", url)
    assert result.stdout == "hello-from-web\n", result.stderr


def test_node_port_answers_on_every_node_address_from_the_host(cluster: Cluster) -> None:
    port = cluster.get("service", "web")["spec"]["ports"][0]["nodePort"]
    for index in range(len(NODES)):
        url = f"http://{cluster.node_ip(index)}:{port}/"
        result = subprocess.run(
            ["busybox", "timeout", "10", "busybox", "wget", "-q", "-O", "-", url],
            capture_output=True,
            text=True,
        )
        assert result.stdout == "hello-from-web\n", (url, result.stderr)


def test_a_pod_gets_the_api_servers_tls_answer_at_10_96_0_1(cluster: Cluster) -> None:
    """A TLS 1.3 ClientHello sent from the pod to kubernetes:443 brings back the API server's
    certificate, valid for ``kubernetes.default.svc`` under the cluster CA."""
    context = ssl.create_default_context(cafile=str(cluster.up.data_dir / "pki" / "ca.crt"))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="kubernetes.default.svc")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    result = subprocess.run(
        ["kubectl", "exec", "-i", "client", "--", "sh", "-c", "(cat; sleep 2) | nc 10.96.0.1 443"],
        input=hello,
        capture_output=True,
        env={**os.environ, "KUBECONFIG": str(cluster.up.kubeconfig)},
        timeout=30,
    )
    assert result.stdout[:1] == b"\x16", result.stderr  # a TLS handshake record
    incoming.write(result.stdout)
    tls.do_handshake()  # verifies the chain and the name
    sans = dict(tls.getpeercert()["subjectAltName"]).items()
    ips = {value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "IP Address"}
    assert {"10.96.0.1", cluster.bridge_ip} <= ips, sans


def test_the_host_routes_each_pod_network_to_its_node(cluster: Cluster) -> None:
    """podCIDRs come from ``--cluster-cidr``; the host routes each via its node on the bridge,
    and its own forwarding setting is left as it was."""
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    routes = subprocess.run(
        ["ip", "-4", "-o", "route", "show"], capture_output=True, text=True, check=True
    ).stdout
    for index, name in enumerate(NODES):
        cidr = nodes[name]["spec"]["podCIDR"]
        assert ipaddress.IPv4Network(cidr).subnet_of(ipaddress.IPv4Network(cluster.pod_cidr))
        assert f"{cidr} via {cluster.node_ip(index)} dev " in routes, routes
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == cluster.ip_forward


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("pods/web:8080", "hello-from-web"),
        ("services/web:80", "hello-from-web"),
        ("services/http:web:80", "hello-from-web"),  # scheme prefix
        ("services/gated:http", "hello-from-gated"),  # port by name
    ],
)
def test_the_api_server_proxies_to_pods_and_services(
    cluster: Cluster, path: str, page: str
) -> None:
    result = cluster.up.kubectl("get", "--raw", f"/api/v1/namespaces/default/{path}/proxy/")
    assert result.stdout.strip() == page


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty:80", 'no endpoints available for service "empty"'),
        ("web:81", 'no service port 81 found for service "web"'),
    ],
)
def test_services_proxy_without_an_endpoint_answers_503(
    cluster: Cluster, name: str, message: str
) -> None:
    path = f"/api/v1/namespaces/default/services/{name}/proxy/"
    result = cluster.up.kubectl("get", "--raw", path, check=False)
    assert result.returncode != 0
    assert f"(ServiceUnavailable): {message}" in result.stderr


def _gated_state(cluster: Cluster) -> tuple[str, list[str], list[str], list[bool]]:
    """(Ready condition, ready and not-ready Endpoints IPs, EndpointSlice ready flags)."""
    pod = cluster.get("pod", "gated")
    ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}.get("Ready", "")
    subsets = cluster.get("endpoints", "gated").get("subsets") or [{}]
    ips = [[a["ip"] for a in subsets[0].get(key, [])] for key in ("addresses", "notReadyAddresses")]
    slices = cluster.get("endpointslices", "-l", "kubernetes.io/service-name=gated")["items"]
    flags = [e["conditions"]["ready"] for s in slices for e in s.get("endpoints") or []]
    return ready, ips[0], ips[1], flags


def _fetch_gated(cluster: Cluster) -> str:
    ip = cluster.get("service", "gated")["spec"]["clusterIP"]
    result = cluster.in_client("timeout", "3", "wget", "-q", "-O", "-", f"http://{ip}/")
    return result.stdout


def test_readiness_takes_a_pod_out_of_its_service_and_back(cluster: Cluster) -> None:
    """An exec probe on a file: removing it makes the pod NotReady, its address not ready in
    Endpoints and EndpointSlice, the ClusterIP and services/proxy stop reaching it; restoring
    the file brings it all back."""
    ip = cluster.get("pod", "gated")["status"]["podIP"]
    assert _gated_state(cluster) == ("True", [ip], [], [True])
    assert _fetch_gated(cluster) == "hello-from-gated\n"

    cluster.up.kubectl("exec", "gated", "--", "rm", "/tmp/ready")
    wait_until(
        lambda: _gated_state(cluster) == ("False", [], [ip], [False]), what="gated not ready"
    )
    wait_until(lambda: _fetch_gated(cluster) == "", what="ClusterIP without endpoint")
    path = "/api/v1/namespaces/default/services/gated:80/proxy/"
    refused = cluster.up.kubectl("get", "--raw", path, check=False)
    assert 'no endpoints available for service "gated"' in refused.stderr

    cluster.up.kubectl("exec", "gated", "--", "touch", "/tmp/ready")
    wait_until(lambda: _gated_state(cluster) == ("True", [ip], [], [True]), what="gated ready")
    wait_until(lambda: _fetch_gated(cluster) == "hello-from-gated\n", what="ClusterIP back")
    assert cluster.up.kubectl("get", "--raw", path).stdout.strip() == "hello-from-gated"


def test_a_host_network_pod_lives_in_its_nodes_namespace(cluster: Cluster) -> None:
    pod = cluster.get("pod", "hostnet")
    assert pod["status"]["podIP"] == cluster.node_ip(0) == pod["status"]["hostIP"]
    addresses = cluster.up.kubectl("exec", "hostnet", "--", "ip", "-4", "addr").stdout
    assert f"inet {cluster.node_ip(0)}/24" in addresses
    resolv = cluster.up.kubectl("exec", "hostnet", "--", "cat", "/etc/resolv.conf").stdout
    assert "10.96.0.10" not in resolv  # dnsPolicy ClusterFirst + hostNetwork → Default
    # Removing it must leave the node's own eth0 alone (no CNI DEL in the node namespace).
    cluster.up.kubectl("delete", "pod", "hostnet", "--timeout=30s")
    result = cluster.in_client("timeout", "10", "wget", "-q", "-O", "-", "http://web/")
    assert result.stdout == "hello-from-web\n", result.stderr


def test_stop_removes_the_whole_node_network(cluster: Cluster) -> None:
    """Namespaces, veths, bridge (with their nft tables and routes), host routes to pods,
    pods and CNI state go."""
    assert cluster.up.stop() == 0
    assert testing_network.leftovers(cluster.name, NODES, cluster.cidr, cluster.pod_cidr) == []
    assert (
        cluster.prefix + "."
        not in subprocess.run(
            ["ip", "-4", "route", "show"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert mounts.mounts_under(cluster.oci_root) == []
    for node in NODES:
        assert not (cluster.oci_root / node / "cni").exists()
        assert list((cluster.oci_root / node / "pods").iterdir()) == []
