"""``kajitori kubelet --nodes N``: many simulated nodes in a process of their own (decision 0049).

``kajitori apiserver`` runs alone; ``kajitori controller-manager`` and
``kajitori scheduler`` join it with the admin kubeconfig, and ``kajitori
kubelet --nodes 3`` with the ``node-simulator.kubeconfig`` the API server
wrote: one user for three nodes, which registers them, keeps their Leases,
runs a Deployment's pods on them and removes the pods again. The one-node
mode (``--node-name``) runs beside them as a real kubelet would, with a
``system:node:<name>`` certificate, under the Node authorizer.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.auth import pki
from kajitori.client import kubeconfig
from kajitori.testing.cluster import KajitoriCluster, wait_until

PREFIX = "sim"
NODES = {"sim", "sim2", "sim3"}
SOLO = "solo-node"


@pytest.fixture(scope="module")
def split_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """The API server, then the controller manager, the scheduler and a 3-node kubelet."""
    with KajitoriCluster(tmp_path_factory.mktemp("kubelet-nodes"), command="apiserver") as running:
        admin = str(running.kubeconfig)
        simulator = str(running.data_dir / "node-simulator.kubeconfig")
        processes = [
            _start(running, "controller-manager", "--kubeconfig", admin, "--leader-elect=false"),
            _start(running, "scheduler", "--kubeconfig", admin, "--leader-elect=false"),
            _start(running, "kubelet", "--kubeconfig", simulator, "--nodes", "3",
                   "--node-name-prefix", PREFIX, "--node-ip", "172.18.3.2"),
        ]  # fmt: skip
        try:
            yield running
        finally:
            codes = [_stop(process) for process in processes]
        assert codes == [0, 0, 0], _logs(running)


def _start(cluster: KajitoriCluster, *args: str) -> subprocess.Popen[bytes]:
    with (cluster.data_dir / f"{args[0]}.log").open("a") as log:  # the child keeps its own
        return subprocess.Popen(
            [sys.executable, "-m", "kajitori", *args], stdout=log, stderr=subprocess.STDOUT
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _logs(cluster: KajitoriCluster) -> str:
    return "\n".join(f"{p.name}:\n{p.read_text()[-2000:]}" for p in cluster.data_dir.glob("*.log"))


def _get(cluster: KajitoriCluster, *args: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _ready_nodes(cluster: KajitoriCluster) -> dict[str, str]:
    """Ready nodes' names and InternalIPs."""
    ready = {}
    for node in _get(cluster, "nodes")["items"]:
        conditions = node["status"].get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
            ready[node["metadata"]["name"]] = addresses["InternalIP"]
    return ready


def test_three_nodes_register_and_run_a_deployment(split_cluster: KajitoriCluster) -> None:
    cluster = split_cluster
    wait_until(lambda: NODES <= set(_ready_nodes(cluster)), timeout=30, what="3 nodes Ready")
    # Named as up names its workers, from the prefix; InternalIPs counted up from --node-ip.
    assert {n: ip for n, ip in _ready_nodes(cluster).items() if n in NODES} == {
        "sim": "172.18.3.2",
        "sim2": "172.18.3.3",
        "sim3": "172.18.3.4",
    }
    leases = _get(cluster, "leases", "-n", "kube-node-lease")["items"]
    assert {lease["spec"]["holderIdentity"] for lease in leases} >= NODES

    cluster.kubectl("create", "deployment", "spread", "--image=nginx", "--replicas=6")

    def running() -> list[dict[str, Any]]:
        pods = _get(cluster, "pods", "-l", "app=spread")["items"]
        return [p for p in pods if p["status"].get("phase") == "Running"]

    wait_until(lambda: len(running()) == 6, timeout=60, what="6 pods Running")
    placed = {pod["spec"]["nodeName"] for pod in running()}
    assert placed <= NODES | {SOLO}
    assert placed & NODES  # the scheduler spreads: the 3-node process runs some of them
    # Each node's Events name it as their source, though one user writes them all.
    events = _get(cluster, "events", "--field-selector", "source=kubelet,reason=Started")["items"]
    started = {
        e["source"]["host"] for e in events if e["involvedObject"]["name"].startswith("spread-")
    }
    assert started == placed

    cluster.kubectl("delete", "deployment", "spread")
    wait_until(lambda: not _get(cluster, "pods", "-l", "app=spread")["items"], timeout=60,
               what="the kubelets to remove the pods")  # fmt: skip


def test_node_simulator_identity_is_a_kubelet_on_every_node(
    split_cluster: KajitoriCluster,
) -> None:
    simulator = str(split_cluster.data_dir / "node-simulator.kubeconfig")

    def can_i(*args: str) -> str:
        result = split_cluster.kubectl("--kubeconfig", simulator, "auth", "can-i", *args,
                                       check=False)  # fmt: skip
        return result.stdout.strip()

    assert can_i("list", "pods", "--all-namespaces") == "yes"
    assert can_i("patch", "nodes/status") == "yes"
    assert can_i("update", "leases", "-n", "kube-node-lease") == "yes"
    assert can_i("create", "events", "-n", "default") == "yes"
    # No more than upstream's system:node role: no workloads, no RBAC.
    assert can_i("create", "deployments") == "no"
    assert can_i("create", "clusterrolebindings") == "no"


def test_one_node_kubelet_as_its_own_node_identity(
    split_cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """``--node-name`` with a system:node:<name> certificate: the Node authorizer's kubelet."""
    cluster = split_cluster
    ca_dir = cluster.data_dir / "pki"
    ca = pki.load_cert_and_key(ca_dir / "ca.crt", ca_dir / "ca.key")
    node = pki.issue_node_certs(ca, [SOLO])[SOLO]
    config = tmp_path / "solo.kubeconfig"
    kubeconfig.write_kubeconfig(config, server_url=cluster.url, ca_pem=ca.cert_pem,
                                client_cert_pem=node.cert_pem, client_key_pem=node.key_pem)  # fmt: skip
    process = _start(cluster, "kubelet", "--kubeconfig", str(config), "--node-name", SOLO,
                     "--node-ip", "172.18.4.2")  # fmt: skip
    try:
        wait_until(lambda: _ready_nodes(cluster).get(SOLO) == "172.18.4.2", timeout=30,
                   what="the lone node Ready")  # fmt: skip
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pinned", "namespace": "default"},
            "spec": {"nodeName": SOLO, "containers": [{"name": "c", "image": "nginx"}]},
        }
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        wait_until(
            lambda: _get(cluster, "pod", "pinned")["status"].get("phase") == "Running",
            timeout=30,
            what="the lone node's pod Running",
        )
        cluster.kubectl("delete", "pod", "pinned", "--wait=true")
    finally:
        assert _stop(process) == 0, _logs(cluster)


def test_nodes_must_be_positive(split_cluster: KajitoriCluster) -> None:
    simulator = str(split_cluster.data_dir / "node-simulator.kubeconfig")
    done = subprocess.run(
        [sys.executable, "-m", "kajitori", "kubelet", "--kubeconfig", simulator, "--nodes", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--nodes must be at least 1" in done.stderr
