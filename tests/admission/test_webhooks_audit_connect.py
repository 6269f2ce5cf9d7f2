"""Admission follow-ups end to end: audit annotations, CONNECT, DeleteOptions and evictions.

One audited API server (a real audit log file) with a simulated node whose
pods' streams are local processes (tests/kubelet/fake_streaming.py), a real
TLS webhook on 127.0.0.1, the real kubectl and the official client. Checked
against upstream's behaviour:

* admission's audit annotations reach the audit event: webhooks'
  ``auditAnnotations``, the mutation and (Request level and up only) patch
  records, failed-open records, ValidatingAdmissionPolicy's Audit action and
  its ``auditAnnotations``;
* exec and attach are admitted as CONNECT with their options as the object,
  and a refusal is what kubectl prints;
* DELETE reviews carry the request's DeleteOptions (a pod's grace period as
  settled); an eviction is a CREATE of a ``policy/v1 Eviction`` and its pod
  deletion is not reviewed again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException
from tests.admission.webhook_server import WebhookServer
from tests.kubelet.fake_streaming import StreamingCluster, kubectl

from kajitori.client import rest
from kajitori.cmd import apiserver

Object = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: Metadata
    namespaces: ["metadata-level"]
  - level: Request
"""
MUTATING = rest.Resource(GROUP, "v1", "mutatingwebhookconfigurations", False)
VALIDATING = rest.Resource(GROUP, "v1", "validatingwebhookconfigurations", False)
POLICIES = rest.Resource(GROUP, "v1", "validatingadmissionpolicies", False)
BINDINGS = rest.Resource(GROUP, "v1", "validatingadmissionpolicybindings", False)


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
async def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[StreamingCluster, Path]]:
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text(POLICY)
    log = tmp_path / "audit.log"
    plain = apiserver.APIServerConfig

    def audited(**fields: Any) -> apiserver.APIServerConfig:
        return plain(**fields, audit_policy_file=policy, audit_log_path=str(log))

    # StreamingCluster builds its APIServerConfig itself: have it audited.
    monkeypatch.setattr(apiserver, "APIServerConfig", audited)
    async with StreamingCluster(tmp_path) as running:
        monkeypatch.undo()
        yield running, log


def webhook(
    server: WebhookServer, name: str, path: str, rules: list[Object], **extra: Any
) -> Object:
    return {
        "name": name,
        "clientConfig": {"url": server.url(path), "caBundle": server.ca_bundle},
        "rules": rules,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **extra,
    }


def rule(resources: list[str], operations: list[str]) -> Object:
    return {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": resources,
        "operations": operations,
    }


def official(running: StreamingCluster) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(str(running.kubeconfig))


async def events_for(log: Path, match: Any, count: int = 1) -> list[Object]:
    """The ResponseComplete events ``match`` selects, once ``count`` of them were written."""
    deadline = time.monotonic() + 10
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        found = [e for e in map(json.loads, lines) if match(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def created(namespace: str, resource: str) -> Any:
    def match(event: Object) -> bool:
        ref = event.get("objectRef") or {}
        return (
            event["verb"] == "create"
            and ref.get("resource") == resource
            and ref.get("namespace") == namespace
            and not ref.get("subresource")
        )

    return match


# ----- audit annotations ----------------------------------------------------------------


def _patching(request: Object) -> Object:
    # Keys out of order and HTML characters: the annotation writes them as Go does.
    patch = [{"value": "a<b>&c", "path": "/metadata/annotations/patched", "op": "add"}]
    return {
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        "auditAnnotations": {"decision": "patched <ok>"},
    }


async def test_admission_audit_annotations_reach_the_audit_log(
    cluster: tuple[StreamingCluster, Path], hook: WebhookServer
) -> None:
    running, log = cluster
    admin = running.admin
    for ns in ("metadata-level", "request-level"):
        await admin.create(rest.NAMESPACES, {"metadata": {"name": ns}})
    hook.answers["/patch"] = _patching
    hook.answers["/note"] = lambda _r: {"allowed": True, "auditAnnotations": {"seen": "yes"}}
    configmaps = [rule(["configmaps"], ["CREATE"])]
    ours = {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["metadata-level", "request-level"],
                }
            ]
        }
    }
    secrets_only = webhook(hook, "skip.example.com", "/skip", [rule(["secrets"], ["CREATE"])])
    patching = webhook(hook, "label.example.com", "/patch", configmaps, **ours)
    await admin.create(
        MUTATING, {"metadata": {"name": "audit-m"}, "webhooks": [secrets_only, patching]}
    )
    down = webhook(hook, "down.example.com", "/down", configmaps, failurePolicy="Ignore", **ours)
    down["clientConfig"] = {"url": "https://127.0.0.1:1/down", "caBundle": hook.ca_bundle}
    note = webhook(hook, "note.example.com", "/note", configmaps, **ours)
    await admin.create(VALIDATING, {"metadata": {"name": "audit-v"}, "webhooks": [down, note]})
    await admin.create(POLICIES, _audited_policy())
    await admin.create(BINDINGS, _audited_binding())

    for ns in ("metadata-level", "request-level"):
        body = {"metadata": {"name": "cm", "annotations": {"a": "b"}}, "data": {"k": "v"}}
        stored = await admin.create(rest.CONFIGMAPS, body, namespace=ns)
        assert stored["metadata"]["annotations"] == {"a": "b", "patched": "a<b>&c"}

    mutation = '{"configuration":"audit-m","webhook":"label.example.com","mutated":true}'
    failure = (
        '[{"message":"no k=v here","policy":"audit-policy","binding":"audit-binding",'
        '"expressionIndex":0,"validationActions":["Audit","Warn"]}]'
    )
    expected = {
        # Authorization's record (the admin is in system:masters: no reason given).
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "",
        "label.example.com/decision": "patched <ok>",
        "mutation.webhook.admission.k8s.io/round_0_index_1": mutation,
        "failed-open.validating.webhook.admission.k8s.io/round_0_index_0": "down.example.com",
        "note.example.com/seen": "yes",
        "validation.policy.admission.k8s.io/validation_failure": failure,
        "audit-policy/keys": "k",
    }
    (metadata,) = await events_for(log, created("metadata-level", "configmaps"))
    assert metadata["level"] == "Metadata"
    assert metadata["annotations"] == expected
    (request,) = await events_for(log, created("request-level", "configmaps"))
    assert request["level"] == "Request"
    # The patch is recorded for Request and up only, as Go writes it (keys sorted, <> escaped).
    patch = (
        '{"configuration":"audit-m","webhook":"label.example.com",'
        '"patch":[{"op":"add","path":"/metadata/annotations/patched",'
        '"value":"a\\u003cb\\u003e\\u0026c"}],"patchType":"JSONPatch"}'
    )
    assert request["annotations"] == {
        **expected,
        "patch.webhook.admission.k8s.io/round_0_index_1": patch,
    }

    # A refused request records the refusal.
    code, _, err = await kubectl(
        running.kubeconfig, "get", "cm", "-n", "request-level", "--as=jane"
    )
    assert code == 1 and "forbidden" in err

    def refused(event: Object) -> bool:
        return event["verb"] == "list" and event["responseStatus"]["code"] == 403

    (denied,) = await events_for(log, refused)
    assert denied["annotations"]["authorization.k8s.io/decision"] == "forbid"


def _audited_policy() -> Object:
    return {
        "metadata": {"name": "audit-policy"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [{"expression": "object.data.k != 'v'", "message": "no k=v here"}],
            "auditAnnotations": [
                {"key": "keys", "valueExpression": "object.data.map(k, k).join(',')"}
            ],
        },
    }


def _audited_binding() -> Object:
    return {
        "metadata": {"name": "audit-binding"},
        "spec": {
            "policyName": "audit-policy",
            "validationActions": ["Audit", "Warn"],
            "matchResources": {
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": ["metadata-level", "request-level"],
                        }
                    ]
                }
            },
        },
    }


# ----- CONNECT ----------------------------------------------------------------------------


def _no_rm(request: Object) -> Object:
    command = (request.get("object") or {}).get("command") or []
    if command[:1] == ["rm"]:
        return {"allowed": False, "status": {"message": "no rm in here", "code": 403}}
    return {"allowed": True}


async def test_exec_and_attach_are_admitted_as_connect(
    cluster: tuple[StreamingCluster, Path], hook: WebhookServer
) -> None:
    running, _ = cluster
    kc = running.kubeconfig
    await running.run_pod("shell")
    hook.answers["/exec"] = _no_rm
    rules = [rule(["pods/exec"], ["CONNECT"])]
    await running.admin.create(
        VALIDATING,
        {
            "metadata": {"name": "connect"},
            "webhooks": [webhook(hook, "exec.example.com", "/exec", rules)],
        },
    )

    assert await kubectl(kc, "exec", "shell", "--", "echo", "hi") == (0, "hi\n", "")
    request = hook.calls("/exec")[-1].request
    assert request["operation"] == "CONNECT"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "PodExecOptions"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert request["subResource"] == "exec"
    assert request["requestKind"] == request["kind"]
    assert (request["name"], request["namespace"]) == ("shell", "default")
    assert request["object"] == {
        "kind": "PodExecOptions",
        "apiVersion": "v1",
        "stdout": True,
        "stderr": True,
        "container": "main",
        "command": ["echo", "hi"],
    }
    assert request["oldObject"] is None and request["options"] is None

    started = len(running.fake.processes)
    code, out, err = await kubectl(kc, "exec", "shell", "--", "rm", "-rf", "/tmp/x")
    assert (code, out) == (1, "")
    # kubectl tries a WebSocket, then SPDY, and prints the second refusal's Status message.
    assert err.strip() == (
        'error: unable to upgrade connection: admission webhook "exec.example.com" '
        "denied the request: no rm in here"
    )
    assert len(running.fake.processes) == started  # refused before the kubelet was asked

    # ValidatingAdmissionPolicy sees CONNECT too: its object is the options.
    await running.admin.create(POLICIES, _no_interactive_attach())
    binding = {"policyName": "no-stdin-attach", "validationActions": ["Deny"]}
    await running.admin.create(BINDINGS, {"metadata": {"name": "no-stdin-attach"}, "spec": binding})
    code, _, err = await kubectl(kc, "attach", "-i", "shell", timeout=20)
    assert code == 1
    assert err.strip().endswith(
        "ValidatingAdmissionPolicy 'no-stdin-attach' with binding 'no-stdin-attach' "
        "denied request: attach without stdin only"
    )


def _no_interactive_attach() -> Object:
    return {
        "metadata": {"name": "no-stdin-attach"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CONNECT"],
                        "resources": ["pods/attach"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.kind == 'PodAttachOptions' && !has(object.stdin)",
                    "message": "attach without stdin only",
                }
            ],
        },
    }


# ----- DeleteOptions and evictions --------------------------------------------------------


def _keep(request: Object) -> Object:
    if request["name"] == "keep":
        return {"allowed": False, "status": {"message": "keep stays"}}
    return {"allowed": True}


async def test_delete_options_and_evictions_reach_admission_as_upstream(
    cluster: tuple[StreamingCluster, Path], hook: WebhookServer
) -> None:
    running, _ = cluster
    kc = running.kubeconfig
    for name in ("gone", "evicted", "keep"):
        await running.run_pod(name)
    hook.answers["/pods"] = _keep
    rules = [rule(["pods"], ["DELETE"]), rule(["pods/eviction"], ["CREATE"])]
    await running.admin.create(
        VALIDATING,
        {
            "metadata": {"name": "pods"},
            "webhooks": [webhook(hook, "pods.example.com", "/pods", rules)],
        },
    )

    code, _, err = await kubectl(kc, "delete", "pod", "gone", "--grace-period=7", "--wait=false")
    assert code == 0, err
    (deleted,) = [c.request for c in hook.calls("/pods") if c.request["name"] == "gone"]
    assert deleted["operation"] == "DELETE"
    assert deleted["options"] == {
        "kind": "DeleteOptions",
        "apiVersion": "meta.k8s.io/v1",
        "gracePeriodSeconds": 7,
        "propagationPolicy": "Background",
    }
    assert deleted["object"] is None and deleted["oldObject"]["metadata"]["name"] == "gone"

    api = official(running)
    core = k8s.CoreV1Api(api)

    def evict(name: str, grace: int) -> Any:
        body = k8s.V1Eviction(
            metadata=k8s.V1ObjectMeta(name=name),
            delete_options=k8s.V1DeleteOptions(grace_period_seconds=grace),
        )
        return core.create_namespaced_pod_eviction(name, "default", body)

    await asyncio.to_thread(evict, "evicted", 3)
    (eviction,) = [c.request for c in hook.calls("/pods") if c.request["name"] == "evicted"]
    assert eviction["operation"] == "CREATE"
    assert eviction["kind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert eviction["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert eviction["subResource"] == "eviction"
    assert eviction["object"]["apiVersion"] == "policy/v1"
    assert eviction["object"]["metadata"] == {"name": "evicted", "namespace": "default"}
    assert eviction["object"]["deleteOptions"]["gracePeriodSeconds"] == 3
    assert eviction["options"]["kind"] == "CreateOptions"
    pod = await running.admin.get(rest.PODS, "evicted", namespace="default")
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 3

    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(evict, "keep", 1)
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["message"] == (
        'admission webhook "pods.example.com" denied the request: keep stays'
    )
    pod = await running.admin.get(rest.PODS, "keep", namespace="default")
    assert "deletionTimestamp" not in pod["metadata"]

    # Policies see the same: an Eviction object, a DELETE's options.
    await running.run_pod("now")
    for name, rules, expression, message in _GRACE_POLICIES:
        await running.admin.create(POLICIES, _policy(name, rules, expression, message))
        binding = {"policyName": name, "validationActions": ["Deny"]}
        await running.admin.create(BINDINGS, {"metadata": {"name": name}, "spec": binding})
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(evict, "now", 0)
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == (
        'pods "now" is forbidden: '
        "ValidatingAdmissionPolicy 'eviction-grace' with binding 'eviction-grace' "
        "denied request: evictions need a grace period"
    )
    code, _, err = await kubectl(kc, "delete", "pod", "now", "--grace-period=0", "--force")
    assert code == 1
    assert err.strip().endswith(
        "ValidatingAdmissionPolicy 'delete-grace' with binding 'delete-grace' "
        "denied request: no immediate deletes"
    )
    code, _, err = await kubectl(kc, "delete", "pod", "now", "--wait=false")
    assert code == 0, err  # the pod's own 30 s grace period is what the policy sees
    api.close()


_GRACE_POLICIES = (
    (
        "eviction-grace",
        {"resources": ["pods/eviction"], "operations": ["CREATE"]},
        "object.kind == 'Eviction' && object.deleteOptions.gracePeriodSeconds > 0",
        "evictions need a grace period",
    ),
    (
        "delete-grace",
        {"resources": ["pods"], "operations": ["DELETE"]},
        "request.options.gracePeriodSeconds > 0",
        "no immediate deletes",
    ),
)


def _policy(name: str, rules: Object, expression: str, message: str) -> Object:
    constraint = {"apiGroups": [""], "apiVersions": ["v1"], **rules}
    return {
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {"resourceRules": [constraint]},
            "validations": [{"expression": expression, "message": message}],
        },
    }
