"""``kajitori up`` as a user runs it: state survives a restart; a taken port is refused.

The module's cluster is stopped and started again on the same data
directory (SIGTERM, as Ctrl-C or systemd would), so these tests share one
cluster on purpose and run in file order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kajitori.testing.cluster import KajitoriCluster

KAJITORI_UP = (sys.executable, "-m", "kajitori", "up")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: durable
spec:
  replicas: 2
  selector: {matchLabels: {app: durable}}
  template:
    metadata: {labels: {app: durable}}
    spec:
      containers: [{name: web, image: "nginx:1.25"}]
"""


def identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return meta["uid"], meta["resourceVersion"], meta["creationTimestamp"]


def test_objects_survive_a_restart(cluster: KajitoriCluster) -> None:
    """After SIGTERM (exit 0) and a new start on the same data dir, objects and RVs remain."""
    cluster.kubectl("create", "namespace", "durable")
    cluster.kubectl("create", "configmap", "kept", "-n", "durable", "--from-literal=k=v")
    cluster.kubectl("apply", "-n", "durable", "-f", "-", stdin=DEPLOYMENT)
    cluster.kubectl("scale", "deployment", "durable", "-n", "durable", "--replicas=4")
    cluster.kubectl(
        "create",
        "-n",
        "durable",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pending\n"
        "  finalizers: [example.com/hold]\n",
    )
    cluster.kubectl("delete", "configmap", "pending", "-n", "durable", "--wait=false")
    before = cluster.get_json("configmaps,deployments", "-n", "durable")
    raw_list = json.loads(cluster.kubectl("get", "--raw", "/api/v1/configmaps").stdout)
    list_rv = int(raw_list["metadata"]["resourceVersion"])

    assert cluster.stop() == 0
    cluster.start()

    after = cluster.get_json("configmaps,deployments", "-n", "durable")
    assert [identity(o) for o in after["items"]] == [identity(o) for o in before["items"]]
    assert after["items"] == before["items"]
    by_name = {o["metadata"]["name"]: o for o in after["items"]}
    assert by_name["kept"]["data"] == {"k": "v"}
    assert by_name["durable"]["spec"]["replicas"] == 4
    assert by_name["durable"]["metadata"]["generation"] == 2
    assert by_name["pending"]["metadata"]["finalizers"] == ["example.com/hold"]
    assert by_name["pending"]["metadata"]["deletionTimestamp"]
    # The revision counter carries on from where it stopped.
    cluster.kubectl("label", "configmap", "kept", "-n", "durable", "after=restart")
    relabelled = cluster.get_json("configmap", "kept", "-n", "durable")
    assert int(relabelled["metadata"]["resourceVersion"]) > list_rv


def test_initial_objects_are_not_duplicated_by_a_restart(cluster: KajitoriCluster) -> None:
    """Bootstrap runs again on restart without recreating or changing what exists."""
    namespaces = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert namespaces.count("namespace/default") == 1
    svc = cluster.get_json("service", "kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert int(svc["metadata"]["resourceVersion"]) < int(
        cluster.get_json("configmap", "kept", "-n", "durable")["metadata"]["resourceVersion"]
    )


def test_second_server_on_the_same_port_is_refused(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """kajitori up on a port in use exits 1 and says the address is already in use."""
    port = urlsplit(cluster.url).port
    assert port
    result = subprocess.run(
        [*KAJITORI_UP, "--data-dir", str(tmp_path / "second"), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "kajitori is ready" not in result.stdout
    assert result.stderr.startswith("kajitori: cannot start:")
    assert "address already in use" in result.stderr
    assert str(port) in result.stderr
    # The running cluster is unaffected.
    assert cluster.kubectl("get", "configmap", "kept", "-n", "durable").returncode == 0
