"""PodSecurity admission over HTTPS, as upstream 1.37 runs it by default.

Against one in-process cluster (no nodes, no controllers: pods stay
Pending, admission is what is tested), with the real kubectl and the
official ``kubernetes`` client, following the upstream documentation's
walk-through: a namespace labelled ``enforce=restricted`` refuses a
privileged pod with kubectl's exact error; ``warn`` prints kubectl's
``Warning: would violate PodSecurity``; a Deployment in an enforcing
namespace is created with a warning; labelling a namespace (with
``--dry-run=server`` and for real) warns about its existing pods; invalid
label values are refused; a compliant restricted pod is accepted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]

RESTRICTED_DETAIL = (
    'allowPrivilegeEscalation != false (container "{c}" must set '
    "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities "
    '(container "{c}" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "{c}" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "{c}" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")'
)


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def core(cluster: InProcessCluster) -> Iterator[client.CoreV1Api]:
    api = cluster.api_client()
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture
def ns(core: client.CoreV1Api) -> str:
    """A fresh namespace without Pod Security labels (and its default ServiceAccount, which
    the absent service-account controller would make)."""
    name = f"psa-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_service_account(
        name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
    )
    return name


def label(cluster: InProcessCluster, ns: str, *labels: str, check: bool = True) -> Any:
    return cluster.kubectl("label", "--overwrite", "ns", ns, *labels, check=check)


def pod(name: str, **spec: Any) -> Object:
    container = {"name": name, "image": "busybox", **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def create(cluster: InProcessCluster, ns: str, body: Object) -> Any:
    return cluster.kubectl("create", "-n", ns, "-f", "-", stdin=json.dumps(body), check=False)


def read_pod(core: client.CoreV1Api, ns: str, name: str) -> Object:
    pod: Object = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, ns))
    return pod


def ns_labels(core: client.CoreV1Api, ns: str) -> dict[str, str]:
    namespace: Object = core.api_client.sanitize_for_serialization(core.read_namespace(ns))
    labels: dict[str, str] = namespace["metadata"].get("labels") or {}
    return labels


RESTRICTED_CONTAINER = {
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}


def test_enforce_restricted_refuses_a_privileged_pod_as_kubectl_prints_it(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    label(cluster, ns, "pod-security.kubernetes.io/enforce=restricted")
    refused = cluster.kubectl(
        "run", "priv", "-n", ns, "--image=busybox", "--privileged", check=False
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        'Error from server (Forbidden): pods "priv" is forbidden: violates PodSecurity '
        '"restricted:latest": privileged (container "priv" must not set '
        "securityContext.privileged=true), " + RESTRICTED_DETAIL.format(c="priv")
    )
    # The official client sees upstream's 403 Status; nothing is stored.
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_pod(ns, pod("plain"))  # type: ignore[arg-type]
    status = json.loads(denied.value.body or "{}")
    assert denied.value.status == 403
    assert status["reason"] == "Forbidden"
    assert status["details"] == {"name": "plain", "kind": "pods"}
    assert status["message"] == (
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
        + RESTRICTED_DETAIL.format(c="plain")
    )
    assert core.list_namespaced_pod(ns).items == []


def test_a_compliant_restricted_pod_is_accepted_without_warnings(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    label(
        cluster,
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=v1.37",
    )
    created = create(cluster, ns, pod("ok", container=RESTRICTED_CONTAINER))
    assert created.returncode == 0, created.stderr
    assert created.stderr == ""
    assert read_pod(core, ns, "ok")["status"]["phase"] == "Pending"
    # Relabelling the pod (not a container image) is never re-evaluated.
    cluster.kubectl("label", "-n", ns, "pod", "ok", "tier=web")


def test_warn_mode_prints_kubectls_warning_and_admits(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    label(
        cluster,
        ns,
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/warn-version=v1.36",
    )
    created = create(cluster, ns, pod("web"))
    assert created.returncode == 0, created.stderr
    assert created.stderr.strip() == (
        'Warning: would violate PodSecurity "restricted:v1.36": '
        + RESTRICTED_DETAIL.format(c="web")
    )
    assert read_pod(core, ns, "web")["metadata"]["name"] == "web"
    # baseline is still enforced: a host namespace is refused, with no warning.
    refused = create(cluster, ns, pod("host", hostNetwork=True))
    assert refused.returncode == 1
    assert "Warning" not in refused.stderr
    assert refused.stderr.strip().endswith(
        'pods "host" is forbidden: violates PodSecurity "baseline:latest": '
        "host namespaces (hostNetwork=true)"
    )


def test_deployment_in_an_enforcing_namespace_is_created_with_a_warning(
    cluster: InProcessCluster, ns: str
) -> None:
    label(cluster, ns, "pod-security.kubernetes.io/enforce=restricted")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            },
        },
    }
    created = create(cluster, ns, deployment)
    assert created.returncode == 0, created.stderr
    assert created.stderr.strip() == (
        'Warning: would violate PodSecurity "restricted:latest": '
        + RESTRICTED_DETAIL.format(c="nginx")
    )
    assert created.stdout.strip() == "deployment.apps/web created"
    # The legacy extensions/v1beta1 served version reaches admission as apps/v1: warned too.
    legacy = {**deployment, "apiVersion": "extensions/v1beta1", "metadata": {"name": "old"}}
    created = create(cluster, ns, legacy)
    assert created.returncode == 0, created.stderr
    assert 'Warning: would violate PodSecurity "restricted:latest": ' in created.stderr


def test_labelling_a_namespace_warns_about_its_existing_pods(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    for body in (
        pod("host-a", hostNetwork=True),
        pod("priv-b", container={"securityContext": {"privileged": True}}),
        pod("priv-c", container={"securityContext": {"privileged": True}}),
        pod("fine"),
    ):
        core.create_namespaced_pod(ns, body)  # type: ignore[arg-type]
    expected = [
        f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce level '
        '"baseline:latest"',
        "Warning: host-a: host namespaces",
        "Warning: priv-b (and 1 other pod): privileged",
    ]
    dry = label(cluster, "--dry-run=server", ns, "pod-security.kubernetes.io/enforce=baseline")
    assert dry.stderr.strip().splitlines() == expected
    assert dry.stdout.strip() == f"namespace/{ns} labeled (server dry run)"
    assert "pod-security.kubernetes.io/enforce" not in ns_labels(core, ns)
    real = label(cluster, ns, "pod-security.kubernetes.io/enforce=baseline")
    assert real.stderr.strip().splitlines() == expected
    assert ns_labels(core, ns)["pod-security.kubernetes.io/enforce"] == "baseline"
    # Only a stricter enforce level checks the pods again; the pods themselves are kept.
    relaxed = label(cluster, ns, "pod-security.kubernetes.io/enforce=privileged")
    assert relaxed.stderr == ""
    assert len(core.list_namespaced_pod(ns).items) == 4


def test_invalid_label_values_are_refused(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    refused = label(cluster, ns, "pod-security.kubernetes.io/enforce=strict", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'The Namespace "{ns}" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "strict": must be one of privileged, baseline, restricted'
    )
    name = f"psa-bad-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ApiException) as invalid:
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(
                    name=name, labels={"pod-security.kubernetes.io/warn-version": "1.30"}
                )
            )
        )
    status = json.loads(invalid.value.body or "{}")
    assert invalid.value.status == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "1.30": must be "latest" or "v1.x"',
            "field": "metadata.labels[pod-security.kubernetes.io/warn-version]",
        }
    ]
