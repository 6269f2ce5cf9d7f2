"""Admission webhooks end to end: a kajitori cluster calls a real TLS webhook on 127.0.0.1.

Configurations are made through the official client, requests through the
real kubectl and the official client, and what the webhook received, what the
client printed and what was stored are checked. Each test works in a
namespace of its own and selects it with its webhooks' namespaceSelector
(``kubernetes.io/metadata.name``), so the cluster-wide configurations of one
test never touch another's requests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.admission.webhook_server import (
    WebhookServer,
    deny,
    json_patch,
    routed_namespace,
    slow,
)

from kajitori.auth import pki
from kajitori.testing import netns
from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
SERVICE_NAMESPACE = "webhook-system"


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer(dns_names=[f"hook.{SERVICE_NAMESPACE}.svc"]) as server:
        yield server


@pytest.fixture(scope="module")
def api(kajitori_module_cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    with kajitori_module_cluster.api_client() as api_client:
        yield api_client


class Setup:
    """One test's namespace and webhook configurations (removed afterwards)."""

    def __init__(
        self, cluster: InProcessCluster, api: client.ApiClient, server: WebhookServer, ns: str
    ) -> None:
        self.cluster, self.api, self.server, self.ns = cluster, api, server, ns
        self.registration = client.AdmissionregistrationV1Api(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.made: list[tuple[str, str]] = []

    def webhook(self, name: str, path: str, **fields: Any) -> Object:
        rules = fields.pop(
            "rules",
            [_rule(["configmaps"], operations=fields.pop("operations", ["CREATE"]))],
        )
        spec: Object = {
            "name": name,
            "clientConfig": {"url": self.server.url(path), "caBundle": self.server.ca_bundle},
            "rules": rules,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.ns}},
        }
        spec.update(fields)
        return spec

    def validating(self, name: str, *webhooks: Object) -> None:
        body = {"metadata": {"name": name}, "webhooks": list(webhooks)}
        self.registration.create_validating_webhook_configuration(body)
        self.made.append(("validating", name))

    def mutating(self, name: str, *webhooks: Object) -> None:
        body = {"metadata": {"name": name}, "webhooks": list(webhooks)}
        self.registration.create_mutating_webhook_configuration(body)
        self.made.append(("mutating", name))

    def configmap(self, name: str, **labels: str) -> Object:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.ns, "labels": labels},
            "data": {"k": "v"},
        }

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return self.cluster.kubectl(*args, stdin=stdin, check=check)

    def cleanup(self) -> None:
        for kind, name in self.made:
            if kind == "validating":
                self.registration.delete_validating_webhook_configuration(name)
            else:
                self.registration.delete_mutating_webhook_configuration(name)


def _rule(
    resources: list[str],
    *,
    operations: list[str] | None = None,
    groups: list[str] | None = None,
    versions: list[str] | None = None,
) -> Object:
    return {
        "apiGroups": groups if groups is not None else [""],
        "apiVersions": versions if versions is not None else ["v1"],
        "resources": resources,
        "operations": operations or ["CREATE"],
    }


@pytest.fixture
def setup(
    kajitori_module_cluster: InProcessCluster,
    api: client.ApiClient,
    hook: WebhookServer,
    request: pytest.FixtureRequest,
) -> Iterator[Setup]:
    ns = "wh-" + request.node.name.removeprefix("test_").replace("_", "-")[:40]
    kajitori_module_cluster.kubectl("create", "namespace", ns)
    made = Setup(kajitori_module_cluster, api, hook, ns)
    try:
        yield made
    finally:
        made.cleanup()


def _status(exc: ApiException) -> Object:
    status: Object = json.loads(exc.body)
    return status


# ----- allow, deny, mutate ---------------------------------------------------------------


def test_allowed_request_carries_the_admission_review(setup: Setup) -> None:
    setup.validating("allow-" + setup.ns, setup.webhook("allow.example.com", "/allow-review"))
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"), field_manager="tester")
    (call,) = setup.server.calls("/allow-review")
    assert call.query == "timeout=10s"
    assert call.review["apiVersion"] == "admission.k8s.io/v1"
    request = call.request
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["requestKind"] == request["kind"]
    assert request["requestResource"] == request["resource"]
    assert (request["name"], request["namespace"], request["operation"]) == (
        "cm",
        setup.ns,
        "CREATE",
    )
    assert request["userInfo"]["username"] == "kubernetes-admin"
    assert "system:masters" in request["userInfo"]["groups"]
    assert request["object"]["data"] == {"k": "v"}
    assert request["oldObject"] is None and request["dryRun"] is False
    assert request["options"] == {
        "kind": "CreateOptions",
        "apiVersion": "meta.k8s.io/v1",
        "fieldManager": "tester",
    }
    assert setup.core.read_namespaced_config_map("cm", setup.ns).data == {"k": "v"}


def test_options_carry_only_the_requests_own_field_manager(setup: Setup) -> None:
    """Without ``fieldManager`` the managedFields manager comes from the User-Agent, as
    upstream's, but the CreateOptions admission sees stay as the client sent them."""
    setup.validating("opts-" + setup.ns, setup.webhook("opts.example.com", "/opts"))
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("plain"))
    (call,) = setup.server.calls("/opts")
    assert call.request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    stored = setup.core.read_namespaced_config_map("plain", setup.ns)
    assert stored.metadata.managed_fields[0].manager == "OpenAPI-Generator"


def test_denial_is_upstreams_error_and_nothing_is_stored(setup: Setup) -> None:
    setup.server.answers["/deny"] = deny("configmaps are not welcome here")
    setup.validating("deny-" + setup.ns, setup.webhook("deny.example.com", "/deny"))
    result = setup.kubectl("create", "configmap", "cm", "-n", setup.ns, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'error: failed to create configmap: admission webhook "deny.example.com" '
        "denied the request: configmaps are not welcome here"
    )
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))
    assert raised.value.status == 400
    assert _status(raised.value)["message"] == (
        'admission webhook "deny.example.com" denied the request: configmaps are not welcome here'
    )
    with pytest.raises(ApiException) as missing:
        setup.core.read_namespaced_config_map("cm", setup.ns)
    assert missing.value.status == 404


def test_denial_code_comes_from_the_webhooks_status(setup: Setup) -> None:
    setup.server.answers["/deny-403"] = deny("not yours", code=403)
    setup.validating("deny403-" + setup.ns, setup.webhook("deny403.example.com", "/deny-403"))
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))
    assert raised.value.status == 403
    assert _status(raised.value)["code"] == 403


def test_mutation_by_json_patch_is_stored_and_validated(setup: Setup) -> None:
    setup.server.answers["/add-label"] = json_patch(
        {"op": "add", "path": "/metadata/labels/mutated", "value": "yes"},
        {"op": "replace", "path": "/data/k", "value": "patched"},
    )
    setup.mutating(
        "mutate-" + setup.ns,
        setup.webhook("mutate.example.com", "/add-label", operations=["CREATE", "UPDATE"]),
    )
    setup.validating("see-" + setup.ns, setup.webhook("see.example.com", "/see-mutated"))
    setup.kubectl("create", "-f", "-", stdin=json.dumps(setup.configmap("cm", app="x")))
    stored = setup.core.read_namespaced_config_map("cm", setup.ns)
    assert stored.metadata.labels == {"app": "x", "mutated": "yes"}
    assert stored.data == {"k": "patched"}
    (seen,) = setup.server.calls("/see-mutated")
    assert seen.request["object"]["metadata"]["labels"]["mutated"] == "yes"
    # An update is patched too, and keeps what the server carries over (uid, creation time).
    setup.kubectl("label", "configmap", "cm", "-n", setup.ns, "mutated=no", "--overwrite")
    updated = setup.core.read_namespaced_config_map("cm", setup.ns)
    assert updated.metadata.labels["mutated"] == "yes"
    assert updated.metadata.uid == stored.metadata.uid
    assert updated.metadata.creation_timestamp == stored.metadata.creation_timestamp
    update_call = setup.server.calls("/add-label")[-1].request
    assert update_call["operation"] == "UPDATE"
    assert update_call["oldObject"]["metadata"]["labels"]["mutated"] == "yes"
    assert update_call["options"]["kind"] == "UpdateOptions"


def test_reinvocation_if_needed_runs_an_earlier_webhook_again(setup: Setup) -> None:
    setup.mutating(
        "a-first-" + setup.ns,
        setup.webhook("first.example.com", "/first", reinvocationPolicy="IfNeeded"),
    )
    setup.server.answers["/second"] = json_patch(
        {"op": "add", "path": "/metadata/labels/second", "value": "ran"}
    )
    setup.mutating("b-second-" + setup.ns, setup.webhook("second.example.com", "/second"))
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm", app="x"))
    first = setup.server.calls("/first")
    assert len(first) == 2
    assert "second" not in first[0].request["object"]["metadata"]["labels"]
    assert first[1].request["object"]["metadata"]["labels"]["second"] == "ran"
    assert len(setup.server.calls("/second")) == 1


# ----- failures ------------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_webhook_fails_closed_or_open(setup: Setup) -> None:
    port = _closed_port()
    url = f"https://127.0.0.1:{port}/gone"
    closed = setup.webhook("closed.example.com", "/unused")
    closed["clientConfig"] = {"url": url}
    setup.validating("closed-" + setup.ns, closed)
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))
    assert raised.value.status == 500
    status = _status(raised.value)
    assert status["reason"] == "InternalError"
    assert status["message"] == (
        'Internal error occurred: failed calling webhook "closed.example.com": failed to call '
        f'webhook: Post "{url}?timeout=10s": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused"
    )
    setup.cleanup()
    setup.made.clear()
    opened = {**closed, "name": "open.example.com", "failurePolicy": "Ignore"}
    setup.validating("open-" + setup.ns, opened)
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))


def test_timeout_is_sent_and_enforced(setup: Setup) -> None:
    setup.server.answers["/slow"] = slow(3)
    setup.validating(
        "slow-" + setup.ns, setup.webhook("slow.example.com", "/slow", timeoutSeconds=1)
    )
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))
    url = setup.server.url("/slow")
    assert _status(raised.value)["message"] == (
        'Internal error occurred: failed calling webhook "slow.example.com": failed to call '
        f'webhook: Post "{url}?timeout=1s": context deadline exceeded'
    )
    assert setup.server.calls("/slow")[0].query == "timeout=1s"


def test_a_webhook_with_another_ca_is_not_trusted(setup: Setup) -> None:
    other_ca = pki.generate_ca("someone-else")
    webhook = setup.webhook("untrusted.example.com", "/x")
    webhook["clientConfig"]["caBundle"] = base64.b64encode(other_ca.cert_pem).decode()
    setup.validating("untrusted-" + setup.ns, webhook)
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))
    assert _status(raised.value)["message"].endswith(
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    )
    assert setup.server.calls("/x") == []


def test_a_patch_from_a_validating_webhook_is_a_bad_response(setup: Setup) -> None:
    setup.server.answers["/patching"] = json_patch({"op": "add", "path": "/data/x", "value": "1"})
    setup.validating("patching-" + setup.ns, setup.webhook("patching.example.com", "/patching"))
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("cm"))
    assert _status(raised.value)["message"] == (
        'Internal error occurred: failed calling webhook "patching.example.com": received '
        "invalid webhook response: validating webhook may not return response.patch"
    )


# ----- selection -------------------------------------------------------------------------------


def test_namespace_and_object_selectors(setup: Setup) -> None:
    setup.server.answers["/labelled"] = deny("labelled objects only here")
    setup.validating(
        "objsel-" + setup.ns,
        setup.webhook(
            "objsel.example.com",
            "/labelled",
            objectSelector={"matchLabels": {"guarded": "true"}},
        ),
    )
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("plain"))
    with pytest.raises(ApiException):
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("g", guarded="true"))
    # The same object in a namespace the namespaceSelector leaves out: not called.
    setup.kubectl("create", "namespace", setup.ns + "-other")
    other = {**setup.configmap("g", guarded="true")}
    other["metadata"] = {**other["metadata"], "namespace": setup.ns + "-other"}
    setup.core.create_namespaced_config_map(setup.ns + "-other", other)
    assert len(setup.server.calls("/labelled")) == 1


def test_a_namespace_request_is_selected_by_its_own_labels(setup: Setup) -> None:
    setup.server.answers["/guarded-ns"] = deny("guarded namespaces are made elsewhere")
    setup.validating(
        "nssel-" + setup.ns,
        setup.webhook(
            "nssel.example.com",
            "/guarded-ns",
            rules=[_rule(["namespaces"])],
            namespaceSelector={"matchLabels": {"guard": setup.ns}},
        ),
    )
    setup.kubectl("create", "namespace", setup.ns + "-free")
    guarded = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": setup.ns + "-guarded", "labels": {"guard": setup.ns}},
    }
    result = setup.kubectl("create", "-f", "-", stdin=json.dumps(guarded), check=False)
    assert "guarded namespaces are made elsewhere" in result.stderr
    (call,) = setup.server.calls("/guarded-ns")
    assert call.request["namespace"] == setup.ns + "-guarded"  # a namespace's own name


def test_match_conditions_skip_the_webhook(setup: Setup) -> None:
    setup.server.answers["/conditional"] = deny("no")
    setup.validating(
        "cond-" + setup.ns,
        setup.webhook(
            "cond.example.com",
            "/conditional",
            matchConditions=[
                {"name": "only-x", "expression": "object.metadata.name.startsWith('x')"},
                # Upstream offers the authorizer to webhooks' conditions too.
                {
                    "name": "may-create",
                    "expression": "authorizer.requestResource.check('create').allowed()",
                },
            ],
        ),
    )
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("a"))
    with pytest.raises(ApiException):
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("xa"))
    assert [c.request["name"] for c in setup.server.calls("/conditional")] == ["xa"]


def _deployment(ns: str, name: str = "web") -> Object:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


def test_scale_subresource_rules(setup: Setup) -> None:
    setup.apps.create_namespaced_deployment(setup.ns, _deployment(setup.ns))
    setup.server.answers["/scale-cap"] = json_patch(
        {"op": "replace", "path": "/spec/replicas", "value": 2}
    )
    setup.mutating(
        "scale-" + setup.ns,
        setup.webhook(
            "scale.example.com",
            "/scale-cap",
            rules=[_rule(["*/scale"], operations=["UPDATE"], groups=["apps"])],
        ),
    )
    setup.kubectl("scale", "deployment", "web", "-n", setup.ns, "--replicas=7")
    (call,) = setup.server.calls("/scale-cap")
    request = call.request
    assert request["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert request["subResource"] == "scale" and request["requestSubResource"] == "scale"
    assert request["object"]["spec"] == {"replicas": 7}
    assert request["oldObject"]["spec"] == {"replicas": 1}
    assert setup.apps.read_namespaced_deployment("web", setup.ns).spec.replicas == 2
    # A plain deployments rule does not see the subresource.
    assert setup.server.calls("/scale-cap")[0].request["resource"]["resource"] == "deployments"


def test_equivalent_match_policy_through_a_legacy_version(setup: Setup) -> None:
    rules = [_rule(["deployments"], groups=["apps"], versions=["v1"])]
    setup.validating(
        "equiv-" + setup.ns,
        setup.webhook("equivalent.example.com", "/equivalent", rules=rules),
        setup.webhook("exact.example.com", "/exact", rules=rules, matchPolicy="Exact"),
    )
    legacy = _deployment(setup.ns, "old")
    legacy["apiVersion"] = "apps/v1beta1"
    setup.kubectl("create", "-f", "-", stdin=json.dumps(legacy))
    (call,) = setup.server.calls("/equivalent")
    request = call.request
    assert request["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert request["resource"]["version"] == "v1"
    assert request["requestKind"] == {"group": "apps", "version": "v1beta1", "kind": "Deployment"}
    assert request["requestResource"]["version"] == "v1beta1"
    assert request["object"]["apiVersion"] == "apps/v1"
    assert setup.server.calls("/exact") == []


# ----- dry run, warnings, delete ----------------------------------------------------------------


def test_dry_run_reaches_side_effect_free_webhooks(setup: Setup) -> None:
    setup.validating("dry-" + setup.ns, setup.webhook("dry.example.com", "/dry"))
    setup.kubectl("create", "configmap", "cm", "-n", setup.ns, "--dry-run=server")
    (call,) = setup.server.calls("/dry")
    assert call.request["dryRun"] is True
    assert call.request["options"]["dryRun"] == ["All"]
    with pytest.raises(ApiException) as missing:
        setup.core.read_namespaced_config_map("cm", setup.ns)
    assert missing.value.status == 404


def test_warnings_reach_kubectl(setup: Setup) -> None:
    setup.server.answers["/warn"] = lambda _r: {
        "allowed": True,
        "warnings": ["this configmap is deprecated"],
    }
    setup.validating("warn-" + setup.ns, setup.webhook("warn.example.com", "/warn"))
    result = setup.kubectl("create", "configmap", "cm", "-n", setup.ns)
    assert "Warning: this configmap is deprecated" in result.stderr


def test_delete_sends_the_old_object_and_a_denial_keeps_it(setup: Setup) -> None:
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("keep"))
    setup.server.answers["/no-delete"] = deny("keep it")
    setup.validating(
        "del-" + setup.ns,
        setup.webhook("nodelete.example.com", "/no-delete", operations=["DELETE"]),
    )
    result = setup.kubectl("delete", "configmap", "keep", "-n", setup.ns, check=False)
    assert result.returncode == 1
    assert 'admission webhook "nodelete.example.com" denied the request: keep it' in (result.stderr)
    (call,) = setup.server.calls("/no-delete")
    request = call.request
    assert request["operation"] == "DELETE" and request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "keep"
    assert request["options"]["kind"] == "DeleteOptions"
    assert setup.core.read_namespaced_config_map("keep", setup.ns).data == {"k": "v"}


# ----- a webhook behind a Service --------------------------------------------------------------


@pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))
def test_service_webhook_is_reached_through_its_endpoint_slice(setup: Setup) -> None:
    with (
        routed_namespace() as (namespace, address),
        WebhookServer(
            dns_names=[f"hook.{SERVICE_NAMESPACE}.svc"], host=address, netns=namespace
        ) as server,
    ):
        _service_webhook(setup, server, address)


def _service_webhook(setup: Setup, server: WebhookServer, address: str) -> None:
    setup.kubectl("create", "namespace", SERVICE_NAMESPACE)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hook", "namespace": SERVICE_NAMESPACE},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": server.port}]},
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "hook-1",
            "namespace": SERVICE_NAMESPACE,
            "labels": {"kubernetes.io/service-name": "hook"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "https", "port": server.port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
    }
    webhook = setup.webhook("service.example.com", "/unused")
    webhook["clientConfig"] = {
        "service": {"namespace": SERVICE_NAMESPACE, "name": "hook", "path": "/via-service"},
        "caBundle": server.ca_bundle,
    }
    setup.validating("svc-" + setup.ns, webhook)
    # No Service yet: the call fails, worded as upstream's dialer does.
    with pytest.raises(ApiException) as raised:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("first"))
    assert _status(raised.value)["message"] == (
        'Internal error occurred: failed calling webhook "service.example.com": failed to call '
        f'webhook: Post "https://hook.{SERVICE_NAMESPACE}.svc:443/via-service?timeout=10s": '
        'service "hook" not found'
    )
    setup.kubectl("create", "-f", "-", stdin=json.dumps(service))
    with pytest.raises(ApiException) as no_endpoints:
        setup.core.create_namespaced_config_map(setup.ns, setup.configmap("second"))
    assert _status(no_endpoints.value)["message"].endswith(
        'no endpoints available for service "hook"'
    )
    setup.kubectl("create", "-f", "-", stdin=json.dumps(endpoint_slice))
    setup.core.create_namespaced_config_map(setup.ns, setup.configmap("third"))
    (call,) = server.calls("/via-service")
    assert call.request["name"] == "third"
