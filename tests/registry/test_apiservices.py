"""apiregistration.k8s.io/v1 APIServices against a real kajitori over HTTPS.

The real kubectl and the official client create, read and update APIServices;
what is checked is what upstream answers: the local APIServices autoregistered
for built-in and CRD group versions (labels, priorities, Available/Local),
``kubectl get apiservices`` rows, validation messages, defaulting, the status
subresource, and the extension-apiserver-authentication ConfigMap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kajitori.testing.cluster import wait_until
from kajitori.testing.inprocess import ClusterOptions, InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def registration(cluster: InProcessCluster) -> Iterator[client.ApiregistrationV1Api]:
    with cluster.api_client() as api_client:
        yield client.ApiregistrationV1Api(api_client)


def _remote(name: str, group: str, version: str, **spec: Any) -> Object:
    body: Object = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": 100,
            "versionPriority": 10,
            "service": {"namespace": "default", "name": "nothing-here"},
            "insecureSkipTLSVerify": True,
        },
    }
    body["spec"].update(spec)
    return body


def _get(cluster: InProcessCluster, name: str) -> Object:
    result: Object = json.loads(cluster.kubectl("get", "apiservice", name, "-o", "json").stdout)
    return result


def test_built_in_group_versions_are_local_and_available(cluster: InProcessCluster) -> None:
    """``kubectl get apiservices``: one Local, True row per served built-in group version."""
    rows = [line.split() for line in cluster.kubectl("get", "apiservices").stdout.splitlines()]
    assert rows[0] == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    by_name = {row[0]: row[1:3] for row in rows[1:]}
    for name in ("v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling", "v1.storage.k8s.io"):
        assert by_name[name] == ["Local", "True"], name
    # Upstream's aggregator serves its own group: there is no APIService for it.
    assert "v1.apiregistration.k8s.io" not in by_name
    core = _get(cluster, "v1.")
    assert core["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    assert core["spec"] == {
        "group": "",
        "version": "v1",
        "groupPriorityMinimum": 18000,
        "versionPriority": 1,
    }
    (condition,) = core["status"]["conditions"]
    assert {k: condition[k] for k in ("type", "status", "reason", "message")} == {
        "type": "Available",
        "status": "True",
        "reason": "Local",
        "message": "Local APIServices are always available",
    }


def test_crd_versions_come_and_go_with_the_crd(cluster: InProcessCluster) -> None:
    """Each served version gets a ``true``-managed APIService (1000/100); deleting the CRD removes them."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.org"},
        "spec": {
            "group": "example.org",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": version,
                    "served": served,
                    "storage": version == "v1",
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
                for version, served in (("v1", True), ("v1beta1", True), ("v1alpha1", False))
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(crd))

    def names() -> set[str]:
        out = cluster.kubectl("get", "apiservices", "-o", "name").stdout.split()
        return {n.removeprefix("apiservice.apiregistration.k8s.io/") for n in out}

    wait_until(lambda: {"v1.example.org", "v1beta1.example.org"} <= names(), what="CRD APIServices")
    assert "v1alpha1.example.org" not in names()
    widget = _get(cluster, "v1beta1.example.org")
    assert widget["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
    assert (widget["spec"]["groupPriorityMinimum"], widget["spec"]["versionPriority"]) == (
        1000,
        100,
    )
    assert widget["status"]["conditions"][0]["reason"] == "Local"

    cluster.kubectl("delete", "crd", "widgets.example.org")
    wait_until(lambda: not names() & {"v1.example.org", "v1beta1.example.org"}, what="removed")


def test_a_deleted_crd_apiservice_is_put_back(cluster: InProcessCluster) -> None:
    """A ``true``-managed APIService is kept: deleting it by hand brings it back."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.keep.example.org"},
        "spec": {
            "group": "keep.example.org",
            "scope": "Cluster",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(crd))
    wait_until(
        lambda: (
            cluster.kubectl("get", "apiservice", "v1.keep.example.org", check=False).returncode == 0
        ),
        what="registered",
    )
    uid = _get(cluster, "v1.keep.example.org")["metadata"]["uid"]
    cluster.kubectl("delete", "apiservice", "v1.keep.example.org")

    def recreated() -> bool:
        done = cluster.kubectl(
            "get", "apiservice", "v1.keep.example.org", "-o", "json", check=False
        )
        return done.returncode == 0 and json.loads(done.stdout)["metadata"]["uid"] != uid

    wait_until(recreated, what="recreated")
    cluster.kubectl("delete", "crd", "gadgets.keep.example.org")


def test_validation_messages_are_upstreams(registration: client.ApiregistrationV1Api) -> None:
    """Name, group, version, priorities, service reference and TLS settings, as upstream words them."""
    body = _remote("wrong.metrics.example.com", "metrics.example.com", "v1")
    body["spec"].update(groupPriorityMinimum=0, versionPriority=1001, caBundle="AAAA")
    body["spec"]["service"] = {"namespace": "", "name": "", "port": 70000}
    with pytest.raises(ApiException) as raised:
        registration.create_api_service(body)
    assert raised.value.status == 422
    status = json.loads(raised.value.body)
    assert status["message"] == (
        'APIService.apiregistration.k8s.io "wrong.metrics.example.com" is invalid: ['
        'metadata.name: Invalid value: "wrong.metrics.example.com": '
        'must be `spec.version+"."+spec.group`: "v1.metrics.example.com", '
        "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000, "
        "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000, "
        "spec.service.namespace: Required value, spec.service.name: Required value, "
        "spec.service.port: Invalid value: 70000: "
        "port is not valid: must be between 1 and 65535, inclusive, "
        "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present]"
    )


def test_local_apiservices_refuse_tls_settings(registration: client.ApiregistrationV1Api) -> None:
    """Without spec.service: no caBundle (reported in bytes), no insecureSkipTLSVerify; empty group only for v1."""
    body = _remote("v2.", "", "v2", caBundle="AAAA")
    del body["spec"]["service"]
    with pytest.raises(ApiException) as raised:
        registration.create_api_service(body)
    causes = {
        (c["field"], c["message"]) for c in json.loads(raised.value.body)["details"]["causes"]
    }
    assert causes == {
        (
            "spec.group",
            "Required value: only v1 may have an empty group and it better be legacy kube",
        ),
        ("spec.caBundle", 'Invalid value: "3 bytes": local APIServices may not have a caBundle'),
        (
            "spec.insecureSkipTLSVerify",
            "Invalid value: true: local APIServices may not have insecureSkipTLSVerify",
        ),
    }


def test_remote_apiservice_defaults_and_status(
    cluster: InProcessCluster, registration: client.ApiregistrationV1Api
) -> None:
    """Port 443 by default; status from a create is dropped; /status writes conditions; the row shows the reason."""
    body = _remote("v1.status.example.com", "status.example.com", "v1")
    body["status"] = {"conditions": [{"type": "Available", "status": "True", "reason": "Lie"}]}
    created = registration.create_api_service(body)
    assert created.spec.service.port == 443
    # Its Service is missing: the availability controller says so.
    wait_until(
        lambda: (
            "False (ServiceNotFound)"
            in cluster.kubectl("get", "apiservice", "v1.status.example.com").stdout
        ),
        what="ServiceNotFound",
    )
    row = cluster.kubectl("get", "apiservice", "v1.status.example.com").stdout.splitlines()[1]
    assert row.split()[:4] == [
        "v1.status.example.com",
        "default/nothing-here",
        "False",
        "(ServiceNotFound)",
    ]
    current = _get(cluster, "v1.status.example.com")
    current["status"]["conditions"][0]["status"] = "Maybe"
    with pytest.raises(ApiException) as raised:
        registration.replace_api_service_status("v1.status.example.com", current)
    assert json.loads(raised.value.body)["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Maybe": supported values: "True", "False", "Unknown"',
            "field": "status.conditions[0].status",
        }
    ]
    registration.delete_api_service("v1.status.example.com")


def test_extension_apiserver_authentication_is_published(cluster: InProcessCluster) -> None:
    """kube-system's ConfigMap names the front proxy's CA, client name and headers, as kubeadm's do."""
    data = json.loads(
        cluster.kubectl(
            "get",
            "configmap",
            "-n",
            "kube-system",
            "extension-apiserver-authentication",
            "-o",
            "json",
        ).stdout
    )["data"]
    assert json.loads(data["requestheader-allowed-names"]) == ["front-proxy-client"]
    assert json.loads(data["requestheader-username-headers"]) == ["X-Remote-User"]
    assert json.loads(data["requestheader-group-headers"]) == ["X-Remote-Group"]
    assert json.loads(data["requestheader-extra-headers-prefix"]) == ["X-Remote-Extra-"]
    pki_dir = cluster.data_dir / "pki"
    assert data["requestheader-client-ca-file"] == (pki_dir / "front-proxy-ca.crt").read_text()
    assert data["client-ca-file"] == (pki_dir / "ca.crt").read_text()
    assert data["requestheader-client-ca-file"] != data["client-ca-file"]


def test_restart_puts_built_ins_back_once_and_drops_stale_ones(tmp_path: Path) -> None:
    """``onstart`` APIServices are reset on each start and removed once nothing serves them;
    an administrator's unlabelled APIService is never touched."""
    stale = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {
            "name": "v1.gone.example.com",
            "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"},
        },
        "spec": {
            "group": "gone.example.com",
            "version": "v1",
            "groupPriorityMinimum": 100,
            "versionPriority": 10,
        },
    }
    mine = {**stale, "metadata": {"name": "v1.mine.example.com"}}
    mine["spec"] = {**stale["spec"], "group": "mine.example.com"}
    with InProcessCluster(tmp_path, ClusterOptions(controllers=False)) as first:
        first.kubectl("apply", "-f", "-", stdin=json.dumps(stale))
        first.kubectl("apply", "-f", "-", stdin=json.dumps(mine))
        first.kubectl(
            "patch",
            "apiservice",
            "v1.apps",
            "--type=merge",
            "-p",
            '{"spec":{"versionPriority":99}}',
        )
        # Added after this server started: left alone until the next start.
        assert _get(first, "v1.gone.example.com")["spec"]["group"] == "gone.example.com"
        assert _get(first, "v1.apps")["spec"]["versionPriority"] == 99
    with InProcessCluster(tmp_path, ClusterOptions(controllers=False)) as second:
        assert _get(second, "v1.apps")["spec"]["versionPriority"] == 15
        wait_until(
            lambda: (
                second.kubectl("get", "apiservice", "v1.gone.example.com", check=False).returncode
                != 0
            ),
            what="the stale onstart APIService deleted",
        )
        assert _get(second, "v1.mine.example.com")["spec"]["group"] == "mine.example.com"
