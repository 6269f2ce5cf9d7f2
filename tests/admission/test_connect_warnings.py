"""Warnings from the admission of CONNECT requests reach the client as ``Warning`` headers.

Upstream's warning recorder writes admission's warnings on whatever answers
the request; for CONNECT (exec, attach, portforward, the proxies) that is
the refusal, the ``101`` of an upgrade or the proxied answer. Checked against
an in-process cluster with the official ``kubernetes`` client (a
ValidatingAdmissionPolicy's Warn action gives the warnings), and the ASGI
wrapper on its own for the upgrade's ``websocket.accept``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.server.handlers import connect_admission
from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api_client(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    api = cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def ns(api_client: client.ApiClient) -> str:
    """A fresh namespace (labelled for the bindings) with an unscheduled pod ``web``."""
    core = client.CoreV1Api(api_client)
    name = f"cw-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"cw": name}))
    )
    core.create_namespaced_service_account(
        name, client.V1ServiceAccount(metadata={"name": "default"})
    )
    spec = {"schedulerName": "none", "containers": [{"name": "c", "image": "busybox"}]}
    core.create_namespaced_pod(name, client.V1Pod(metadata={"name": "web"}, spec=spec))
    return name


def policy(cluster: InProcessCluster, ns: str, subresource: str, message: str, action: str) -> str:
    """A policy failing every CONNECT of ``pods/<subresource>`` in ``ns``, bound with ``action``."""
    name = f"{ns}-{subresource}-{action.lower()}"
    rules = [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CONNECT"],
            "resources": [f"pods/{subresource}"],
        }
    ]
    spec = {
        "matchConstraints": {"resourceRules": rules},
        "validations": [{"expression": "false", "message": message, "reason": "Forbidden"}],
    }
    binding = {
        "policyName": name,
        "validationActions": [action],
        "matchResources": {"namespaceSelector": {"matchLabels": {"cw": ns}}},
    }
    objects = [
        {"apiVersion": GV, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
         "spec": spec},
        {"apiVersion": GV, "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name}, "spec": binding},
    ]  # fmt: skip
    body = {"apiVersion": "v1", "kind": "List", "items": objects}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    return name


def call(api_client: client.ApiClient, method: str, path: str) -> tuple[int, Object, list[str]]:
    """Status, decoded body and Warning headers of one request."""
    url, headers, data = api_client.param_serialize(method, path)[1:4]
    response = api_client.call_api(method, url, headers, data)
    body = response.read()
    warnings = response.response.headers.get_all("Warning") or []
    return response.status, json.loads(body) if body else {}, warnings


def warning(policy_name: str, message: str) -> str:
    return (
        f"299 - \"Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding "
        f"'{policy_name}': {message}\""
    )


def test_a_proxied_request_carries_admission_warnings(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    name = policy(cluster, ns, "proxy", "proxying is watched", "Warn")
    status, body, warnings = call(api_client, "GET", f"/api/v1/namespaces/{ns}/pods/web/proxy/")
    # Admitted with a warning; the pod has no address yet, so the proxy itself fails.
    assert status >= 400 and body["kind"] == "Status"
    assert warnings == [warning(name, "proxying is watched")]
    # Admission comes before the pod is looked up: a missing pod's 404 carries it too.
    status, _, warnings = call(api_client, "GET", f"/api/v1/namespaces/{ns}/pods/nope/proxy/")
    assert status == 404 and warnings == [warning(name, "proxying is watched")]


def test_a_refused_connect_carries_the_warnings_given_before(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    warned = policy(cluster, ns, "exec", "exec is logged", "Warn")
    denied = policy(cluster, ns, "exec", "no exec here", "Deny")
    status, body, warnings = call(
        api_client, "POST", f"/api/v1/namespaces/{ns}/pods/web/exec?command=ls&stdout=true"
    )
    assert status == 403
    assert body["message"] == (
        f"pods \"web\" is forbidden: ValidatingAdmissionPolicy '{denied}' with binding "
        f"'{denied}' denied request: no exec here"
    )
    assert warnings == [warning(warned, "exec is logged")]


async def test_the_upgrade_answer_gets_the_warnings() -> None:
    ctx = RequestContext(user=UserInfo("u", ()))
    sent: list[Object] = []

    async def send(message: Any) -> None:
        sent.append(message)

    wrapped = connect_admission.with_warnings(send, ctx)
    ctx.warn('say "hi"')
    await wrapped({"type": "websocket.accept", "subprotocol": "v5.channel.k8s.io"})
    await wrapped({"type": "websocket.send", "bytes": b"\x01out"})
    assert sent[0] == {
        "type": "websocket.accept",
        "subprotocol": "v5.channel.k8s.io",
        "headers": [(b"warning", b'299 - "say \\"hi\\""')],
    }
    assert sent[1] == {"type": "websocket.send", "bytes": b"\x01out"}
