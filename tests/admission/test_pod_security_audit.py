"""PodSecurity's audit annotations in the audit log an API server writes.

One API server with a Metadata audit policy and a log file; the real kubectl
over HTTPS creates pods in a namespace labelled ``enforce=baseline`` and
``audit=restricted``. Each pod create's ResponseComplete event must carry
upstream's ``pod-security.kubernetes.io/enforce-policy`` and, for a pod the
audit level would refuse, ``pod-security.kubernetes.io/audit-violations``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.testing import kubectl

Object = dict[str, Any]

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: ["pods"]
"""


@pytest_asyncio.fixture
async def apiserver(tmp_path: Path) -> AsyncIterator[APIServerProcess]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    config = APIServerConfig(
        data_dir=tmp_path / "api",
        port=0,
        audit_policy_file=policy,
        audit_log_path=str(tmp_path / "audit.log"),
    )
    process = APIServerProcess(config)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


async def run_kubectl(process: APIServerProcess, *args: str, stdin: str | None = None) -> Any:
    # kubectl blocks: run it off the loop that serves it.
    path = process.config.kubeconfig_path
    return await asyncio.to_thread(kubectl.run, path, args, stdin=stdin, check=False)


async def pod_create_events(log: Path, count: int) -> list[Object]:
    """The ResponseComplete events of pod creates, once ``count`` are in the log (5 s at most)."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        events = [json.loads(line) for line in lines]
        creates = [
            e
            for e in events
            if e.get("verb") == "create"
            and e.get("stage") == "ResponseComplete"
            and e.get("objectRef", {}).get("resource") == "pods"
        ]
        if len(creates) >= count:
            return creates
        assert asyncio.get_running_loop().time() < deadline, f"{len(creates)} pod creates logged"
        await asyncio.sleep(0.05)


async def test_audit_annotations_reach_the_audit_log(
    apiserver: APIServerProcess, tmp_path: Path
) -> None:
    ns = "audited"
    manifest = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns},
        },
    ]
    for obj in manifest:
        created = await run_kubectl(apiserver, "create", "-f", "-", stdin=json.dumps(obj))
        assert created.returncode == 0, created.stderr
    plain = await run_kubectl(apiserver, "run", "plain", "-n", ns, "--image=busybox")
    assert plain.returncode == 0, plain.stderr
    refused = await run_kubectl(
        apiserver, "run", "priv", "-n", ns, "--image=busybox", "--privileged"
    )
    assert refused.returncode == 1
    first, second = await pod_create_events(tmp_path / "audit.log", 2)
    assert first["objectRef"]["name"] == "plain"
    assert first["responseStatus"]["code"] == 201
    annotations = first["annotations"]
    assert annotations["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert annotations["pod-security.kubernetes.io/audit-violations"] == (
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "plain" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "plain" must set '
        'securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
        '"plain" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container '
        '"plain" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    assert second["responseStatus"]["code"] == 403
    assert second["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert second["annotations"]["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": privileged (container "priv" must not '
        "set securityContext.privileged=true), allowPrivilegeEscalation != false"
    )
