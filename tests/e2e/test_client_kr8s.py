"""The ``kr8s`` client against kajitori, unchanged, both its sync API and ``kr8s.asyncio``.

One real ``kajitori up`` with a simulated node serves the module, so Deployments
really become Available and pods really have logs. Each test uses kr8s the way
its documentation does and checks upstream's observable behaviour: discovery
(names, scope, short names), who the admin is, list selectors across and within
namespaces, object create/refresh/patch/label/annotate/delete, the metav1.Status
inside ``kr8s.ServerError``, scale and ``wait`` (which kr8s builds on a watch),
watch events, custom resources through ``new_class`` and pod logs.

kr8s 0.20.15 supports Kubernetes 1.28 to 1.35 and warns (a UserWarning) when an
Api meets a newer server; that warning is expected here and filtered.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import kr8s
import kr8s.asyncio
import kr8s.asyncio.objects as aobjects
import pytest
import yaml
from kr8s._async_utils import as_sync_func
from kr8s.objects import (
    ConfigMap,
    CustomResourceDefinition,
    Deployment,
    Namespace,
    Pod,
    Secret,
    Service,
    Table,
    new_class,
)

from kajitori.testing.cluster import KajitoriCluster

NS = "kr8s"
OTHER = "kr8s-other"
NODE = "kajitori-worker"
GROUP = "kr8s.example.com"
Object = dict[str, Any]

pytestmark = pytest.mark.filterwarnings(
    "ignore:Kubernetes version v1.37.0.* is not supported:UserWarning"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    """``kajitori up`` with one simulated node: pods run, become Ready and have logs."""
    data_dir: Path = tmp_path_factory.mktemp("kr8s")
    with KajitoriCluster(data_dir, extra_args=("--nodes=1",)) as running:
        yield running


@pytest.fixture(scope="module")
def api(cluster: KajitoriCluster) -> Iterator[kr8s.Api]:
    """kr8s's sync Api from the cluster's kubeconfig, with this module's two namespaces."""
    sync_api = kr8s.api(kubeconfig=str(cluster.kubeconfig))
    for name in (NS, OTHER):
        Namespace({"metadata": {"name": name}}, api=sync_api).create()
        # Pods need the default ServiceAccount the controllers add (ServiceAccount admission).
        cluster.wait_for_namespace_defaults(name)
    yield sync_api
    # kr8s has no close(): its httpx session lives on kr8s's own event-loop thread, so it is
    # closed there (left open, its sockets are collected unclosed: a ResourceWarning).
    if sync_api._session is not None:
        as_sync_func(sync_api._session.aclose)()


@pytest.fixture
async def aapi(cluster: KajitoriCluster, api: kr8s.Api) -> AsyncIterator[kr8s.asyncio.Api]:
    """kr8s's asyncio Api in this test's event loop (kr8s keeps one per loop)."""
    async_api = await kr8s.asyncio.api(kubeconfig=str(cluster.kubeconfig))
    yield async_api
    # kr8s has no close(); its httpx session must not outlive the test's loop.
    if async_api._session is not None:
        await async_api._session.aclose()


def configmap(name: str, namespace: str = NS, **fields: Any) -> Object:
    return {"metadata": {"name": name, "namespace": namespace, **fields.pop("meta", {})}, **fields}


def status_of(error: BaseException) -> Object:
    """The metav1.Status a ``kr8s.ServerError`` carries (kr8s keeps the decoded body)."""
    assert isinstance(error, kr8s.ServerError)
    status = error.status
    assert isinstance(status, dict)
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure")
    assert error.response is not None and status["code"] == error.response.status_code
    assert str(error) == status["message"]
    return status


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ----- discovery and identity ------------------------------------------------------


def test_version_is_upstreams_1_37(api: kr8s.Api) -> None:
    version = api.version()
    assert (version["major"], version["minor"]) == ("1", "37")
    assert version["gitVersion"].startswith("v1.37.0")
    assert version["platform"].startswith("linux/")


async def test_kr8s_parses_the_version_and_warns_only_that_it_is_newer(
    cluster: KajitoriCluster,
) -> None:
    """gitVersion parses as 1.37 (a gitVersion kr8s cannot parse warns "Unable to parse")."""
    with pytest.warns(UserWarning) as caught:
        fresh = await kr8s.asyncio.api(kubeconfig=str(cluster.kubeconfig), namespace=OTHER)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "is not supported" in messages[0], messages
    assert fresh.namespace == OTHER
    assert fresh._session is not None
    await fresh._session.aclose()


def test_api_resources_have_upstreams_names_scope_and_short_names(api: kr8s.Api) -> None:
    found = {(r["version"], r["name"]): r for r in api.api_resources()}
    expected = {
        ("v1", "pods"): ("Pod", True, ["po"]),
        ("v1", "configmaps"): ("ConfigMap", True, ["cm"]),
        ("v1", "services"): ("Service", True, ["svc"]),
        ("v1", "secrets"): ("Secret", True, None),
        ("v1", "namespaces"): ("Namespace", False, ["ns"]),
        ("v1", "nodes"): ("Node", False, ["no"]),
        ("apps/v1", "deployments"): ("Deployment", True, ["deploy"]),
        ("apps/v1", "replicasets"): ("ReplicaSet", True, ["rs"]),
        ("batch/v1", "cronjobs"): ("CronJob", True, ["cj"]),
        ("networking.k8s.io/v1", "ingresses"): ("Ingress", True, ["ing"]),
        ("apiextensions.k8s.io/v1", "customresourcedefinitions"): (
            "CustomResourceDefinition",
            False,
            ["crd", "crds"],
        ),
    }
    for key, (kind, namespaced, short) in expected.items():
        resource = found[key]
        assert (resource["kind"], resource["namespaced"], resource.get("shortNames")) == (
            kind,
            namespaced,
            short,
        ), key
    # kr8s resolves what a user types through those lists, as kubectl does.
    assert api.lookup_kind("deploy") == ("deployment.apps/v1", "deployments", True)
    assert api.lookup_kind("cm") == ("configmap/v1", "configmaps", True)
    assert api.lookup_kind("no") == ("node/v1", "nodes", False)


def test_whoami_is_the_admin_and_a_self_subject_review_says_system_masters(
    api: kr8s.Api,
) -> None:
    # With a client certificate kr8s 0.20.15 reads the name from the certificate itself.
    assert api.whoami() == "kubernetes-admin"
    # The server's own answer: a SelfSubjectReview, made as kr8s makes any object.
    review_class = new_class(
        "SelfSubjectReview.authentication.k8s.io/v1", namespaced=False, asyncio=False
    )
    review = review_class({"metadata": {}}, api=api)
    review.create()
    user = review.raw["status"]["userInfo"]
    assert user["username"] == "kubernetes-admin"
    assert sorted(user["groups"]) == ["system:authenticated", "system:masters"]


async def test_whoami_with_a_token_asks_a_token_review(
    cluster: KajitoriCluster, aapi: kr8s.asyncio.Api, tmp_path: Path
) -> None:
    """A bearer-token kubeconfig: kr8s asks TokenReview (allowed by system:auth-delegator)."""
    account = await aobjects.ServiceAccount(
        {"metadata": {"name": "reviewer", "namespace": NS}}, api=aapi
    )
    await account.create()
    binding = await aobjects.ClusterRoleBinding(
        {
            "metadata": {"name": "kr8s-reviewer"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reviewer", "namespace": NS}],
        },
        api=aapi,
    )
    await binding.create()
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    async with aapi.call_api(
        "POST", namespace=NS, url="serviceaccounts/reviewer/token", json=request
    ) as response:
        token = response.json()["status"]["token"]
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path = tmp_path / "token.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    token_api = await kr8s.asyncio.api(kubeconfig=str(path))
    try:
        assert await token_api.whoami() == f"system:serviceaccount:{NS}:reviewer"
    finally:
        assert token_api._session is not None
        await token_api._session.aclose()


# ----- get with selectors ------------------------------------------------------------


def test_get_with_label_and_field_selectors_across_namespaces_and_in_one(api: kr8s.Api) -> None:
    for namespace in (NS, OTHER):
        for name, tier in (("front", "web"), ("back", "db")):
            labels = {"suite": "get", "tier": tier}
            ConfigMap(
                configmap(name, namespace, meta={"labels": labels}, data={"tier": tier}), api=api
            ).create()

    def pairs(found: Iterator[Any]) -> list[tuple[str, str]]:
        return sorted((obj.namespace, obj.name) for obj in found)

    everywhere = kr8s.get("cm", namespace=kr8s.ALL, label_selector={"suite": "get"}, api=api)
    assert pairs(everywhere) == [(NS, "back"), (NS, "front"), (OTHER, "back"), (OTHER, "front")]
    web = api.get("configmaps", namespace=kr8s.ALL, label_selector="suite=get,tier in (web)")
    assert pairs(web) == [(NS, "front"), (OTHER, "front")]
    in_other = api.get(
        "configmaps",
        namespace=kr8s.ALL,
        label_selector="suite",
        field_selector={"metadata.namespace": OTHER},
    )
    assert pairs(in_other) == [(OTHER, "back"), (OTHER, "front")]
    one = api.get(
        "cm", namespace=NS, label_selector="suite=get", field_selector="metadata.name!=front"
    )
    assert pairs(one) == [(NS, "back")]
    # Named objects come back in the order asked, typed, with their data.
    named = list(api.get("configmaps", "front", "back", namespace=OTHER))
    assert [(type(o), o.name, o.data["tier"]) for o in named] == [
        (ConfigMap, "front", "web"),
        (ConfigMap, "back", "db"),
    ]
    assert list(api.get("cm", namespace=NS, label_selector="tier notin (web,db),suite")) == []
    # as_object=Table asks for the server's Table, as kubectl get does.
    (table,) = api.get("configmaps", namespace=OTHER, label_selector="suite=get", as_object=Table)
    assert isinstance(table, Table)
    assert [c["name"] for c in table.column_definitions] == ["Name", "Data", "Age"]
    assert sorted(row["cells"][:2] for row in table.rows) == [["back", 1], ["front", 1]]
    assert all(row["object"]["kind"] == "PartialObjectMetadata" for row in table.rows)


async def test_get_follows_continue_tokens_past_its_page_of_100(aapi: kr8s.asyncio.Api) -> None:
    """kr8s lists with limit=100 and follows metadata.continue: every object once."""
    names = [f"page-{i:03}" for i in range(130)]
    made = [
        await aobjects.ConfigMap(
            configmap(name, OTHER, meta={"labels": {"paged": "yes"}}), api=aapi
        )
        for name in names
    ]
    await aapi.create(made)  # kr8s creates them concurrently
    async with aapi.call_api(
        "GET", url="configmaps", namespace=OTHER, params={"limit": 100, "labelSelector": "paged"}
    ) as response:
        first_page = response.json()
    assert len(first_page["items"]) == 100 and first_page["metadata"]["continue"]
    found = [
        cm.name async for cm in aapi.get("configmaps", namespace=OTHER, label_selector="paged")
    ]
    assert found == names  # in key order, none twice, none missing


def test_get_rejects_a_field_selector_upstream_does_not_support(api: kr8s.Api) -> None:
    with pytest.raises(kr8s.ServerError) as caught:
        list(api.get("configmaps", namespace=NS, field_selector="data.tier=web"))
    status = status_of(caught.value)
    assert (status["code"], status["reason"]) == (400, "BadRequest")
    # Upstream's answer for a kind with only the metadata fields selectable.
    assert status["message"] == (
        '"data.tier" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


# ----- objects ---------------------------------------------------------------------


def test_configmap_create_exists_refresh_patch_label_annotate_delete(api: kr8s.Api) -> None:
    cm = ConfigMap(configmap("life", data={"a": "1"}), api=api)
    assert not cm.exists()
    cm.create()
    assert cm.exists()
    created_version = cm.metadata.resourceVersion
    assert cm.metadata.uid and cm.metadata.creationTimestamp

    other = ConfigMap.get("life", namespace=NS, api=api)
    other.patch({"data": {"b": "2"}})  # a merge patch
    cm.refresh()
    assert cm.data == {"a": "1", "b": "2"}
    assert cm.metadata.resourceVersion != created_version

    cm.patch(
        [{"op": "replace", "path": "/data/a", "value": "10"}, {"op": "remove", "path": "/data/b"}],
        type="json",
    )
    assert cm.data == {"a": "10"}

    cm.label(app="demo", tier="web")
    cm.label("tier-")  # kr8s removes a label with a JSON patch
    assert cm.labels == {"app": "demo"}
    cm.annotate({"example.com/note": "hi"})
    assert cm.annotations == {"example.com/note": "hi"}
    assert cm.labels == {"app": "demo"}

    # null in a merge patch deletes the key; an empty data map is omitted, as upstream.
    cm.patch({"data": {"a": None}})
    assert "data" not in cm.raw

    cm.delete()
    assert not cm.exists()
    with pytest.raises(kr8s.NotFoundError):
        cm.refresh()


def test_errors_are_server_errors_carrying_the_status(api: kr8s.Api) -> None:
    ConfigMap(configmap("dup"), api=api).create()
    with pytest.raises(kr8s.ServerError) as caught:
        ConfigMap(configmap("dup"), api=api).create()
    status = status_of(caught.value)
    assert (status["code"], status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'configmaps "dup" already exists'
    assert status["details"] == {"name": "dup", "kind": "configmaps"}

    with pytest.raises(kr8s.ServerError) as caught:
        ConfigMap(configmap("Bad_Name"), api=api).create()
    status = status_of(caught.value)
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain must consist of"
    )
    assert status["details"]["name"] == "Bad_Name" and status["details"]["kind"] == "ConfigMap"
    (cause,) = status["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "metadata.name")

    with pytest.raises(kr8s.ServerError) as caught:
        ConfigMap(configmap("lost", "nowhere"), api=api).create()
    status = status_of(caught.value)
    assert (status["code"], status["reason"]) == (404, "NotFound")
    assert status["message"] == 'namespaces "nowhere" not found'
    assert status["details"] == {"name": "nowhere", "kind": "namespaces"}

    # kr8s turns a 404 on an object's own URL into NotFoundError, the ServerError its cause.
    with pytest.raises(kr8s.NotFoundError) as missing:
        ConfigMap(configmap("ghost"), api=api).patch({"data": {"a": "1"}})
    status = status_of(missing.value.__cause__)  # type: ignore[arg-type]
    assert (status["code"], status["message"]) == (404, 'configmaps "ghost" not found')


def test_secret_string_data_is_stored_encoded_and_selected_by_type(api: kr8s.Api) -> None:
    secret = Secret({**configmap("creds"), "stringData": {"user": "admin"}}, api=api)
    secret.create()
    assert secret.raw["type"] == "Opaque"
    assert secret.data == {"user": b64("admin")}
    assert "stringData" not in secret.raw
    secret.patch({"data": {"password": b64("s3cret")}})
    assert secret.data == {"user": b64("admin"), "password": b64("s3cret")}
    basic = {"username": b64("u"), "password": b64("p")}
    Secret(
        {**configmap("basic"), "type": "kubernetes.io/basic-auth", "data": basic}, api=api
    ).create()
    opaque = api.get("secrets", namespace=NS, field_selector={"type": "Opaque"})
    assert sorted(s.name for s in opaque) == ["creds"]
    typed = api.get("secrets", namespace=NS, field_selector="type=kubernetes.io/basic-auth")
    assert [s.name for s in typed] == ["basic"]


def deployment(name: str, replicas: int) -> Object:
    labels = {"app": name}
    container = {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def test_deployment_becomes_available_scales_and_its_service_finds_ready_pods(
    api: kr8s.Api,
) -> None:
    web = Deployment(deployment("web", 1), api=api)
    web.create()
    assert web.replicas == 1
    # 1 replica with maxUnavailable 25% (rounded down to 0): Available needs its pod Ready.
    web.wait("condition=Available", timeout=20)
    assert web.raw["status"]["availableReplicas"] == 1

    web.scale(3)
    assert web.replicas == 3
    web.wait("jsonpath='{.status.readyReplicas}'=3", timeout=20)
    pods = web.pods()
    assert len(pods) == 3 and all(p.spec.nodeName == NODE for p in pods)
    assert web.ready()

    service = Service(
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        api=api,
    )
    service.create()
    assert service.spec.type == "ClusterIP"
    assert ipaddress.ip_address(service.spec.clusterIP) in ipaddress.ip_network("10.96.0.0/12")
    assert service.spec.ports[0].protocol == "TCP"
    assert service.ready()
    assert sorted(p.name for p in service.ready_pods()) == sorted(p.name for p in pods)

    # Foreground: the Deployment goes only after its ReplicaSet and pods are gone (the
    # kubelet ends the pods' graceful deletion); kr8s waits on a watch for the last event.
    web.delete(propagation_policy="Foreground")
    web.wait("delete", timeout=20)
    assert not web.exists()
    assert web.pods() == []
    assert list(api.get("replicasets", namespace=NS, label_selector="app=web")) == []


# ----- watches ---------------------------------------------------------------------


async def test_api_watch_by_label_follows_an_object_into_and_out_of_the_selector(
    aapi: kr8s.asyncio.Api,
) -> None:
    """Upstream's watch cache sends DELETED when an update takes an object out of the
    selector (the old content at the new resourceVersion) and ADDED when one brings it in."""
    cm = await aobjects.ConfigMap(
        configmap("watched", meta={"labels": {"watch": "me"}}, data={"v": "1"}), api=aapi
    )
    await cm.create()
    seen: list[tuple[str, dict[str, str], dict[str, str]]] = []
    versions: list[tuple[str, str]] = []  # (the event's, the object's after our change)
    # No resourceVersion: the watch starts with the object as it is (a synthetic ADDED).
    events = aapi.watch("configmaps", namespace=NS, label_selector="watch=me")
    async with asyncio.timeout(15):
        async for kind, obj in events:
            seen.append((kind, dict(obj.labels), dict(obj.raw.get("data", {}))))
            versions.append((obj.metadata.resourceVersion, cm.metadata.resourceVersion))
            if len(seen) == 1:
                await cm.patch({"data": {"v": "2"}})
            elif len(seen) == 2:
                await cm.label("watch-")
            elif len(seen) == 3:
                await cm.label(watch="me")
            else:
                break
    await events.aclose()
    me = {"watch": "me"}
    assert seen == [
        ("ADDED", me, {"v": "1"}),
        ("MODIFIED", me, {"v": "2"}),
        ("DELETED", me, {"v": "2"}),
        ("ADDED", me, {"v": "2"}),
    ]
    assert all(event == current for event, current in versions), versions
    assert await cm.exists()  # it only left the selector for a while


async def test_object_watch_resumes_from_its_resource_version_until_deleted(
    aapi: kr8s.asyncio.Api,
) -> None:
    cm = await aobjects.ConfigMap(configmap("resumed", data={"v": "1"}), api=aapi)
    await cm.create()
    stale = await aobjects.ConfigMap.get("resumed", namespace=NS, api=aapi)
    # Both changes happen before the watch opens: it replays them from stale's version.
    await cm.patch({"data": {"v": "2"}})
    await cm.annotate(step="two")
    annotated = cm.metadata.resourceVersion
    seen: list[tuple[str, str, str | None]] = []
    versions: list[str] = []
    events = stale.watch()
    async with asyncio.timeout(15):
        async for kind, obj in events:
            seen.append((kind, obj.raw["data"]["v"], obj.annotations.get("step")))
            versions.append(obj.metadata.resourceVersion)
            if len(seen) == 2:
                await cm.delete()
            if kind == "DELETED":
                break
    await events.aclose()
    assert seen == [("MODIFIED", "2", None), ("MODIFIED", "2", "two"), ("DELETED", "2", "two")]
    # The deleted object is the last state, at the deletion's own resourceVersion.
    assert versions[1] == annotated and len(set(versions)) == 3


# ----- custom resources ------------------------------------------------------------

WIDGETS: Object = {
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "selectableFields": [{"jsonPath": ".spec.color"}],
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
                                    "size": {"type": "integer", "default": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_custom_resources_through_new_class(api: kr8s.Api) -> None:
    crd = CustomResourceDefinition(WIDGETS, api=api)
    crd.create()
    crd.wait("condition=Established", timeout=10)

    widget_class = new_class(
        f"Widget.{GROUP}/v1", namespaced=True, scalable=True, scalable_spec="size"
    )
    widget = widget_class(
        {"metadata": {"name": "w1", "namespace": NS}, "spec": {"color": "red"}}, api=api
    )
    widget.create()
    assert widget.spec == {"color": "red", "size": 1}  # the schema's default
    assert widget.raw["apiVersion"] == f"{GROUP}/v1"
    widget_class(
        {"metadata": {"name": "w2", "namespace": NS}, "spec": {"color": "blue"}}, api=api
    ).create()

    widget.patch({"spec": {"color": "blue"}})
    widget.scale(4)
    assert widget.replicas == 4
    widget.refresh()
    assert widget.spec == {"color": "blue", "size": 4}

    # kr8s finds the new kind by plural, short name and group through discovery.
    by_short = kr8s.get("wd", namespace=NS, api=api)
    assert sorted((w.name, w.spec.color) for w in by_short) == [("w1", "blue"), ("w2", "blue")]
    widget_class(
        {"metadata": {"name": "w3", "namespace": NS}, "spec": {"color": "red"}}, api=api
    ).create()
    red = api.get(f"widgets.{GROUP}", namespace=NS, field_selector="spec.color=red")
    assert [w.name for w in red] == ["w3"]

    with pytest.raises(kr8s.ServerError) as caught:
        widget.patch({"spec": {"size": 11}})
    status = status_of(caught.value)
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        f'Widget.{GROUP} "w1" is invalid: spec: Invalid value: "object": size is at most 10'
    )
    assert (status["details"]["group"], status["details"]["kind"]) == (GROUP, "Widget")

    widget.delete()
    assert not widget.exists()
    assert sorted(w.name for w in api.get("widgets", namespace=NS)) == ["w2", "w3"]


# ----- pods ------------------------------------------------------------------------


def test_pod_logs_from_the_simulated_node_and_wait_for_delete(api: kr8s.Api) -> None:
    pod = Pod(
        {
            "metadata": {"name": "talker", "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
        api=api,
    )
    pod.create()
    pod.wait("condition=Ready", timeout=20)
    assert pod.ready()
    on_node = api.get(
        "pods",
        namespace=kr8s.ALL,
        field_selector={"spec.nodeName": NODE, "metadata.name": "talker"},
    )
    assert [(p.namespace, p.name) for p in on_node] == [(NS, "talker")]

    lines = list(pod.logs())
    assert lines == [f"kajitori simulated container c of pod {NS}/talker started (run 0)"]
    assert list(pod.logs(container="c", tail_lines=1)) == lines
    assert list(pod.logs(limit_bytes=10)) == [lines[0][:10]]
    (stamped,) = pod.logs(timestamps=True)
    moment, text = stamped.split(" ", 1)
    assert text == lines[0]
    # The kubelet's RFC 3339 with nanoseconds (trailing zeros dropped), in UTC.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", moment), moment
    with pytest.raises(kr8s.ServerError) as caught:
        list(pod.logs(container="nope"))
    status = status_of(caught.value)
    assert (status["code"], status["reason"]) == (400, "BadRequest")
    assert status["message"] == "container nope is not valid for pod talker"

    pod.delete()
    # The kubelet finishes the graceful deletion; kr8s waits on a watch for it to go.
    pod.wait("delete", timeout=20)
    assert not pod.exists()
