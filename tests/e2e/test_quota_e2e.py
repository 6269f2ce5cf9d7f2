"""Quota with the real kubectl: ``kubectl create quota``, a refused pod, ``kubectl describe quota``."""

from __future__ import annotations

import json
import re

from kajitori.testing.cluster import KajitoriCluster, wait_until

NS = "quota-e2e"


def _pod(name: str) -> str:
    container = {
        "name": "nginx",
        "image": "nginx",
        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "100m"}},
    }
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [container]},
    }
    return json.dumps(body)


def _row(described: str, name: str) -> list[str]:
    """The Used and Hard columns of one resource in ``kubectl describe quota``."""
    for line in described.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return fields[1:]
    return []


def test_kubectl_quota_counts_refuses_and_describes(cluster: KajitoriCluster) -> None:
    """The controller fills Used, admission charges and refuses, describe shows Used/Hard."""
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("create", "quota", "compute", "-n", NS, "--hard=pods=2,requests.cpu=1")

    def describe() -> str:
        return cluster.kubectl("describe", "quota", "compute", "-n", NS).stdout

    wait_until(lambda: _row(describe(), "pods") == ["0", "2"], what="the controller's status")
    for name in ("p1", "p2"):
        cluster.kubectl("apply", "-f", "-", stdin=_pod(name))
    refused = cluster.kubectl("apply", "-f", "-", stdin=_pod("p3"), check=False)
    assert refused.returncode != 0
    assert re.search(
        r'pods "p3" is forbidden: exceeded quota: compute, requested: pods=1, '
        r"used: pods=2, limited: pods=2",
        refused.stderr,
    ), refused.stderr
    described = describe()
    assert "Resource" in described and "Used" in described and "Hard" in described
    assert _row(described, "pods") == ["2", "2"]
    assert _row(described, "requests.cpu") == ["200m", "1"]
    cluster.kubectl("delete", "pod", "p1", "-n", NS, "--grace-period=0", "--force")
    wait_until(lambda: _row(describe(), "pods") == ["1", "2"], what="the quota given back")
    cluster.kubectl("apply", "-f", "-", stdin=_pod("p3"))
