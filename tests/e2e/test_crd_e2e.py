"""CustomResourceDefinitions end to end: the real kubectl, CustomObjectsApi and DynamicClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from kajitori.testing.cluster import KajitoriCluster

GROUP = "e2e.example.com"

WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["all"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.replicas",
                    },
                },
                "selectableFields": [{"jsonPath": ".spec.color"}],
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {"rule": "self.size <= 10", "message": "size is at most 10"}
                                ],
                                "properties": {
                                    "size": {"type": "integer", "default": 1, "minimum": 0},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "ready": {"type": "boolean"},
                                    "replicas": {"type": "integer"},
                                },
                            },
                        },
                    }
                },
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            },
        ],
    },
}

GIZMOS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gizmos.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {"plural": "gizmos", "kind": "Gizmo"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": {"type": "object", "properties": {}}},
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def crd_cluster(cluster: KajitoriCluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The cluster with the Widget and Gizmo CRDs established."""
    cache = tmp_path_factory.mktemp("kubectl-cache")
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(WIDGETS) + "\n---\n" + json.dumps(GIZMOS),
    )
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        f"crd/widgets.{GROUP}",
        f"crd/gizmos.{GROUP}",
        "--timeout=20s",
    )
    return cluster, cache


def _kubectl(crd_cluster: Any, *args: str, **kwargs: Any) -> Any:
    cluster, cache = crd_cluster
    return cluster.kubectl("--cache-dir", str(cache), *args, **kwargs)


@pytest.fixture(scope="module")
def api(crd_cluster: Any) -> Iterator[client.ApiClient]:
    """An official-client ApiClient for the cluster."""
    cluster, _ = crd_cluster
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api_client
    api_client.close()


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": spec,
    }


def test_kubectl_sees_new_types_without_restart(crd_cluster: Any) -> None:
    """api-resources lists the CRD's resources with short names; get works at once."""
    out = _kubectl(crd_cluster, "api-resources", "--api-group", GROUP, "--no-headers").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["widgets"] == ["widgets", "wd", f"{GROUP}/v1", "true", "Widget"]
    assert rows["gizmos"] == ["gizmos", f"{GROUP}/v1", "false", "Gizmo"]
    empty = _kubectl(crd_cluster, "get", "widgets")
    assert "No resources found in default namespace." in empty.stderr


def test_kubectl_creates_and_prints_custom_resources(crd_cluster: Any) -> None:
    """Defaults apply; additionalPrinterColumns show in kubectl get; short name works."""
    _kubectl(crd_cluster, "apply", "-f", "-", stdin=json.dumps(_widget("printed", color="red")))
    out = _kubectl(crd_cluster, "get", "wd", "printed").stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE", "COLOR"]
    assert out[1].split() == ["printed", "1", "red"]
    gizmo = {"apiVersion": f"{GROUP}/v1", "kind": "Gizmo", "metadata": {"name": "g1"}}
    _kubectl(crd_cluster, "create", "-f", "-", stdin=json.dumps(gizmo))
    assert _kubectl(crd_cluster, "get", "gizmos", "-o", "name").stdout.split() == [
        f"gizmo.{GROUP}/g1"
    ]


def test_kubectl_scale_explain_and_categories(crd_cluster: Any) -> None:
    """kubectl scale uses /scale; explain reads the CRD's OpenAPI; `get all` has the category."""
    _kubectl(crd_cluster, "create", "-f", "-", stdin=json.dumps(_widget("scaled", color="red")))
    _kubectl(crd_cluster, "scale", "widget/scaled", "--replicas=3")
    size = _kubectl(crd_cluster, "get", "widget", "scaled", "-o", "jsonpath={.spec.size}")
    assert size.stdout == "3"
    explained = _kubectl(crd_cluster, "explain", "widgets.spec.color").stdout
    assert "KIND:       Widget" in explained
    assert "FIELD: color <string>" in explained
    everything = _kubectl(crd_cluster, "get", "all", "-o", "name").stdout.split()
    assert f"widget.{GROUP}/scaled" in everything


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"size": 11},
            'spec: Invalid value: "object": size is at most 10',
            id="cel",
        ),
        pytest.param(
            {"color": "pink"},
            'spec.color: Unsupported value: "pink": supported values: "red", "blue"',
            id="enum",
        ),
        pytest.param(
            {"size": -1},
            "spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0",
            id="minimum",
        ),
        pytest.param({"bogus": 1}, 'unknown field "spec.bogus"', id="strict-unknown-field"),
    ],
)
def test_kubectl_reports_invalid_custom_resources(
    crd_cluster: Any, spec: dict[str, Any], expected: str
) -> None:
    """Schema, CEL and unknown-field problems reach kubectl with their field paths."""
    result = _kubectl(
        crd_cluster, "create", "-f", "-", stdin=json.dumps(_widget("bad", **spec)), check=False
    )
    assert result.returncode != 0
    assert expected in result.stderr


def test_custom_objects_api_crud_status_and_patches(api: client.ApiClient) -> None:
    """Create, status subresource, merge/JSON patch work; strategic merge patch is 415."""
    objects = client.CustomObjectsApi(api)
    args = (GROUP, "v1", "default", "widgets")
    created = objects.create_namespaced_custom_object(*args, _widget("crud", color="blue"))
    assert created["spec"] == {"color": "blue", "size": 1}
    status = {**created, "status": {"ready": True}}
    updated = objects.replace_namespaced_custom_object_status(*args, "crud", status)
    assert updated["status"] == {"ready": True}
    patched = objects.patch_namespaced_custom_object(*args, "crud", {"spec": {"size": 4}})
    assert (patched["spec"]["size"], patched["metadata"]["generation"]) == (4, 2)
    assert patched["status"] == {"ready": True}
    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object(
            *args,
            "crud",
            {"spec": {"size": 5}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert caught.value.status == 415
    objects.delete_namespaced_custom_object(*args, "crud")
    with pytest.raises(ApiException) as missing:
        objects.get_namespaced_custom_object(*args, "crud")
    assert missing.value.status == 404


def test_selectors_paging_and_watch(api: client.ApiClient) -> None:
    """Label and field (selectableFields) selectors, limit/continue and a watch."""
    objects = client.CustomObjectsApi(api)
    args = (GROUP, "v1", "default", "widgets")
    for i, color in enumerate(("red", "blue", "red")):
        objects.create_namespaced_custom_object(*args, _widget(f"sel-{i}", color=color))
    reds = objects.list_namespaced_custom_object(*args, field_selector="spec.color=red")
    assert {o["metadata"]["name"] for o in reds["items"]} >= {"sel-0", "sel-2"}
    assert all(o["spec"]["color"] == "red" for o in reds["items"])
    first = objects.list_namespaced_custom_object(*args, label_selector="app=demo", limit=1)
    assert len(first["items"]) == 1 and first["metadata"]["continue"]
    rest = objects.list_namespaced_custom_object(
        *args, label_selector="app=demo", limit=100, _continue=first["metadata"]["continue"]
    )
    assert first["items"][0]["metadata"]["name"] not in {
        o["metadata"]["name"] for o in rest["items"]
    }
    events = watch.Watch().stream(
        objects.list_namespaced_custom_object,
        *args,
        field_selector="metadata.name=sel-1",
        timeout_seconds=2,
    )
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert seen == [("ADDED", "sel-1")]


def test_dynamic_client_reads_both_versions(api: client.ApiClient) -> None:
    """DynamicClient discovers the kind; v1beta1 reads the v1 object under its own apiVersion."""
    dyn = dynamic.DynamicClient(api)
    v1 = dyn.resources.get(api_version=f"{GROUP}/v1", kind="Widget")
    v1.create(body=_widget("multi", color="red"), namespace="default")
    beta = dyn.resources.get(api_version=f"{GROUP}/v1beta1", kind="Widget")
    read = beta.get(name="multi", namespace="default")
    assert (read.apiVersion, read.spec.color) == (f"{GROUP}/v1beta1", "red")


def test_invalid_crd_is_refused_with_upstreams_message(crd_cluster: Any) -> None:
    """A non-structural schema is a 422 naming the untyped field."""
    bad = json.loads(json.dumps(GIZMOS))
    bad["metadata"]["name"] = f"doodads.{GROUP}"
    bad["spec"]["names"] = {"plural": "doodads", "kind": "Doodad"}
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"] = {"spec": {}}
    result = _kubectl(crd_cluster, "create", "-f", "-", stdin=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert (
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
        "must not be empty for specified object fields"
    ) in result.stderr


def test_deleting_a_crd_removes_its_objects(crd_cluster: Any, tmp_path: Path) -> None:
    """kubectl delete crd waits for cleanup; the objects and the endpoints are gone."""
    _kubectl(crd_cluster, "delete", "crd", f"widgets.{GROUP}", "--timeout=30s")
    gone = _kubectl(crd_cluster, "get", "widgets", "-A", check=False)
    assert gone.returncode != 0
    # kubectl's cached discovery may still list widgets; either way the server has none.
    assert (
        "the server could not find the requested resource" in gone.stderr
        or 'the server doesn\'t have a resource type "widgets"' in gone.stderr
    )
    _kubectl(crd_cluster, "apply", "-f", "-", stdin=json.dumps(WIDGETS))
    _kubectl(
        crd_cluster, "wait", "--for=condition=Established", f"crd/widgets.{GROUP}", "--timeout=20s"
    )
    again = _kubectl(crd_cluster, "get", "widgets", "-A", "-o", "name")
    assert again.stdout.strip() == ""
