"""``kubectl explain`` and kubectl's validation against the served OpenAPI documents.

kubectl explain reads OpenAPI v3 (``/openapi/v3/<group version>``): it finds
the kind by ``x-kubernetes-group-version-kind`` and walks field references,
showing each field's own description beside its type's (upstream publishes
a described reference as ``allOf: [$ref]``). Old workload versions served
by default have schemas too. ``/openapi/v2`` is served as JSON and as
upstream's protobuf.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster

BAD_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: typo
data:
  a: b
dta:
  c: d
"""


class Kubectl:
    """The real kubectl with a private discovery cache (ports get reused between runs)."""

    def __init__(self, cluster: KajitoriCluster, cache: Path) -> None:
        self.cluster = cluster
        self.cache = cache

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return self.cluster.kubectl(f"--cache-dir={self.cache}", *args, stdin=stdin, check=check)


@pytest.fixture(scope="module")
def kubectl(
    cluster: KajitoriCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kubectl]:
    yield Kubectl(cluster, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("pods",),
            ["KIND:       Pod", "VERSION:    v1", "Pod is a collection of containers"],
            id="kind",
        ),
        pytest.param(
            ("pod.spec.containers.env.valueFrom",),
            [
                "FIELD: valueFrom <EnvVarSource>",
                # The field's own description, then its type's.
                "Source for the environment variable's value.",
                "EnvVarSource represents a source for the value of an EnvVar.",
                "configMapKeyRef\t<ConfigMapKeySelector>",
            ],
            id="deep-field",
        ),
        pytest.param(
            ("deployments", "--api-version=apps/v1"),
            [
                "GROUP:      apps",
                "KIND:       Deployment",
                "VERSION:    v1",
                "spec\t<DeploymentSpec>",
            ],
            id="api-version",
        ),
        pytest.param(
            ("deployments.spec.strategy", "--api-version=apps/v1"),
            ["FIELD: strategy <DeploymentStrategy>", "rollingUpdate\t<RollingUpdateDeployment>"],
            id="field-with-api-version",
        ),
        pytest.param(
            ("statefulsets", "--api-version=apps/v1beta1"),
            ["GROUP:      apps", "KIND:       StatefulSet", "VERSION:    v1beta1"],
            id="old-version",
        ),
        pytest.param(
            ("deployments.spec.rollbackTo", "--api-version=extensions/v1beta1"),
            ["FIELD: rollbackTo <RollbackConfig>", "revision\t<integer>"],
            id="old-only-field",
        ),
    ],
)
def test_explain_describes_kinds_and_fields_at_any_depth(
    kubectl: Kubectl, args: tuple[str, ...], expected: list[str]
) -> None:
    """kubectl explain prints the kind, the field and its fields from the served schema."""
    out = kubectl("explain", *args).stdout
    for text in expected:
        assert text in out


def test_explain_recursive_lists_nested_fields(kubectl: Kubectl) -> None:
    """--recursive walks every reference down to the leaves."""
    out = kubectl("explain", "pods", "--recursive").stdout
    for line in (
        "metadata\t<ObjectMeta>",
        "containers\t<[]Container>",
        "valueFrom\t<EnvVarSource>",
    ):
        assert line in out
    assert len(out.splitlines()) > 500


@pytest.mark.parametrize(
    "validate",
    [pytest.param("--validate=true", id="true"), pytest.param("--validate=strict", id="strict")],
)
def test_unknown_fields_are_refused_when_validating(kubectl: Kubectl, validate: str) -> None:
    """kubectl's default validation asks the server for Strict and reports the unknown field."""
    result = kubectl("create", validate, "-f", "-", stdin=BAD_CONFIGMAP, check=False)
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "dta"' in result.stderr


def test_unknown_fields_warn_with_validate_warn(kubectl: Kubectl) -> None:
    """--validate=warn creates the object and prints the server's warning."""
    result = kubectl("create", "--validate=warn", "-f", "-", stdin=BAD_CONFIGMAP)
    assert 'Warning: unknown field "dta"' in result.stderr
    kubectl("delete", "configmap", "typo")


def _get(cluster: KajitoriCluster, path: str, accept: str) -> tuple[int, bytes, str]:
    pki = cluster.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    request = urllib.request.Request(f"{cluster.url}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


def test_openapi_v2_is_served_as_json_when_acceptable(cluster: KajitoriCluster) -> None:
    """/openapi/v2 answers JSON for a JSON Accept, with the served kinds old and new."""
    status, body, content_type = _get(
        cluster,
        "/openapi/v2",
        "application/json",
    )
    assert (status, content_type) == (200, "application/json")
    document = json.loads(body)
    assert document["swagger"] == "2.0"
    gvks = {
        (g["group"], g["version"], g["kind"])
        for schema in document["definitions"].values()
        for g in schema.get("x-kubernetes-group-version-kind", ())
    }
    assert {
        ("", "v1", "Pod"),
        ("apps", "v1", "Deployment"),
        ("apps", "v1beta1", "StatefulSet"),
    } <= gvks
    assert document["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"] == {
        "$ref": "#/definitions/io.k8s.api.core.v1.PodSpec",
        "description": document["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"][
            "description"
        ],
    }


def test_openapi_v2_refuses_other_media_types(cluster: KajitoriCluster) -> None:
    """A client accepting neither JSON nor upstream's protobuf gets 406."""
    status, _, _ = _get(cluster, "/openapi/v2", "text/html")
    assert status == 406


def test_openapi_v2_protobuf_serves_kubectl_explain(kubectl: Kubectl) -> None:
    """kubectl's OpenAPI v2 path (gnostic protobuf) explains kinds, old versions included."""
    out = kubectl(
        "explain", "pod.spec.containers.env.valueFrom", "--output=plaintext-openapiv2"
    ).stdout
    assert "RESOURCE: valueFrom <Object>" in out
    assert "Source for the environment variable's value." in out
    assert "configMapKeyRef\t<Object>" in out
    old = kubectl(
        "explain",
        "deployments.spec.rollbackTo",
        "--api-version=extensions/v1beta1",
        "--output=plaintext-openapiv2",
    ).stdout
    assert "VERSION:  extensions/v1beta1" in old
    assert "revision\t<integer>" in old
