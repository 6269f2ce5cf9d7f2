"""Creates on ``pods/binding``, ``bindings`` and ``serviceaccounts/token`` go through admission.

As upstream's handler and REST storage admit them: mutating admission on the
decoded object, then the storage's own checks, then validating admission,
with the subresource's kind (``v1 Binding``, ``authentication.k8s.io/v1
TokenRequest``), the subresource, the URL's name and namespace and operation
CREATE. Against one in-process cluster (its scheduler and one simulated node),
a real TLS webhook, the official ``kubernetes`` client and the real kubectl:

* a validating webhook and a ValidatingAdmissionPolicy on ``pods/binding``
  refuse bindings with their messages (and the older ``bindings`` resource);
  a mutating webhook's annotation reaches the bound pod;
* the same on ``serviceaccounts/token``, and a MutatingAdmissionPolicy that
  shortens ``spec.expirationSeconds`` is honoured by the token issued;
* the scheduler still binds pods, where policies match without refusing and
  where nothing matches;
* updates on ``pods/ephemeralcontainers`` and ``pods/resize`` reach webhooks
  and policies naming those subresources, as UPDATEs of the Pod.

Webhooks and policies select the test's own namespaces (by label), so the
system's own bindings and tokens elsewhere are not theirs.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.admission.webhook_server import WebhookServer, deny, json_patch

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False, scheduler=True, nodes=1)

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"
LABEL = "subresource-test"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api_client(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    api = cluster.api_client()
    yield api
    api.close()


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> str:
    """A fresh namespace labelled ``subresource-test=<its name>``, with a ServiceAccount."""
    name = f"sub-{uuid.uuid4().hex[:8]}"
    meta = client.V1ObjectMeta(name=name, labels={LABEL: name})
    core.create_namespace(client.V1Namespace(metadata=meta))
    for account in ("default", "app"):  # no controller makes "default" here
        core.create_namespaced_service_account(
            name, client.V1ServiceAccount(metadata={"name": account})
        )
    return name


def apply(cluster: InProcessCluster, *objects: Object) -> None:
    body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def selector(ns: str) -> Object:
    return {"matchLabels": {LABEL: ns}}


def rule(resource: str, operation: str = "CREATE") -> Object:
    return {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": [operation],
        "resources": [resource],
    }


def webhooks(
    cluster: InProcessCluster,
    hook: WebhookServer,
    ns: str,
    kind: str,
    resource: str,
    path: str,
    operation: str = "CREATE",
) -> None:
    """One webhook of ``kind`` (Mutating/Validating) for ``operation``s of ``resource`` in ``ns``."""
    webhook = {
        "name": f"{path.strip('/')}.example.com",
        "clientConfig": {"url": hook.url(path), "caBundle": hook.ca_bundle},
        "rules": [rule(resource, operation)],
        "namespaceSelector": selector(ns),
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    config = {
        "apiVersion": GV,
        "kind": f"{kind}WebhookConfiguration",
        "metadata": {"name": f"{ns}-{path.strip('/')}"},
        "webhooks": [webhook],
    }
    apply(cluster, config)


def policy(
    cluster: InProcessCluster,
    ns: str,
    kind: str,
    resource: str,
    spec: Object,
    operation: str = "CREATE",
    **binding: Any,
) -> str:
    """A ``kind`` (Validating/Mutating) AdmissionPolicy on ``resource``, bound to ``ns``."""
    name = f"{ns}-{uuid.uuid4().hex[:4]}"
    body = {"matchConstraints": {"resourceRules": [rule(resource, operation)]}, **spec}
    bound = {"policyName": name, "matchResources": {"namespaceSelector": selector(ns)}, **binding}
    apply(
        cluster,
        {
            "apiVersion": GV,
            "kind": f"{kind}AdmissionPolicy",
            "metadata": {"name": name},
            "spec": body,
        },
        {
            "apiVersion": GV,
            "kind": f"{kind}AdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": bound,
        },
    )
    return name


def unscheduled_pod(core: client.CoreV1Api, ns: str, name: str) -> None:
    """A pod the default scheduler leaves alone (another scheduler's), for manual bindings."""
    spec = {"schedulerName": "manual", "containers": [{"name": "c", "image": "busybox"}]}
    core.create_namespaced_pod(ns, client.V1Pod(metadata={"name": name}, spec=spec))


def bind(core: client.CoreV1Api, ns: str, pod: str, node: str) -> None:
    body = client.V1Binding(
        metadata=client.V1ObjectMeta(name=pod),
        target=client.V1ObjectReference(kind="Node", name=node),
    )
    # The generated client cannot read the Status answer as a V1Binding: take it raw.
    core.create_namespaced_pod_binding(pod, ns, body, _preload_content=False)


def refusal(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)["message"]


def wait_for(predicate: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
    return found


# ----- pods/binding ---------------------------------------------------------------------------


def test_a_validating_webhook_sees_and_refuses_pod_bindings(
    cluster: InProcessCluster, core: client.CoreV1Api, hook: WebhookServer, ns: str
) -> None:
    hook.answers["/no-bind"] = deny("node-a is closed", 403)
    webhooks(cluster, hook, ns, "Validating", "pods/binding", "/no-bind")
    unscheduled_pod(core, ns, "web")

    status, message = refusal(lambda: bind(core, ns, "web", "node-a"))
    assert (status, message) == (
        403,
        'admission webhook "no-bind.example.com" denied the request: node-a is closed',
    )
    assert core.read_namespaced_pod("web", ns).spec.node_name is None
    request = hook.calls("/no-bind")[-1].request
    assert request["operation"] == "CREATE"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "Binding"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert request["subResource"] == "binding"
    assert (request["name"], request["namespace"]) == ("web", ns)
    assert request["object"]["kind"] == "Binding"
    assert request["object"]["metadata"] == {"name": "web", "namespace": ns}
    assert request["object"]["target"] == {"kind": "Node", "name": "node-a"}
    assert request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}


def test_a_mutating_webhook_annotates_the_bound_pod(
    cluster: InProcessCluster, core: client.CoreV1Api, hook: WebhookServer, ns: str
) -> None:
    # A Binding's annotations are copied onto the pod it binds.
    add = {"op": "add", "path": "/metadata/annotations", "value": {"bound-by": "webhook"}}
    hook.answers["/annotate"] = json_patch(add)
    webhooks(cluster, hook, ns, "Mutating", "pods/binding", "/annotate")
    unscheduled_pod(core, ns, "web")
    bind(core, ns, "web", "node-a")
    pod = core.read_namespaced_pod("web", ns)
    assert pod.spec.node_name == "node-a"
    assert pod.metadata.annotations == {"bound-by": "webhook"}


def test_a_validating_policy_refuses_pod_bindings_old_and_new(
    cluster: InProcessCluster, core: client.CoreV1Api, api_client: client.ApiClient, ns: str
) -> None:
    check = {"expression": "object.target.name != 'node-b'", "message": "not on node-b"}
    new = policy(cluster, ns, "Validating", "pods/binding", {"validations": [check]},
                 validationActions=["Deny"])  # fmt: skip
    old = policy(cluster, ns, "Validating", "bindings", {"validations": [check]},
                 validationActions=["Deny"])  # fmt: skip
    unscheduled_pod(core, ns, "web")

    status, message = refusal(lambda: bind(core, ns, "web", "node-b"))
    assert (status, message) == (
        422,  # a validation without a reason: Invalid, as upstream
        f"pods \"web\" is forbidden: ValidatingAdmissionPolicy '{new}' with binding '{new}' "
        "denied request: not on node-b",
    )
    # The older POST namespaces/{ns}/bindings is a CREATE of resource bindings.
    legacy = {"metadata": {"name": "web"}, "target": {"kind": "Node", "name": "node-b"}}
    status, message = refusal(lambda: legacy_create(api_client, ns, legacy))
    assert (status, message) == (
        422,  # a validation without a reason: Invalid, as upstream
        f"bindings \"web\" is forbidden: ValidatingAdmissionPolicy '{old}' with binding '{old}' "
        "denied request: not on node-b",
    )
    bind(core, ns, "web", "node-c")  # a binding the policies allow
    assert core.read_namespaced_pod("web", ns).spec.node_name == "node-c"


def legacy_create(api_client: client.ApiClient, ns: str, body: Object) -> None:
    """``POST namespaces/{ns}/bindings``; ApiException on a refusal (call_api raises none)."""
    method, url, headers, data, _ = api_client.param_serialize(
        "POST",
        f"/api/v1/namespaces/{ns}/bindings",
        header_params={"Content-Type": "application/json"},
        body=body,
    )
    response = api_client.call_api(method, url, headers, data)
    response.read()
    if response.status >= 300:
        raise ApiException(http_resp=response)


def test_the_scheduler_still_binds(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    check = {"expression": "object.target.name != 'node-b'", "message": "not on node-b"}
    policy(cluster, ns, "Validating", "pods/binding", {"validations": [check]},
           validationActions=["Deny"])  # fmt: skip
    other = f"other-{uuid.uuid4().hex[:8]}"  # no webhook or policy selects it
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    core.create_namespaced_service_account(
        other, client.V1ServiceAccount(metadata={"name": "default"})
    )
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    for namespace in (ns, other):  # matched and allowed; nothing matches
        name = f"sched-{uuid.uuid4().hex[:6]}"
        core.create_namespaced_pod(namespace, client.V1Pod(metadata={"name": name}, spec=spec))
        node = wait_for(lambda: core.read_namespaced_pod(name, namespace).spec.node_name)  # noqa: B023
        assert node
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


# ----- serviceaccounts/token ----------------------------------------------------------------


def token_request(core: client.CoreV1Api, ns: str, **spec: Any) -> Object:
    body = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(**spec))
    answer = core.create_namespaced_service_account_token("app", ns, body, _preload_content=False)
    decoded: Object = json.loads(answer.data)
    return decoded


def claims(token: str) -> Object:
    payload = token.split(".")[1]
    decoded: Object = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_a_webhook_and_a_policy_refuse_token_requests(
    cluster: InProcessCluster, core: client.CoreV1Api, hook: WebhookServer, ns: str
) -> None:
    def no_evil(request: Object) -> Object:
        if "evil" in request["object"]["spec"]["audiences"]:
            return {"allowed": False, "status": {"message": "no evil audiences", "code": 403}}
        return {"allowed": True}

    hook.answers["/tokens"] = no_evil
    webhooks(cluster, hook, ns, "Validating", "serviceaccounts/token", "/tokens")
    short = {
        "expression": "object.spec.expirationSeconds <= 7200",
        "message": "tokens live two hours at most",
    }
    name = policy(cluster, ns, "Validating", "serviceaccounts/token", {"validations": [short]},
                  validationActions=["Deny"])  # fmt: skip

    status, message = refusal(lambda: token_request(core, ns, audiences=["evil"]))
    assert (status, message) == (
        403,
        'admission webhook "tokens.example.com" denied the request: no evil audiences',
    )
    request = hook.calls("/tokens")[-1].request
    assert request["kind"] == {
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
    }
    assert request["resource"] == {"group": "", "version": "v1", "resource": "serviceaccounts"}
    assert (request["subResource"], request["operation"]) == ("token", "CREATE")
    assert (request["name"], request["namespace"]) == ("app", ns)
    # Validating admission sees the request as completed: default expiry, name, namespace.
    assert request["object"]["spec"]["expirationSeconds"] == 3600
    assert request["object"]["metadata"]["name"] == "app"
    assert request["object"]["metadata"]["namespace"] == ns

    status, message = refusal(
        lambda: token_request(core, ns, audiences=["api"], expiration_seconds=86400)
    )
    assert (status, message) == (
        422,  # a validation without a reason: Invalid, as upstream
        f"serviceaccounts \"app\" is forbidden: ValidatingAdmissionPolicy '{name}' with "
        f"binding '{name}' denied request: tokens live two hours at most",
    )
    issued = token_request(core, ns, audiences=["api"])
    assert issued["status"]["token"]


def test_a_mutating_policy_shortens_tokens(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    shorten = {
        "patchType": "JSONPatch",
        "jsonPatch": {
            "expression": "[JSONPatch{op: 'replace', path: '/spec/expirationSeconds', value: 1200}]"
        },
    }
    policy(cluster, ns, "Mutating", "serviceaccounts/token",
           {"mutations": [shorten], "reinvocationPolicy": "Never"})  # fmt: skip
    issued = token_request(core, ns, audiences=["api"], expiration_seconds=86400)
    assert issued["spec"]["expirationSeconds"] == 1200
    token = claims(issued["status"]["token"])
    assert token["exp"] - token["iat"] == 1200
    assert token["aud"] == ["api"]


# ----- pods/ephemeralcontainers and pods/resize updates ---------------------------------------


def test_pod_subresource_updates_are_admitted_as_pod_updates(
    cluster: InProcessCluster, core: client.CoreV1Api, hook: WebhookServer, ns: str
) -> None:
    hook.answers["/debug"] = deny("no debugging here", 403)
    webhooks(cluster, hook, ns, "Validating", "pods/ephemeralcontainers", "/debug", "UPDATE")
    grow = {"expression": "object.spec.containers[0].resources.requests.cpu != '2'",
            "message": "no more than one cpu"}  # fmt: skip
    name = policy(cluster, ns, "Validating", "pods/resize", {"validations": [grow]},
                  "UPDATE", validationActions=["Deny"])  # fmt: skip
    resources = {"requests": {"cpu": "1"}, "limits": {"cpu": "4"}}
    spec = {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}
    core.create_namespaced_pod(ns, client.V1Pod(metadata={"name": "web"}, spec=spec))
    wait_for(lambda: core.read_namespaced_pod("web", ns).spec.node_name)

    debug = {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}
    status, message = refusal(
        lambda: core.patch_namespaced_pod_ephemeralcontainers("web", ns, debug)
    )
    assert (status, message) == (
        403,
        'admission webhook "debug.example.com" denied the request: no debugging here',
    )
    request = hook.calls("/debug")[-1].request
    assert (request["operation"], request["subResource"]) == ("UPDATE", "ephemeralcontainers")
    assert request["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert request["object"]["spec"]["ephemeralContainers"][0]["name"] == "dbg"
    assert request["oldObject"]["spec"].get("ephemeralContainers") is None

    resize = {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}
    status, message = refusal(lambda: core.patch_namespaced_pod_resize("web", ns, resize))
    assert (status, message) == (
        422,
        f"pods \"web\" is forbidden: ValidatingAdmissionPolicy '{name}' with binding '{name}' "
        "denied request: no more than one cpu",
    )
    allowed = {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}]}}
    resized = core.patch_namespaced_pod_resize("web", ns, allowed)
    assert resized.spec.containers[0].resources.requests["cpu"] == "3"
