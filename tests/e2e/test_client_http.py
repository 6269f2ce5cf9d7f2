"""Raw HTTPS against kajitori: negotiation, warnings, limits, health, version and discovery.

These are the parts of the API a typed client hides: Accept-header
transforms (``Table``, ``PartialObjectMetadata``, aggregated discovery),
``Warning`` headers, the request body limit and the non-resource paths.
Requests use httpx with the kubeconfig's admin client certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.https import https_client

from kajitori.testing.cluster import KajitoriCluster

NS = "raw"
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"
PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
PARTIAL = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.fixture(scope="module")
def http(cluster: KajitoriCluster) -> Iterator[httpx.Client]:
    """A raw HTTPS client and a namespace with a bound pod and a deployment in it."""
    with https_client(cluster.kubeconfig) as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
        c.post(f"/api/v1/namespaces/{NS}/pods", json=_pod("web-0")).raise_for_status()
        c.post(f"/apis/apps/v1/namespaces/{NS}/deployments", json=_deployment("web", {}))
        yield c


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx:1"}]},
    }


def _deployment(name: str, extra_spec: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
            **extra_spec,
        },
    }


# ----- transforms: PartialObjectMetadata and Table ------------------------------------------


# The deployment's controllers add pods to the namespace concurrently (and may adopt web-0,
# which its selector matches), so the list transforms below look at web-0 alone.
WEB_0 = {"fieldSelector": "metadata.name=web-0"}


def test_partial_object_metadata_list_has_metadata_only(http: httpx.Client) -> None:
    """as=PartialObjectMetadataList answers metadata of each item, without spec or data."""
    r = http.get(f"/api/v1/namespaces/{NS}/pods", params=WEB_0, headers={"Accept": PARTIAL_LIST})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert (body["kind"], body["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    assert body["metadata"]["resourceVersion"]
    [item] = body["items"]
    assert (item["kind"], item["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    assert item["metadata"]["name"] == "web-0"
    assert item["metadata"]["labels"] == {"app": "web"}
    assert set(item) == {"kind", "apiVersion", "metadata"}


def test_partial_object_metadata_of_one_object(http: httpx.Client) -> None:
    """as=PartialObjectMetadata on a GET of one object answers its metadata only."""
    r = http.get(f"/api/v1/namespaces/{NS}/pods/web-0", headers={"Accept": PARTIAL})
    body = r.json()
    assert body["kind"] == "PartialObjectMetadata"
    assert body["metadata"]["name"] == "web-0"
    assert "spec" not in body


def test_pod_table_has_wide_columns_at_priority_one(http: httpx.Client) -> None:
    """as=Table gives kubectl's pod columns; IP/Node/... are priority 1 (shown by -o wide)."""
    r = http.get(f"/api/v1/namespaces/{NS}/pods", params=WEB_0, headers={"Accept": TABLE})
    table = r.json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    [row] = table["rows"]
    cells = row["cells"]
    assert cells[:4] == ["web-0", "0/1", "Pending", "0"]
    assert cells[5:] == ["<none>", "node-a", "<none>", "<none>"]
    # includeObject defaults to Metadata: each row carries the object's metadata.
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "web-0"


def test_deployment_table_wide_columns(http: httpx.Client) -> None:
    """Deployments show Containers, Images and Selector at priority 1."""
    r = http.get(f"/apis/apps/v1/namespaces/{NS}/deployments/web", headers={"Accept": TABLE})
    table = r.json()
    wide = {c["name"]: i for i, c in enumerate(table["columnDefinitions"]) if c["priority"] == 1}
    assert list(wide) == ["Containers", "Images", "Selector"]
    cells = table["rows"][0]["cells"]
    assert cells[0] == "web"
    assert cells[wide["Containers"]] == "c"
    assert cells[wide["Images"]] == "nginx:1"
    assert cells[wide["Selector"]] == "app=web"


@pytest.mark.parametrize(
    ("include", "kind"),
    [pytest.param("Object", "Pod", id="object"), pytest.param("None", None, id="none")],
)
def test_table_include_object(http: httpx.Client, include: str, kind: str | None) -> None:
    """includeObject=Object embeds the full object, None embeds nothing."""
    r = http.get(
        f"/api/v1/namespaces/{NS}/pods",
        params={**WEB_0, "includeObject": include},
        headers={"Accept": TABLE},
    )
    row = r.json()["rows"][0]
    assert (row.get("object") or {}).get("kind") == kind


# ----- fieldValidation ------------------------------------------------------------------------


def _with_unknown_field(name: str) -> dict[str, Any]:
    return _deployment(name, {"foo": 1})


def test_field_validation_strict_refuses_unknown_fields(http: httpx.Client) -> None:
    """Strict: 400 BadRequest with upstream's strict decoding message; nothing stored."""
    r = http.post(
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        params={"fieldValidation": "Strict"},
        json=_with_unknown_field("strict"),
    )
    assert r.status_code == 400
    status = r.json()
    assert status["reason"] == "BadRequest"
    assert status["message"] == 'strict decoding error: unknown field "spec.foo"'
    assert http.get(f"/apis/apps/v1/namespaces/{NS}/deployments/strict").status_code == 404


@pytest.mark.parametrize(
    ("mode", "warnings"),
    [
        pytest.param("Warn", ['299 - "unknown field \\"spec.foo\\""'], id="warn"),
        pytest.param("", ['299 - "unknown field \\"spec.foo\\""'], id="default-is-warn"),
        pytest.param("Ignore", [], id="ignore"),
    ],
)
def test_field_validation_warn_and_ignore_store_without_the_field(
    http: httpx.Client, mode: str, warnings: list[str]
) -> None:
    """Warn (the default) stores and sends a Warning header per field; Ignore stays silent."""
    name = f"fv-{mode.lower() or 'default'}"
    params = {"fieldValidation": mode} if mode else {}
    r = http.post(
        f"/apis/apps/v1/namespaces/{NS}/deployments", params=params, json=_with_unknown_field(name)
    )
    assert r.status_code == 201
    assert r.headers.get_list("warning") == warnings
    assert "foo" not in r.json()["spec"]


def test_field_validation_applies_to_patch(http: httpx.Client) -> None:
    """A merge patch adding an unknown field is refused under Strict, warned under Warn."""
    url = f"/apis/apps/v1/namespaces/{NS}/deployments/web"
    headers = {"Content-Type": "application/merge-patch+json"}
    patch = json.dumps({"spec": {"bogus": True}})
    strict = http.patch(url, params={"fieldValidation": "Strict"}, content=patch, headers=headers)
    assert strict.status_code == 400
    assert strict.json()["message"] == 'strict decoding error: unknown field "spec.bogus"'
    warn = http.patch(url, content=patch, headers=headers)
    assert warn.status_code == 200
    assert warn.headers.get_list("warning") == ['299 - "unknown field \\"spec.bogus\\""']


def test_invalid_field_validation_value_is_400(http: httpx.Client) -> None:
    """fieldValidation accepts only Ignore, Warn and Strict."""
    r = http.post(
        f"/api/v1/namespaces/{NS}/configmaps",
        params={"fieldValidation": "Loud"},
        json={"metadata": {"name": "loud"}},
    )
    assert r.status_code == 400
    assert r.json()["message"] == "fieldValidation must be one of Ignore, Warn, Strict, got: Loud"


# ----- request limits ------------------------------------------------------------------------


def test_body_over_3_mib_is_413_with_a_status(http: httpx.Client) -> None:
    """A 4 MiB body is refused before decoding: 413 RequestEntityTooLarge as a Status."""
    body = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "huge"},
            "data": {"x": "a" * (4 << 20)},
        }
    )
    r = http.post(
        f"/api/v1/namespaces/{NS}/configmaps",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    status = r.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "RequestEntityTooLarge"
    assert status["message"] == "Request entity too large: limit is 3145728"
    assert http.get(f"/api/v1/namespaces/{NS}/configmaps/huge").status_code == 404


# ----- non-resource paths ------------------------------------------------------------------------


def test_version_says_1_37(http: httpx.Client) -> None:
    """/version reports Kubernetes 1.37."""
    info = http.get("/version").json()
    assert (info["major"], info["minor"]) == ("1", "37")
    assert info["gitVersion"].startswith("v1.37.")


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_endpoints_say_ok(http: httpx.Client, path: str) -> None:
    """Health, liveness and readiness answer 200 "ok"; ?verbose lists the checks."""
    r = http.get(path)
    assert (r.status_code, r.text) == (200, "ok")
    verbose = http.get(path, params={"verbose": "1"})
    assert verbose.status_code == 200
    assert "[+]ping ok" in verbose.text
    assert verbose.text.rstrip().endswith("check passed")


def test_legacy_discovery_lists_core_and_groups(http: httpx.Client) -> None:
    """/api lists v1; /apis lists groups with preferred versions; /api/v1 lists resources."""
    api = http.get("/api").json()
    assert (api["kind"], api["versions"]) == ("APIVersions", ["v1"])
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    resources = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert resources["pods"]["namespaced"] is True
    assert "po" in resources["pods"]["shortNames"]
    assert "pods/status" in resources
    assert resources["namespaces"]["namespaced"] is False


def test_aggregated_discovery_v2(http: httpx.Client) -> None:
    """The aggregated discovery Accept header gets an APIGroupDiscoveryList with that type."""
    r = http.get("/apis", headers={"Accept": DISCOVERY})
    assert r.status_code == 200
    assert r.headers["content-type"] == DISCOVERY
    body = r.json()
    assert (body["kind"], body["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    apps = next(g for g in body["items"] if g["metadata"].get("name") == "apps")
    deployments = next(
        r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments"
    )
    assert deployments["scope"] == "Namespaced"
    assert deployments["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert {s["subresource"] for s in deployments["subresources"]} >= {"status", "scale"}

    core = http.get("/api", headers={"Accept": DISCOVERY}).json()
    [v1] = core["items"][0]["versions"]
    assert v1["version"] == "v1"
    assert "pods" in {r["resource"] for r in v1["resources"]}
