"""Audit logging end to end: the file a real ``kajitori up --audit-policy-file`` writes.

A RequestResponse policy (with health checks at None and ConfigMaps at
Metadata) is applied to Secrets written every way a client can (JSON,
kubectl's protobuf, merge and JSON patches, kubectl apply, lists and a
watch). The raw log must hold the expected upstream-shaped events and never
the secret value, plain or base64.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.https import https_client

from kajitori.testing.cluster import KajitoriCluster

PLAIN = "audit-me-never-4f2c9"
B64 = base64.b64encode(PLAIN.encode()).decode()
POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["configmaps"]
  - level: RequestResponse
"""
SECRET_YAML = f"""
apiVersion: v1
kind: Secret
metadata:
  name: applied
stringData:
  pw: {PLAIN}
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """Run the traffic against an audited cluster; yield the log path and some audit IDs."""
    work = tmp_path_factory.mktemp("audit")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    log = work / "logs" / "audit.log"
    flags = ["--audit-policy-file", str(policy), "--audit-log-path", str(log)]
    ids: dict[str, str] = {}
    with KajitoriCluster(work / "cluster", extra_args=flags) as cluster:
        with https_client(cluster.kubeconfig) as http:
            ids.update(_traffic(cluster, http))
    yield log, ids


def _traffic(cluster: KajitoriCluster, http: httpx.Client) -> dict[str, str]:
    base = "/api/v1/namespaces/default"
    created = http.post(f"{base}/secrets", json={"metadata": {"name": "json"}, "data": {"pw": B64}})
    created.raise_for_status()
    http.patch(
        f"{base}/secrets/json",
        json={"stringData": {"more": PLAIN}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    http.patch(
        f"{base}/secrets/json",
        json=[{"op": "replace", "path": "/data/pw", "value": B64}],
        headers={"Content-Type": "application/json-patch+json"},
    ).raise_for_status()
    cm = http.post(f"{base}/configmaps", json={"metadata": {"name": "c"}, "data": {"k": "v"}})
    cm.raise_for_status()
    with http.stream(
        "GET", f"{base}/secrets", params={"watch": "true", "timeoutSeconds": "1"}
    ) as w:
        for _ in w.iter_lines():
            pass
    http.get(f"{base}/secrets/json").raise_for_status()
    http.get(f"{base}/secrets/missing")
    cluster.kubectl("create", "secret", "generic", "proto", f"--from-literal=pw={PLAIN}")
    cluster.kubectl("apply", "-f", "-", stdin=SECRET_YAML)
    cluster.kubectl("get", "secrets", "-o", "yaml")
    http.get("/healthz").raise_for_status()
    return {
        "create": created.headers["audit-id"],
        "configmap": cm.headers["audit-id"],
    }


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_raw_log_never_contains_the_secret_value(audited: tuple[Path, dict[str, str]]) -> None:
    """Grep the file itself: neither the plain value nor its base64 appears anywhere."""
    log, _ = audited
    raw = log.read_bytes()
    assert raw, "the log must not be empty"
    assert PLAIN.encode() not in raw
    assert B64.encode() not in raw
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_create_is_logged_at_both_stages_with_redacted_objects(
    audited: tuple[Path, dict[str, str]],
) -> None:
    """The Secret create: RequestReceived then ResponseComplete, objects present but redacted."""
    log, ids = audited
    mine = [e for e in events(log) if e["auditID"] == ids["create"]]
    assert [e["stage"] for e in mine] == ["RequestReceived", "ResponseComplete"]
    done = mine[-1]
    assert done["level"] == "RequestResponse"
    assert done["verb"] == "create"
    assert done["requestURI"] == "/api/v1/namespaces/default/secrets"
    assert done["objectRef"] == {
        "resource": "secrets",
        "namespace": "default",
        "name": "json",
        "apiVersion": "v1",
    }
    assert done["responseStatus"]["code"] == 201
    assert "system:authenticated" in done["user"]["groups"]
    assert done["sourceIPs"] == ["127.0.0.1"]
    assert done["requestObject"]["data"] == {"pw": "<redacted>"}
    assert done["responseObject"]["data"] == {"pw": "<redacted>"}
    assert done["responseObject"]["metadata"]["name"] == "json"


def test_the_policy_picks_each_requests_level(audited: tuple[Path, dict[str, str]]) -> None:
    """ConfigMaps at Metadata (no objects), health checks not at all, watches get ResponseStarted."""
    log, ids = audited
    all_events = events(log)
    cm = [e for e in all_events if e["auditID"] == ids["configmap"]][-1]
    assert cm["level"] == "Metadata"
    assert "requestObject" not in cm and "responseObject" not in cm
    assert not [e for e in all_events if e["requestURI"].startswith("/healthz")]
    watch_ids = {e["auditID"] for e in all_events if "timeoutSeconds=1" in e["requestURI"]}
    assert len(watch_ids) == 1
    stages = [e["stage"] for e in all_events if e["auditID"] in watch_ids]
    assert stages == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    missing = [e for e in all_events if e["requestURI"].endswith("/secrets/missing")][-1]
    assert missing["responseStatus"]["code"] == 404
    assert missing["responseStatus"]["reason"] == "NotFound"
    verbs = {e["verb"] for e in all_events if e.get("objectRef", {}).get("resource") == "secrets"}
    assert {"create", "patch", "get", "list", "watch"} <= verbs
    agents = {e.get("userAgent", "") for e in all_events}
    assert any(a.startswith("kubectl") for a in agents)
