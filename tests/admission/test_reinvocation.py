"""Reinvocation across the mutating phase, end to end over HTTPS.

One in-process cluster calls a real TLS webhook on 127.0.0.1 and applies
MutatingAdmissionPolicies; ConfigMaps are created with the official client.
As upstream's admission chain: a change by a webhook sends a policy with
``reinvocationPolicy: IfNeeded`` round again (one with ``Never`` stays as it
was); a change a policy makes on that second pass sends an IfNeeded webhook
round again; nothing runs twice when nothing changed; and the in-tree
plugins' second pass leaves a pod with one service-account token volume.

Each test has its own namespace, which its webhooks (by
``kubernetes.io/metadata.name``) and its policy bindings (by ``environment``)
select, so tests sharing the cluster never see each other's hooks.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.admission.webhook_server import WebhookServer, allow, json_patch

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"
CONFIGMAPS = {
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "operations": ["CREATE"],
    "resources": ["configmaps"],
}
# The policy writes down whether the webhook's label was there when it ran.
SEEN = (
    "Object{metadata: Object.metadata{annotations: {'seen-hooked': "
    "has(object.metadata.labels) && 'hooked' in object.metadata.labels ? 'yes' : 'no'}}}"
)


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(kajitori_module_cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    with kajitori_module_cluster.api_client() as api_client:
        yield api_client


class Setup:
    """One test's namespace, webhook paths, configurations and policies (removed afterwards)."""

    def __init__(
        self, cluster: InProcessCluster, api: client.ApiClient, server: WebhookServer
    ) -> None:
        self.cluster, self.server = cluster, server
        self.ns = f"reinv-{uuid.uuid4().hex[:8]}"
        self.core = client.CoreV1Api(api)
        self.registration = client.AdmissionregistrationV1Api(api)
        self.core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name=self.ns, labels={"environment": self.ns})
            )
        )
        self.configurations: list[str] = []
        self.policies: list[str] = []

    def path(self, name: str) -> str:
        return f"/{self.ns}/{name}"

    def webhook(self, config: str, name: str, **fields: Any) -> None:
        """A mutating configuration ``<config>-<ns>`` (name order is call order) of one webhook."""
        spec: Object = {
            "name": f"{name}.example.com",
            "clientConfig": {
                "url": self.server.url(self.path(name)),
                "caBundle": self.server.ca_bundle,
            },
            "rules": [CONFIGMAPS],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.ns}},
            **fields,
        }
        full = f"{config}-{self.ns}"
        self.registration.create_mutating_webhook_configuration(
            {"metadata": {"name": full}, "webhooks": [spec]}
        )
        self.configurations.append(full)

    def policy(self, expression: str, reinvocation: str) -> None:
        """A policy applying ``expression`` to this namespace's ConfigMaps, and its binding."""
        name = f"seen-{self.ns}"
        policy = {
            "apiVersion": GV,
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "matchConstraints": {"resourceRules": [CONFIGMAPS]},
                "mutations": [
                    {
                        "patchType": "ApplyConfiguration",
                        "applyConfiguration": {"expression": expression},
                    }
                ],
                "reinvocationPolicy": reinvocation,
            },
        }
        binding = {
            "apiVersion": GV,
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "matchResources": {"namespaceSelector": {"matchLabels": {"environment": self.ns}}},
            },
        }
        body = {"apiVersion": "v1", "kind": "List", "items": [policy, binding]}
        self.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
        self.policies.append(name)

    def create(self, name: str) -> client.V1ConfigMap:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"app": "x"}), data={"k": "v"}
        )
        self.core.create_namespaced_config_map(self.ns, body)
        stored: client.V1ConfigMap = self.core.read_namespaced_config_map(name, self.ns)
        return stored

    def objects(self, name: str) -> list[Object]:
        """The objects webhook ``name`` was sent, in order."""
        return [call.request["object"] for call in self.server.calls(self.path(name))]

    def cleanup(self) -> None:
        for name in self.configurations:
            self.registration.delete_mutating_webhook_configuration(name)
        for name in self.policies:
            self.cluster.kubectl(
                "delete", "mutatingadmissionpolicybinding,mutatingadmissionpolicy", name
            )
        self.core.delete_namespace(self.ns)


@pytest.fixture
def setup(
    kajitori_module_cluster: InProcessCluster, api: client.ApiClient, hook: WebhookServer
) -> Iterator[Setup]:
    made = Setup(kajitori_module_cluster, api, hook)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.mark.parametrize(("reinvocation", "seen"), [("IfNeeded", "yes"), ("Never", "no")])
def test_a_webhook_change_reruns_an_if_needed_policy(
    setup: Setup, reinvocation: str, seen: str
) -> None:
    setup.policy(SEEN, reinvocation)
    setup.server.answers[setup.path("label")] = json_patch(
        {"op": "add", "path": "/metadata/labels/hooked", "value": "yes"}
    )
    setup.webhook("a", "label")
    stored = setup.create("cm")
    assert stored.metadata.labels == {"app": "x", "hooked": "yes"}
    assert stored.metadata.annotations == {"seen-hooked": seen}
    # The webhook (reinvocationPolicy Never) ran once, after the policy's first run.
    assert [o["metadata"].get("annotations") for o in setup.objects("label")] == [
        {"seen-hooked": "no"}
    ]


def test_a_policy_change_on_the_second_pass_reruns_an_if_needed_webhook(setup: Setup) -> None:
    setup.policy(SEEN, "IfNeeded")
    setup.server.answers[setup.path("label")] = json_patch(
        {"op": "add", "path": "/metadata/labels/hooked", "value": "yes"}
    )
    setup.server.answers[setup.path("watch")] = allow
    # Configurations run in name order: "a" labels, then "b" (IfNeeded) looks.
    setup.webhook("a", "label")
    setup.webhook("b", "watch", reinvocationPolicy="IfNeeded")
    stored = setup.create("cm")
    assert stored.metadata.annotations == {"seen-hooked": "yes"}
    # "watch" ran after "label" changed the object, so that change alone does not rerun it;
    # the policy's rerun on the second pass changed the object again, and that does.
    seen = [o["metadata"].get("annotations") for o in setup.objects("watch")]
    assert seen == [{"seen-hooked": "no"}, {"seen-hooked": "yes"}]
    assert len(setup.objects("label")) == 1


def test_nothing_runs_twice_when_nothing_changed(setup: Setup) -> None:
    setup.policy("Object{metadata: Object.metadata{annotations: {'fixed': 'v'}}}", "IfNeeded")
    setup.server.answers[setup.path("watch")] = allow
    setup.webhook("a", "watch", reinvocationPolicy="IfNeeded")
    stored = setup.create("cm")
    assert stored.metadata.annotations == {"fixed": "v"}
    # The policy's own change asks for a second pass, but nothing that ran before it
    # is IfNeeded, and the webhook's object is unchanged on that pass.
    assert len(setup.objects("watch")) == 1


def test_the_second_pass_reruns_in_tree_plugins_idempotently(setup: Setup) -> None:
    # A webhook's change sends every mutating plugin round again (upstream's reinvoker);
    # the ServiceAccount plugin must not add its token volume twice.
    setup.core.create_namespaced_service_account(
        setup.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
    )
    setup.server.answers[setup.path("pods")] = json_patch(
        {"op": "add", "path": "/metadata/labels/hooked", "value": "yes"}
    )
    pods_rule = {**CONFIGMAPS, "resources": ["pods"]}
    setup.webhook("a", "pods", rules=[pods_rule])
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    made = setup.core.create_namespaced_pod(setup.ns, body)
    assert made.metadata.labels == {"app": "x", "hooked": "yes"}
    volumes = [v.name for v in made.spec.volumes]
    assert len(volumes) == 1 and volumes[0].startswith("kube-api-access-")
    assert len(made.spec.containers[0].volume_mounts) == 1
