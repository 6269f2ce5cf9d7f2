"""The real kubectl reads /metrics; only users RBAC lets read it may (upstream's system:monitoring)."""

from __future__ import annotations

from kajitori.server import metrics
from kajitori.testing.cluster import KajitoriCluster


def test_kubectl_get_raw_metrics_counts_requests(cluster: KajitoriCluster) -> None:
    """After a kubectl create, /metrics has a POST configmaps series with code 201."""
    cluster.kubectl("create", "configmap", "metered", "--from-literal=a=b")
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    created = [
        value
        for name, labels, value in metrics.parse(text)
        if name == "apiserver_request_total"
        and labels["verb"] == "POST"
        and labels["resource"] == "configmaps"
        and labels["code"] == "201"
    ]
    assert created and sum(created) >= 1


def test_metrics_forbidden_to_unprivileged_user(cluster: KajitoriCluster) -> None:
    """A user without the system:monitoring role gets 403; one in system:monitoring reads it."""
    denied = cluster.kubectl("get", "--raw", "/metrics", "--as=jane", check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert 'cannot get path "/metrics"' in denied.stderr
    allowed = cluster.kubectl(
        "get", "--raw", "/metrics", "--as=prom", "--as-group=system:monitoring"
    )
    assert "apiserver_request_total" in allowed.stdout
