"""The ``kubernetes_asyncio`` client against kajitori, unchanged, as an async operator uses it.

One real ``kajitori up`` serves the whole module. Each test drives the client's
typed APIs (or its watch helper, dynamic client and leader election) and
checks upstream's observable behaviour: typed models that round-trip,
resourceVersion and generation bookkeeping, metav1.Status error bodies,
selectors and paging, ordered watch events, the four patch types, and the
scale and status subresources.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.leaderelection.electionconfig import Config
from kubernetes_asyncio.leaderelection.leaderelection import LeaderElection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from kajitori.testing.cluster import KajitoriCluster

NS = "kasync"

# Every test shares the module's event loop, so the module-scoped ApiClient
# (an aiohttp session bound to one loop) serves them all.
pytestmark = pytest.mark.asyncio(loop_scope="module")

T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def sent_as(content_type: str) -> dict[str, Any]:
    """Keyword arguments that make a patch method send ``content_type``.

    The generated methods take ``_content_type`` (and otherwise pick JSON patch
    for a list body, strategic merge patch for a dict); their .pyi stubs omit it.
    """
    return {"_content_type": content_type}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(cluster: KajitoriCluster) -> AsyncIterator[client.ApiClient]:
    """An ApiClient loaded from the cluster's kubeconfig, with this module's namespace."""
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(cluster.kubeconfig), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api_client:
        await client.CoreV1Api(api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NS))
        )
        # The namespace soon holds kube-root-ca.crt; wait so lists below are stable.
        await asyncio.to_thread(cluster.wait_for_namespace_defaults, NS)
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def status_of(exc: ApiException) -> dict[str, Any]:
    """The metav1.Status a failed request carried, checked for its fixed fields."""
    body: dict[str, Any] = json.loads(exc.body or b"")
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


async def refused(call: Awaitable[Any]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and metav1.Status of a call that must fail."""
    with pytest.raises(ApiException) as info:
        await call
    return info.value.status, status_of(info.value)


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], tries: int = 10) -> T:
    """Read-modify-write as operators do: controllers also write, so retry on 409."""
    for _ in range(tries - 1):
        try:
            return await attempt()
        except ApiException as exc:
            if exc.status != 409:
                raise
    return await attempt()


def configmap(name: str, data: dict[str, str] | None = None, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels or None), data=data
    )


def deployment(name: str, *containers: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name=c, image="nginx") for c in containers]
                ),
            ),
        ),
    )


def container_images(dep: client.V1Deployment) -> dict[str, str]:
    return {c.name: c.image for c in dep.spec.template.spec.containers}


# ----- CRUD and typed models ------------------------------------------------------------


async def test_configmap_crud_with_typed_models(core: client.CoreV1Api) -> None:
    """Create/read/replace/delete: typed objects back, RV moves, UID stays, delete is a Status."""
    created = await core.create_namespaced_config_map(NS, configmap("crud", {"a": "1"}, app="x"))
    assert isinstance(created, client.V1ConfigMap)
    assert created.metadata.namespace == NS and created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    # With no fieldManager, the manager is the User-Agent up to its first "/".
    assert [(e.manager, e.operation) for e in created.metadata.managed_fields] == [
        ("OpenAPI-Generator", "Update")
    ]

    read = await core.read_namespaced_config_map("crud", NS)
    assert read.data == {"a": "1"} and read.metadata.labels == {"app": "x"}
    assert read.metadata.resource_version == created.metadata.resource_version

    # The read model goes back as the body (datetimes and managedFields included).
    read.data["b"] = "2"
    replaced = await core.replace_namespaced_config_map("crud", NS, read)
    assert replaced.data == {"a": "1", "b": "2"}
    assert replaced.metadata.uid == created.metadata.uid
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    deleted = await core.delete_namespaced_config_map("crud", NS)
    assert isinstance(deleted, client.V1Status)
    assert deleted.status == "Success"
    assert deleted.details.name == "crud" and deleted.details.kind == "configmaps"
    assert deleted.details.uid == created.metadata.uid
    code, _ = await refused(core.read_namespaced_config_map("crud", NS))
    assert code == 404


async def test_secret_binary_data_and_string_data(core: client.CoreV1Api) -> None:
    """data holds arbitrary bytes (base64 on the wire); stringData is folded into data."""
    blob = bytes(range(256))
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="binary"),
        data={"blob": base64.b64encode(blob).decode()},
        string_data={"text": "héllo"},
    )
    created = await core.create_namespaced_secret(NS, secret)
    assert created.type == "Opaque"
    read = await core.read_namespaced_secret("binary", NS)
    assert base64.b64decode(read.data["blob"]) == blob
    assert base64.b64decode(read.data["text"]) == "héllo".encode()
    assert read.string_data is None


async def test_deployment_crud_defaults_and_generation(apps: client.AppsV1Api) -> None:
    """apps/v1 defaults are filled in; a spec change bumps generation, a label change does not."""
    created = await apps.create_namespaced_deployment(NS, deployment("web", "c"))
    assert isinstance(created, client.V1Deployment)
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    assert created.spec.revision_history_limit == 10
    assert created.spec.progress_deadline_seconds == 600
    assert created.spec.template.spec.restart_policy == "Always"

    async def set_image() -> client.V1Deployment:
        current = await apps.read_namespaced_deployment("web", NS)
        current.spec.template.spec.containers[0].image = "nginx:2"
        return await apps.replace_namespaced_deployment("web", NS, current)

    updated = await retry_on_conflict(set_image)
    assert container_images(updated) == {"c": "nginx:2"}
    assert updated.metadata.generation == 2

    relabelled = await apps.patch_namespaced_deployment(
        "web", NS, {"metadata": {"labels": {"tier": "front"}}}
    )
    assert relabelled.metadata.generation == 2

    await apps.delete_namespaced_deployment("web", NS)


async def test_generate_name(core: client.CoreV1Api) -> None:
    """generateName gets a five-character random suffix; two creates get two names."""
    template = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    first = await core.create_namespaced_config_map(NS, template)
    second = await core.create_namespaced_config_map(NS, template)
    for made in (first, second):
        assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9
        assert made.metadata.generate_name == "gen-"
    assert first.metadata.name != second.metadata.name


async def test_stale_update_is_409_conflict(core: client.CoreV1Api) -> None:
    """Replacing with an old resourceVersion fails with upstream's optimistic-lock Status."""
    stale = await core.create_namespaced_config_map(NS, configmap("stale", {"v": "1"}))
    fresh = await core.read_namespaced_config_map("stale", NS)
    fresh.data = {"v": "2"}
    await core.replace_namespaced_config_map("stale", NS, fresh)

    stale.data = {"v": "3"}
    code, status = await refused(core.replace_namespaced_config_map("stale", NS, stale))
    assert code == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "stale": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": "stale", "kind": "configmaps"}
    assert (await core.read_namespaced_config_map("stale", NS)).data == {"v": "2"}


async def test_dry_run_create_persists_nothing(core: client.CoreV1Api) -> None:
    """dryRun=All answers with the object as it would be stored, without storing it."""
    answer = await core.create_namespaced_config_map(
        NS, configmap("dry", {"a": "1"}), dry_run="All"
    )
    assert answer.metadata.uid and answer.data == {"a": "1"}
    assert answer.metadata.resource_version is None
    code, _ = await refused(core.read_namespaced_config_map("dry", NS))
    assert code == 404


async def test_delete_preconditions(core: client.CoreV1Api) -> None:
    """DeleteOptions preconditions (UID, resourceVersion) that do not hold are a 409."""
    created = await core.create_namespaced_config_map(NS, configmap("guarded"))
    uid, rv = created.metadata.uid, created.metadata.resource_version
    wrong_uid = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-it"))
    code, status = await refused(core.delete_namespaced_config_map("guarded", NS, body=wrong_uid))
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "guarded": Precondition failed: '
        f"UID in precondition: not-it, UID in object meta: {uid}"
    )
    wrong_rv = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    code, status = await refused(core.delete_namespaced_config_map("guarded", NS, body=wrong_rv))
    assert code == 409
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "guarded": Precondition failed: '
        f"ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}"
    )
    right = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=uid, resource_version=rv)
    )
    deleted = await core.delete_namespaced_config_map("guarded", NS, body=right)
    assert deleted.status == "Success"


# ----- errors ---------------------------------------------------------------------------


async def test_not_found_status(core: client.CoreV1Api) -> None:
    code, status = await refused(core.read_namespaced_config_map("nope", NS))
    assert code == 404
    assert status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "nope" not found'
    assert status["details"] == {"name": "nope", "kind": "configmaps"}


async def test_invalid_name_is_422_with_causes(core: client.CoreV1Api) -> None:
    """A name that is not a DNS-1123 subdomain: Invalid, with a FieldValueInvalid cause."""
    code, status = await refused(core.create_namespaced_config_map(NS, configmap("Bad_Name")))
    assert code == 422
    assert status["reason"] == "Invalid"
    rule = (
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
        "'-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert status["message"] == (
        f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {rule}'
    )
    assert status["details"]["name"] == "Bad_Name"
    assert status["details"]["kind"] == "ConfigMap"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "Bad_Name": {rule}',
            "field": "metadata.name",
        }
    ]


async def test_create_twice_is_409_already_exists(core: client.CoreV1Api) -> None:
    await core.create_namespaced_config_map(NS, configmap("twice"))
    code, status = await refused(core.create_namespaced_config_map(NS, configmap("twice")))
    assert code == 409
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "twice" already exists'
    assert status["details"] == {"name": "twice", "kind": "configmaps"}


# ----- lists --------------------------------------------------------------------------------


def names(result: Any) -> list[str]:
    return [item.metadata.name for item in result.items]


async def test_label_and_field_selectors(core: client.CoreV1Api) -> None:
    for name, labels in {
        "sel-a": {"env": "prod", "tier": "web"},
        "sel-b": {"env": "dev", "tier": "web"},
        "sel-c": {"env": "prod"},
    }.items():
        meta = client.V1ObjectMeta(name=name, labels=labels)
        await core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta))

    async def listed(label_selector: str = "", field_selector: str = "") -> list[str]:
        # An empty selector selects everything, as an absent one does.
        return names(
            await core.list_namespaced_config_map(
                NS, label_selector=label_selector, field_selector=field_selector
            )
        )

    assert await listed(label_selector="env=prod") == ["sel-a", "sel-c"]
    assert await listed(label_selector="tier,env!=prod") == ["sel-b"]
    assert await listed(label_selector="env in (dev,test)") == ["sel-b"]
    assert await listed(field_selector="metadata.name=sel-c") == ["sel-c"]
    assert await listed(label_selector="tier=web", field_selector="metadata.name!=sel-a") == [
        "sel-b"
    ]


async def test_paging_with_limit_and_continue(core: client.CoreV1Api) -> None:
    """limit=3 over seven matching objects: pages of 3, 3, 1 joined by continue tokens."""
    for i in range(7):
        await core.create_namespaced_config_map(NS, configmap(f"page-{i}", batch="paged"))

    first = await core.list_namespaced_config_map(NS, label_selector="batch=paged", limit=3)
    pages = [names(first)]
    token = first.metadata._continue
    while token:
        page = await core.list_namespaced_config_map(
            NS, label_selector="batch=paged", limit=3, _continue=token
        )
        # Every page comes from the first page's snapshot.
        assert page.metadata.resource_version == first.metadata.resource_version
        pages.append(names(page))
        token = page.metadata._continue
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [name for page in pages for name in page] == [f"page-{i}" for i in range(7)]


# ----- watch --------------------------------------------------------------------------------


async def watch_events(
    core: client.CoreV1Api, *, count: int, timeout: int = 5, **kwargs: Any
) -> list[dict[str, Any]]:
    """Up to ``count`` ConfigMap events in NS from ``Watch().stream``; stops early at count."""
    events: list[dict[str, Any]] = []
    async with watch.Watch() as w:
        stream = w.stream(core.list_namespaced_config_map, NS, timeout_seconds=timeout, **kwargs)
        async for event in stream:
            events.append(event)
            if len(events) >= count:
                w.stop()
    return events


async def test_watch_added_modified_deleted_and_resume(core: client.CoreV1Api) -> None:
    """Events arrive in order as typed objects; a watch resumed from an event's RV sees the rest."""
    start = (await core.list_namespaced_config_map(NS)).metadata.resource_version
    await core.create_namespaced_config_map(NS, configmap("watched", group="w"))
    await core.patch_namespaced_config_map("watched", NS, {"data": {"k": "v"}})
    await core.delete_namespaced_config_map("watched", NS)

    events = await watch_events(core, count=3, resource_version=start, label_selector="group=w")
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(isinstance(e["object"], client.V1ConfigMap) for e in events)
    assert all(e["object"].metadata.name == "watched" for e in events)
    assert events[1]["object"].data == {"k": "v"}
    assert events[1]["raw_object"]["data"] == {"k": "v"}
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert rvs == sorted(set(rvs)) and rvs[0] > int(start)

    resumed = await watch_events(
        core,
        count=2,
        resource_version=events[0]["object"].metadata.resource_version,
        label_selector="group=w",
    )
    assert [e["type"] for e in resumed] == ["MODIFIED", "DELETED"]


async def test_watch_timeout_seconds_ends_the_stream(core: client.CoreV1Api) -> None:
    """With nothing to report, the server closes the stream after timeoutSeconds."""
    rv = (await core.list_namespaced_config_map(NS)).metadata.resource_version
    events = await asyncio.wait_for(
        watch_events(core, count=1, timeout=1, resource_version=rv, label_selector="group=never"),
        timeout=15,
    )
    assert events == []


# ----- patches ------------------------------------------------------------------------------


async def test_json_patch(core: client.CoreV1Api) -> None:
    """A list body is sent as application/json-patch+json."""
    await core.create_namespaced_config_map(NS, configmap("jp", {"a": "1", "b": "2"}))
    patched = await core.patch_namespaced_config_map(
        "jp",
        NS,
        [
            {"op": "replace", "path": "/data/a", "value": "10"},
            {"op": "remove", "path": "/data/b"},
            {"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}},
        ],
    )
    assert patched.data == {"a": "10"}
    assert patched.metadata.labels == {"patched": "yes"}


async def test_merge_patch_null_deletes_a_key(core: client.CoreV1Api) -> None:
    await core.create_namespaced_config_map(NS, configmap("mp", {"a": "1", "b": "2"}))
    patched = await core.patch_namespaced_config_map(
        "mp", NS, {"data": {"a": None, "c": "3"}}, **sent_as(MERGE_PATCH)
    )
    assert patched.data == {"b": "2", "c": "3"}


async def test_strategic_merge_patch_merges_containers_by_name(apps: client.AppsV1Api) -> None:
    """A dict body is a strategic merge patch (containers merged by name); a merge patch
    of the same body replaces the whole list."""
    await apps.create_namespaced_deployment(NS, deployment("smp", "c", "d", replicas=0))
    body = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}

    strategic = await apps.patch_namespaced_deployment("smp", NS, body)
    assert container_images(strategic) == {"c": "busybox", "d": "nginx"}

    merged = await apps.patch_namespaced_deployment("smp", NS, body, **sent_as(MERGE_PATCH))
    assert container_images(merged) == {"c": "busybox"}


def managers(obj: client.V1ConfigMap) -> dict[str, tuple[str, Any]]:
    return {e.manager: (e.operation, e.fields_v1) for e in obj.metadata.managed_fields}


async def test_server_side_apply_ownership_and_conflict(core: client.CoreV1Api) -> None:
    """Apply records the manager's fields; a second manager conflicts unless it forces."""

    def manifest(value: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "applied"},
            "data": {"key": value},
        }

    created = await core.patch_namespaced_config_map(
        "applied", NS, manifest("a"), field_manager="op-a", **sent_as(APPLY_PATCH)
    )
    assert created.data == {"key": "a"}
    assert managers(created) == {"op-a": ("Apply", {"f:data": {"f:key": {}}})}
    entry = created.metadata.managed_fields[0]
    assert entry.api_version == "v1" and entry.fields_type == "FieldsV1"

    code, status = await refused(
        core.patch_namespaced_config_map(
            "applied", NS, manifest("b"), field_manager="op-b", **sent_as(APPLY_PATCH)
        )
    )
    assert code == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "op-a": .data.key'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "op-a"', "field": ".data.key"}
    ]

    forced = await core.patch_namespaced_config_map(
        "applied",
        NS,
        manifest("b"),
        field_manager="op-b",
        force=True,
        **sent_as(APPLY_PATCH),
    )
    assert forced.data == {"key": "b"}
    # op-a lost its only field, so its entry is gone.
    assert managers(forced) == {"op-b": ("Apply", {"f:data": {"f:key": {}}})}


async def test_patch_options_are_validated(core: client.CoreV1Api) -> None:
    """An apply without fieldManager, and force on a non-apply patch, are 422 on PatchOptions.

    The client sends ``force=True`` (Python's spelling), which must count as true.
    """
    await core.create_namespaced_config_map(NS, configmap("opts", {"a": "1"}))
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "opts"}}
    code, status = await refused(
        core.patch_namespaced_config_map("opts", NS, manifest, **sent_as(APPLY_PATCH))
    )
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: is required for apply patch",
            "field": "fieldManager",
        }
    ]

    code, status = await refused(
        core.patch_namespaced_config_map(
            "opts", NS, {"data": {"b": "2"}}, force=True, **sent_as(MERGE_PATCH)
        )
    )
    assert code == 422
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: '
        "may not be specified for non-apply patch"
    )
    assert (await core.read_namespaced_config_map("opts", NS)).data == {"a": "1"}


# ----- subresources -------------------------------------------------------------------------


async def test_deployment_scale_read_and_replace(apps: client.AppsV1Api) -> None:
    await apps.create_namespaced_deployment(NS, deployment("scaled", "c", replicas=0))
    scale = await apps.read_namespaced_deployment_scale("scaled", NS)
    assert isinstance(scale, client.V1Scale)
    assert scale.spec.replicas == 0
    assert scale.status.selector == "app=scaled"

    async def scale_to_two() -> client.V1Scale:
        current = await apps.read_namespaced_deployment_scale("scaled", NS)
        current.spec.replicas = 2
        return await apps.replace_namespaced_deployment_scale("scaled", NS, current)

    replaced = await retry_on_conflict(scale_to_two)
    assert replaced.spec.replicas == 2
    assert (await apps.read_namespaced_deployment("scaled", NS)).spec.replicas == 2
    # Back to zero so the controllers have nothing left to run.
    await apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": 0}})


async def test_deployment_status_replace_ignores_spec(apps: client.AppsV1Api) -> None:
    """PUT .../status stores status and keeps the old spec; PUT on the object keeps status."""
    await apps.create_namespaced_deployment(NS, deployment("stat", "c", replicas=0))
    condition = client.V1DeploymentCondition(
        type="example.com/Checked", status="True", reason="Test", message="set by the test"
    )

    async def replace_status() -> client.V1Deployment:
        current = await apps.read_namespaced_deployment("stat", NS)
        current.spec.replicas = 5
        current.status.conditions = [*(current.status.conditions or []), condition]
        return await apps.replace_namespaced_deployment_status("stat", NS, current)

    replaced = await retry_on_conflict(replace_status)
    assert replaced.spec.replicas == 0
    assert "example.com/Checked" in [c.type for c in replaced.status.conditions]

    async def replace_object() -> client.V1Deployment:
        current = await apps.read_namespaced_deployment("stat", NS)
        current.status.observed_generation = 999
        current.metadata.labels = {"touched": "yes"}
        return await apps.replace_namespaced_deployment("stat", NS, current)

    updated = await retry_on_conflict(replace_object)
    assert updated.metadata.labels == {"touched": "yes"}
    assert updated.status.observed_generation != 999


# ----- dynamic client -----------------------------------------------------------------------


async def test_dynamic_client_discovers_gets_and_lists(
    api: client.ApiClient, core: client.CoreV1Api, tmp_path: Path
) -> None:
    """DynamicClient finds ConfigMap and Deployment through discovery and reads them."""
    await core.create_namespaced_config_map(NS, configmap("dyn", {"x": "1"}, via="dynamic"))
    # A discovery cache of this test's own, not one shared in /tmp with other servers.
    async with DynamicClient(api, cache_file=str(tmp_path / "discovery.json")) as dyn:
        configmaps = await dyn.resources.get(api_version="v1", kind="ConfigMap")
        assert configmaps.name == "configmaps" and configmaps.namespaced

        got = await dyn.get(configmaps, name="dyn", namespace=NS)
        assert got.kind == "ConfigMap" and got.data.x == "1"

        listed = await dyn.get(configmaps, namespace=NS, label_selector="via=dynamic")
        assert listed.kind == "ConfigMapList"
        assert [item.metadata.name for item in listed.items] == ["dyn"]

        deployments = await dyn.resources.get(api_version="apps/v1", kind="Deployment")
        assert deployments.group == "apps" and deployments.name == "deployments"
        assert "scale" in deployments.subresources and "status" in deployments.subresources


# ----- leader election ------------------------------------------------------------------


async def test_leader_election_with_a_lease_lock(api: client.ApiClient) -> None:
    """The client's LeaseLock election: the first candidate takes the Lease, a second
    one cannot while it is held."""
    started = asyncio.Event()

    async def lead() -> None:
        started.set()

    def candidate(identity: str) -> LeaderElection:
        lock = LeaseLock("operator-lock", NS, identity, api)
        return LeaderElection(
            Config(
                lock,
                lease_duration=15,
                renew_deadline=10,
                retry_period=2,
                onstarted_leading=lead,
                onstopped_leading=None,  # type: ignore[arg-type]
            )
        )

    running = asyncio.create_task(candidate("first").run())
    try:
        await asyncio.wait_for(started.wait(), timeout=10)
        lease = await client.CoordinationV1Api(api).read_namespaced_lease("operator-lock", NS)
        assert lease.spec.holder_identity == "first"
        assert lease.spec.lease_duration_seconds == 15
        assert lease.spec.acquire_time is not None and lease.spec.renew_time is not None

        assert await candidate("second").try_acquire_or_renew() is False
        after = await client.CoordinationV1Api(api).read_namespaced_lease("operator-lock", NS)
        assert after.spec.holder_identity == "first"
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
