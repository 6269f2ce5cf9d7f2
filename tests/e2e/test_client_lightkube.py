"""The ``lightkube`` client against kajitori, unchanged: its typed models, errors, paging,
watch loop, patches, server-side apply, subresources, deletion options, generic resources
and YAML loading.

lightkube decodes every answer strictly into its 1.37 models (msgspec), builds its own
query strings (``limit``/``continue``, ``watch=true``, ``force=true``,
``propagationPolicy``) and turns any JSON error into ``lightkube.ApiError`` carrying the
decoded metav1.Status, so each test checks upstream's observable answer through it.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import httpx2
import pytest
from lightkube import ApiError, AsyncClient, Client, KubeConfig, codecs
from lightkube import operators as op
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models import apiextensions_v1 as ext
from lightkube.models import apps_v1, autoscaling_v1, core_v1
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod, Secret, Service
from lightkube.types import CascadeType, PatchType
from tests.e2e.study_note import KUBIA_HEADLESS_SERVICE, KUBIA_STATEFULSET

from kajitori.testing.cluster import KajitoriCluster, wait_for

NS = "lightkube"
T = TypeVar("T")


@pytest.fixture(scope="module")
def kube(cluster: KajitoriCluster) -> Iterator[Client]:
    """A lightkube Client from the cluster's kubeconfig, defaulting to this module's namespace."""
    client = Client(KubeConfig.from_file(cluster.kubeconfig), namespace=NS)
    client.create(Namespace(metadata=ObjectMeta(name=NS)))
    yield client
    client.close()


@pytest.fixture
async def akube(cluster: KajitoriCluster, kube: Client) -> AsyncIterator[AsyncClient]:
    """An AsyncClient in the test's own event loop (the namespace made by ``kube``)."""
    client = AsyncClient(KubeConfig.from_file(cluster.kubeconfig), namespace=NS)
    try:
        yield client
    finally:
        await client.close()


def recorded_client(cluster: KajitoriCluster) -> tuple[Client, list[httpx2.Request]]:
    """A Client that keeps every request it sends (to see lightkube's paging and watch loop)."""
    client = Client(KubeConfig.from_file(cluster.kubeconfig), namespace=NS)
    sent: list[httpx2.Request] = []
    client._client._client.event_hooks["request"].append(sent.append)
    return client, sent


def api_error(call: Callable[[], Any]) -> ApiError:
    """The ApiError ``call`` raises, its Status checked to be a Failure of its own code."""
    with pytest.raises(ApiError) as info:
        call()
    error = info.value
    assert error.status.kind == "Status" and error.status.status == "Failure"
    assert error.status.code == error.response.status_code
    assert str(error) == error.status.message
    return error


Event = tuple[str, Any]


def take(stream: Iterator[Event], until: Callable[[list[Event]], bool]) -> list[Event]:
    """Events of a lightkube watch until ``until(events)`` holds, failing after 20 s.

    lightkube's watch waits forever for the next event, so it runs in a thread of its
    own that a missing event leaves blocked (the cluster's stop ends it).
    """
    got: list[Event] = []
    done = threading.Event()

    def run() -> None:
        for event in stream:
            got.append(event)
            if until(got):
                done.set()
                return

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(20), f"the watch stopped after {[(k, o.metadata.name) for k, o in got]}"
    return got


def retry_on_conflict(write: Callable[[], T], attempts: int = 10) -> T:
    """A read-modify-write run again while a controller's write wins the race (409)."""
    for _ in range(attempts - 1):
        try:
            return write()
        except ApiError as exc:
            if exc.status.code != 409:
                raise
    return write()


def configmap(name: str, **labels: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, labels=labels or None), data={"a": "1"})


def deployment(name: str, *, replicas: int = 1) -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=apps_v1.DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels=labels),
            template=core_v1.PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=core_v1.PodSpec(containers=[core_v1.Container(name="c", image="nginx")]),
            ),
        ),
    )


def owned_fields(obj: Any, manager: str) -> dict[str, Any] | None:
    """The fieldsV1 ``manager`` holds on ``obj`` (None: no entry)."""
    for entry in obj.metadata.managedFields or []:
        if entry.manager == manager:
            return entry.fieldsV1
    return None


# ----- CRUD with the typed models -------------------------------------------------------

KINDS = [
    pytest.param(ConfigMap, lambda n: configmap(n), "configmaps", id="configmap"),
    pytest.param(
        Secret,
        lambda n: Secret(metadata=ObjectMeta(name=n), stringData={"a": "1"}),
        "secrets",
        id="secret",
    ),
    pytest.param(Deployment, deployment, "deployments.apps", id="deployment"),
]


@pytest.mark.parametrize(("res", "new", "resource"), KINDS)
def test_create_get_replace_delete(
    kube: Client, res: Any, new: Callable[[str], Any], resource: str
) -> None:
    """Each kind lives and dies through lightkube's models; afterwards a get is 404."""
    name = f"life-{res.__name__.lower()}"
    created = kube.create(new(name))
    assert type(created) is res
    assert created.metadata.uid and created.metadata.namespace == NS

    def relabel() -> Any:
        current = kube.get(res, name)
        assert current.metadata.uid == created.metadata.uid
        current.metadata.labels = {"stage": "replaced"}
        return kube.replace(current)

    # The Deployment's status is written by its controller meanwhile.
    replaced = retry_on_conflict(relabel)
    assert replaced.metadata.labels == {"stage": "replaced"}
    assert int(replaced.metadata.resourceVersion) > int(created.metadata.resourceVersion)
    assert kube.get(res, name).metadata.labels == {"stage": "replaced"}

    kube.delete(res, name)
    error = api_error(lambda: kube.get(res, name))
    assert error.status.code == 404
    assert error.status.reason == "NotFound"
    assert error.status.message == f'{resource} "{name}" not found'


def test_secret_string_data_is_stored_as_base64_data(kube: Client) -> None:
    """stringData is write-only: it comes back merged into data, base64-encoded."""
    created = kube.create(Secret(metadata=ObjectMeta(name="sd"), stringData={"pw": "s3cret"}))
    assert created.stringData is None
    assert created.data == {"pw": base64.b64encode(b"s3cret").decode()}
    assert created.type == "Opaque"


# ----- errors ---------------------------------------------------------------------------


def test_not_found_status(kube: Client) -> None:
    error = api_error(lambda: kube.get(ConfigMap, "nope"))
    assert (error.status.code, error.status.reason) == (404, "NotFound")
    assert error.status.message == 'configmaps "nope" not found'
    assert error.status.details.name == "nope" and error.status.details.kind == "configmaps"


def test_already_exists_status(kube: Client) -> None:
    kube.create(configmap("twice"))
    error = api_error(lambda: kube.create(configmap("twice")))
    assert (error.status.code, error.status.reason) == (409, "AlreadyExists")
    assert error.status.message == 'configmaps "twice" already exists'


def test_stale_resource_version_is_conflict(kube: Client) -> None:
    """A replace carrying a resourceVersion someone moved past is refused, not written."""
    first = kube.create(configmap("stale"))
    kube.patch(ConfigMap, "stale", {"data": {"a": "2"}})
    first.data = {"a": "mine"}
    error = api_error(lambda: kube.replace(first))
    assert (error.status.code, error.status.reason) == (409, "Conflict")
    assert error.status.message == (
        'Operation cannot be fulfilled on configmaps "stale": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert kube.get(ConfigMap, "stale").data == {"a": "2"}


def test_invalid_object_is_422_with_causes(kube: Client) -> None:
    error = api_error(lambda: kube.create(configmap("Not_A_Name")))
    assert (error.status.code, error.status.reason) == (422, "Invalid")
    assert error.status.message.startswith('ConfigMap "Not_A_Name" is invalid: metadata.name: ')
    assert error.status.details.kind == "ConfigMap"
    [cause] = error.status.details.causes
    assert (cause.field, cause.reason) == ("metadata.name", "FieldValueInvalid")


# ----- list: selectors and paging -------------------------------------------------------


@pytest.fixture(scope="module")
def listed(kube: Client) -> list[str]:
    """Five ConfigMaps labelled for the list tests (tier a or b)."""
    names = [f"ls-{i}" for i in range(5)]
    for i, name in enumerate(names):
        kube.create(configmap(name, listing="yes", tier="a" if i < 3 else "b"))
    return names


def count(n: int) -> Callable[[list[Event]], bool]:
    return lambda got: len(got) == n


def names_of(items: Any) -> list[str]:
    return [item.metadata.name for item in items]


def test_list_with_label_selectors(kube: Client, listed: list[str]) -> None:
    assert names_of(kube.list(ConfigMap, labels={"listing": "yes", "tier": "b"})) == listed[3:]
    not_b = kube.list(ConfigMap, labels={"listing": "yes", "tier": op.not_in(["b"])})
    assert names_of(not_b) == listed[:3]
    assert names_of(kube.list(ConfigMap, labels={"listing": op.exists()})) == listed


def test_list_with_field_selectors(kube: Client, listed: list[str]) -> None:
    assert names_of(kube.list(ConfigMap, fields={"metadata.name": "ls-1"})) == ["ls-1"]
    others = kube.list(
        ConfigMap, labels={"listing": "yes"}, fields={"metadata.name": op.not_equal("ls-1")}
    )
    assert names_of(others) == ["ls-0", "ls-2", "ls-3", "ls-4"]
    error = api_error(lambda: list(kube.list(ConfigMap, fields={"spec.foo": "x"})))
    assert (error.status.code, error.status.reason) == (400, "BadRequest")
    assert error.status.message == (
        '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


def test_list_in_chunks_pages_with_limit_and_continue(
    cluster: KajitoriCluster, listed: list[str]
) -> None:
    """chunk_size=2 over five objects: three pages, each after the first carrying the token."""
    client, sent = recorded_client(cluster)
    try:
        items = client.list(ConfigMap, labels={"listing": "yes"}, chunk_size=2)
        assert names_of(items) == listed  # each exactly once, in name order
        assert int(items.resourceVersion) > 0
    finally:
        client.close()
    assert [r.url.params.get("limit") for r in sent] == ["2", "2", "2"]
    tokens = [r.url.params.get("continue") for r in sent]
    assert tokens[0] is None and tokens[1] and tokens[2] and tokens[1] != tokens[2]


# ----- watch ----------------------------------------------------------------------------


def test_watch_from_a_list_resource_version_sees_changes_in_order(kube: Client) -> None:
    """list, then watch from its resourceVersion: exactly the later changes, in order."""
    before = kube.list(ConfigMap, labels={"watched": "1"})
    assert names_of(before) == []
    for name in ("w-0", "w-1", "w-2"):
        kube.create(configmap(name, watched="1"))
    kube.patch(ConfigMap, "w-1", {"data": {"a": "2"}}, patch_type=PatchType.MERGE)
    kube.delete(ConfigMap, "w-2")

    stream = kube.watch(ConfigMap, labels={"watched": "1"}, resource_version=before.resourceVersion)
    events = [(kind, obj.metadata.name, obj) for kind, obj in take(stream, count(5))]
    assert [e[:2] for e in events] == [
        ("ADDED", "w-0"),
        ("ADDED", "w-1"),
        ("ADDED", "w-2"),
        ("MODIFIED", "w-1"),
        ("DELETED", "w-2"),
    ]
    versions = [int(obj.metadata.resourceVersion) for *_, obj in events]
    assert versions == sorted(versions) and versions[0] > int(before.resourceVersion)
    assert events[3][2].data == {"a": "2"}

    # Resuming from the second event's version replays only what came after it.
    resumed = kube.watch(ConfigMap, labels={"watched": "1"}, resource_version=str(versions[1]))
    assert [(k, o.metadata.name) for k, o in take(resumed, count(3))] == [
        ("ADDED", "w-2"),
        ("MODIFIED", "w-1"),
        ("DELETED", "w-2"),
    ]


async def test_watch_loop_resumes_after_server_timeout(
    cluster: KajitoriCluster, kube: Client
) -> None:
    """timeoutSeconds ends the stream; lightkube reconnects from the last version it saw."""
    client = AsyncClient(KubeConfig.from_file(cluster.kubeconfig), namespace=NS)
    sent: list[httpx2.Request] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request)

    client._client._client.event_hooks["request"].append(record)
    start = names_of(kube.list(ConfigMap, labels={"loop": "1"}))
    assert start == []
    first = kube.create(configmap("loop-a", loop="1"))
    stream = client.watch(
        ConfigMap,
        labels={"loop": "1"},
        server_timeout=1,
        resource_version=str(int(first.metadata.resourceVersion) - 1),
    )
    try:
        kind, obj = await asyncio.wait_for(anext(stream), timeout=10)
        assert (kind, obj.metadata.name) == ("ADDED", "loop-a")
        # While lightkube waits for the next event the server ends the stream (1 s)
        # and lightkube opens the next one; only then is there something to see.
        waiting = asyncio.create_task(next_event(stream))
        await asyncio.to_thread(
            wait_for, lambda: len(sent) >= 2, timeout=10, what="a second watch request"
        )
        kube.create(configmap("loop-b", loop="1"))
        kind, obj = await asyncio.wait_for(waiting, timeout=10)
        assert (kind, obj.metadata.name) == ("ADDED", "loop-b")
    finally:
        await stream.aclose()
        await client.close()
    assert sent[0].url.params["watch"] == "true" and sent[0].url.params["timeoutSeconds"] == "1"
    assert sent[1].url.params["resourceVersion"] == first.metadata.resourceVersion


async def next_event(stream: AsyncIterator[tuple[str, Any]]) -> tuple[str, Any]:
    return await anext(stream)


# ----- patches and server-side apply ---------------------------------------------------


def test_json_patch_and_a_failed_test_operation(kube: Client) -> None:
    kube.create(configmap("jp"))
    patched = kube.patch(
        ConfigMap,
        "jp",
        [{"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}],
        patch_type=PatchType.JSON,
    )
    assert patched.data == {"b": "2"}
    error = api_error(
        lambda: kube.patch(
            ConfigMap,
            "jp",
            [{"op": "test", "path": "/data/b", "value": "other"}],
            patch_type=PatchType.JSON,
        )
    )
    assert (error.status.code, error.status.reason) == (422, "Invalid")
    assert error.status.message == "the server rejected our request due to an error in our request"


def test_merge_patch_replaces_lists_and_strategic_merges_them_by_key(kube: Client) -> None:
    """On a Deployment's containers: merge patch replaces the list, strategic merges by name."""
    kube.create(deployment("patched"))
    env = [{"name": "MODE", "value": "fast"}]
    strategic = kube.patch(
        Deployment,
        "patched",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "env": env}]}}}},
        patch_type=PatchType.STRATEGIC,
    )
    [container] = strategic.spec.template.spec.containers
    assert (container.image, container.env[0].value) == ("nginx", "fast")

    merged = kube.patch(
        Deployment,
        "patched",
        {"spec": {"template": {"spec": {"containers": [{"name": "d", "image": "busybox"}]}}}},
        patch_type=PatchType.MERGE,
    )
    assert [c.name for c in merged.spec.template.spec.containers] == ["d"]


def test_merge_patch_null_removes_a_key(kube: Client) -> None:
    kube.create(ConfigMap(metadata=ObjectMeta(name="mp"), data={"a": "1", "b": "2"}))
    patched = kube.patch(ConfigMap, "mp", {"data": {"a": None}}, patch_type=PatchType.MERGE)
    assert patched.data == {"b": "2"}


def test_server_side_apply_conflicts_and_force(kube: Client) -> None:
    """An applier owns what it sent; another manager conflicts unless it forces."""
    applied = kube.apply(
        ConfigMap(metadata=ObjectMeta(name="ssa"), data={"k": "alpha"}), field_manager="alpha"
    )
    assert applied.data == {"k": "alpha"}
    [entry] = applied.metadata.managedFields
    assert (entry.manager, entry.operation, entry.apiVersion) == ("alpha", "Apply", "v1")
    assert entry.fieldsV1 == {"f:data": {"f:k": {}}}

    error = api_error(
        lambda: kube.apply(
            ConfigMap(metadata=ObjectMeta(name="ssa"), data={"k": "beta"}), field_manager="beta"
        )
    )
    assert (error.status.code, error.status.reason) == (409, "Conflict")
    assert error.status.message == 'Apply failed with 1 conflict: conflict with "alpha": .data.k'
    [cause] = error.status.details.causes
    assert (cause.reason, cause.field) == ("FieldManagerConflict", ".data.k")
    assert kube.get(ConfigMap, "ssa").data == {"k": "alpha"}

    forced = kube.apply(
        ConfigMap(metadata=ObjectMeta(name="ssa"), data={"k": "beta"}),
        field_manager="beta",
        force=True,
    )
    assert forced.data == {"k": "beta"}
    assert owned_fields(forced, "beta") == {"f:data": {"f:k": {}}}
    assert owned_fields(forced, "alpha") is None  # it lost its only field


def test_apply_without_force_shares_an_equal_value(kube: Client) -> None:
    """Applying the same value as another manager is no conflict: both own the field."""
    kube.apply(ConfigMap(metadata=ObjectMeta(name="shared"), data={"k": "v"}), field_manager="one")
    both = kube.apply(
        ConfigMap(metadata=ObjectMeta(name="shared"), data={"k": "v"}), field_manager="two"
    )
    assert owned_fields(both, "one") == owned_fields(both, "two") == {"f:data": {"f:k": {}}}


# ----- subresources ---------------------------------------------------------------------


def test_scale_subresource(kube: Client) -> None:
    kube.create(deployment("scaled", replicas=2))
    scale = kube.get(Deployment.Scale, "scaled")
    assert (scale.kind, scale.apiVersion) == ("Scale", "autoscaling/v1")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=scaled"

    def write() -> Any:
        current = kube.get(Deployment.Scale, "scaled")
        current.spec.replicas = 4
        return kube.replace(current, "scaled")

    assert retry_on_conflict(write).spec.replicas == 4
    stored = kube.get(Deployment, "scaled")
    assert stored.spec.replicas == 4 and stored.metadata.generation == 2

    patched = kube.patch(
        Deployment.Scale, "scaled", {"spec": {"replicas": 1}}, patch_type=PatchType.MERGE
    )
    assert patched.spec.replicas == 1
    assert kube.get(Deployment, "scaled").spec.replicas == 1

    negative = Deployment.Scale(
        metadata=ObjectMeta(name="scaled"), spec=autoscaling_v1.ScaleSpec(replicas=-1)
    )
    error = api_error(lambda: kube.replace(negative, "scaled"))
    assert (error.status.code, error.status.reason) == (422, "Invalid")
    assert error.status.message == (
        'Scale.autoscaling "scaled" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    )
    assert kube.get(Deployment, "scaled").spec.replicas == 1


def test_status_subresource_writes_status_only(kube: Client) -> None:
    kube.create(deployment("stat"))

    def replace_status() -> Any:
        current = kube.get(Deployment.Status, "stat")
        current.spec.replicas = 9  # ignored on /status
        current.status = apps_v1.DeploymentStatus(replicas=3, observedGeneration=1)
        return kube.replace(current)

    written = retry_on_conflict(replace_status)
    assert written.status.replicas == 3 and written.spec.replicas == 1
    assert written.metadata.generation == 1

    patched = kube.patch(
        Deployment.Status,
        "stat",
        {"status": {"replicas": 5}, "spec": {"replicas": 7}},
        patch_type=PatchType.MERGE,
    )
    assert patched.status.replicas == 5 and patched.spec.replicas == 1
    # And the main resource ignores status.
    main = kube.patch(Deployment, "stat", {"status": {"replicas": 8}}, patch_type=PatchType.MERGE)
    assert main.status.replicas != 8


def test_created_workloads_carry_their_go_zero_status(kube: Client) -> None:
    """A new StatefulSet's status is {"replicas": 0, "availableReplicas": 0} (Go fields
    without omitempty), not {}: lightkube's StatefulSetStatus requires replicas."""
    labels = {"app": "zero"}
    template = core_v1.PodTemplateSpec(
        metadata=ObjectMeta(labels=labels),
        spec=core_v1.PodSpec(containers=[core_v1.Container(name="c", image="nginx")]),
    )
    created = kube.create(
        StatefulSet(
            metadata=ObjectMeta(name="zero"),
            spec=apps_v1.StatefulSetSpec(
                replicas=0,
                serviceName="zero",
                selector=LabelSelector(matchLabels=labels),
                template=template,
            ),
        )
    )
    assert (created.status.replicas, created.status.availableReplicas) == (0, 0)
    rs = kube.create(
        ReplicaSet(
            metadata=ObjectMeta(name="zero"),
            spec=apps_v1.ReplicaSetSpec(
                replicas=0, selector=LabelSelector(matchLabels=labels), template=template
            ),
        )
    )
    assert rs.status.replicas == 0 and rs.status.readyReplicas is None


# ----- deletion options -----------------------------------------------------------------


def bound_pod(name: str) -> Pod:
    """A Pod already bound to a node (which no kubelet runs): deletion is graceful."""
    return Pod(
        metadata=ObjectMeta(name=name),
        spec=core_v1.PodSpec(
            nodeName="node-a", containers=[core_v1.Container(name="c", image="nginx")]
        ),
    )


def test_delete_with_grace_period(kube: Client) -> None:
    kube.create(bound_pod("grace"))
    kube.delete(Pod, "grace", grace_period=5)
    pending = kube.get(Pod, "grace")
    assert pending.metadata.deletionTimestamp is not None
    assert pending.metadata.deletionGracePeriodSeconds == 5
    kube.delete(Pod, "grace", grace_period=0)
    assert api_error(lambda: kube.get(Pod, "grace")).status.code == 404

    kube.create(bound_pod("dry"))
    kube.delete(Pod, "dry", grace_period=0, dry_run=True)
    assert kube.get(Pod, "dry").metadata.deletionTimestamp is None


def replica_sets_of(kube: Client, app: str) -> list[Any]:
    return list(kube.list(ReplicaSet, labels={"app": app}))


def test_delete_orphan_leaves_the_replica_set(kube: Client) -> None:
    kube.create(deployment("orphaner"))
    wait_for(lambda: replica_sets_of(kube, "orphaner"), what="the ReplicaSet")
    start = kube.get(Deployment, "orphaner").metadata.resourceVersion
    kube.delete(Deployment, "orphaner", cascade=CascadeType.ORPHAN)
    # The owner waits under the "orphan" finalizer while the garbage collector takes
    # the owner references off its dependents, then goes.
    stream = kube.watch(Deployment, fields={"metadata.name": "orphaner"}, resource_version=start)
    events = take(stream, lambda got: got[-1][0] == "DELETED")
    marked = next(obj for _, obj in events if obj.metadata.deletionTimestamp)
    assert marked.metadata.finalizers == ["orphan"]
    [orphan] = wait_for(
        lambda: [rs for rs in replica_sets_of(kube, "orphaner") if not rs.metadata.ownerReferences],
        what="the ReplicaSet orphaned",
    )
    assert orphan.metadata.deletionTimestamp is None


def test_delete_foreground_waits_for_dependents(kube: Client) -> None:
    """Foreground: the owner first shows deletionTimestamp and the foregroundDeletion
    finalizer, and goes only after its ReplicaSet did."""
    kube.create(deployment("fore"))
    wait_for(lambda: replica_sets_of(kube, "fore"), what="the ReplicaSet")
    start = kube.get(Deployment, "fore").metadata.resourceVersion
    kube.delete(Deployment, "fore", cascade=CascadeType.FOREGROUND)
    stream = kube.watch(Deployment, fields={"metadata.name": "fore"}, resource_version=start)
    events = take(stream, lambda got: got[-1][0] == "DELETED")
    marked = next(obj for _, obj in events if obj.metadata.deletionTimestamp)
    assert "foregroundDeletion" in marked.metadata.finalizers
    assert replica_sets_of(kube, "fore") == []


def test_deletecollection_empties_one_namespace_only(kube: Client) -> None:
    """lightkube's deletecollection takes no selector: every ConfigMap of the namespace goes."""
    other = "lightkube-dc"
    kube.create(Namespace(metadata=ObjectMeta(name=other)))
    for name in ("dc-0", "dc-1", "dc-2"):
        kube.create(configmap(name, dc="1"), namespace=other)
    kube.create(configmap("dc-here", dc="1"))

    kube.deletecollection(ConfigMap, namespace=other, dry_run=True)
    assert len(list(kube.list(ConfigMap, namespace=other, labels={"dc": "1"}))) == 3
    kube.deletecollection(ConfigMap, namespace=other, grace_period=0)
    assert list(kube.list(ConfigMap, namespace=other, labels={"dc": "1"})) == []
    assert names_of(kube.list(ConfigMap, labels={"dc": "1"})) == ["dc-here"]


# ----- generic resources: a CustomResourceDefinition and its objects --------------------


def crontab_crd() -> CustomResourceDefinition:
    spec_schema = ext.JSONSchemaProps(
        type="object",
        properties={
            "cronSpec": ext.JSONSchemaProps(type="string"),
            "replicas": ext.JSONSchemaProps(type="integer", minimum=1, default=1),
        },
    )
    return CustomResourceDefinition(
        metadata=ObjectMeta(name="crontabs.stable.example.com"),
        spec=ext.CustomResourceDefinitionSpec(
            group="stable.example.com",
            scope="Namespaced",
            names=ext.CustomResourceDefinitionNames(
                plural="crontabs", singular="crontab", kind="CronTab"
            ),
            versions=[
                ext.CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    schema=ext.CustomResourceValidation(
                        openAPIV3Schema=ext.JSONSchemaProps(
                            type="object",
                            properties={
                                "spec": spec_schema,
                                "status": ext.JSONSchemaProps(
                                    type="object", x_kubernetes_preserve_unknown_fields=True
                                ),
                            },
                        )
                    ),
                    subresources=ext.CustomResourceSubresources(status={}),
                )
            ],
        ),
    )


def established(kube: Client, name: str) -> bool:
    crd = kube.get(CustomResourceDefinition, name)
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def test_custom_resource_crud_through_a_generic_resource(kube: Client) -> None:
    kube.create(crontab_crd())
    wait_for(lambda: established(kube, "crontabs.stable.example.com"), what="Established")
    CronTab = create_namespaced_resource("stable.example.com", "v1", "CronTab", "crontabs")

    created = kube.create(CronTab(metadata=ObjectMeta(name="ct"), spec={"cronSpec": "*/5"}))
    assert created.spec == {"cronSpec": "*/5", "replicas": 1}  # the schema's default
    assert created.metadata.generation == 1

    current = kube.get(CronTab, "ct")
    current["spec"]["replicas"] = 3
    replaced = kube.replace(current)
    assert replaced.spec["replicas"] == 3 and replaced.metadata.generation == 2

    # lightkube's default patch type is strategic, which custom resources refuse.
    refused = api_error(lambda: kube.patch(CronTab, "ct", {"spec": {"replicas": 2}}))
    assert (refused.status.code, refused.status.reason) == (415, "UnsupportedMediaType")
    assert refused.status.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    merged = kube.patch(CronTab, "ct", {"spec": {"replicas": 2}}, patch_type=PatchType.MERGE)
    assert merged.spec["replicas"] == 2

    status = kube.patch(
        CronTab.Status, "ct", {"status": {"lastRun": "now"}}, patch_type=PatchType.MERGE
    )
    assert status.status == {"lastRun": "now"} and status.metadata.generation == 3

    invalid = api_error(
        lambda: kube.create(CronTab(metadata=ObjectMeta(name="bad"), spec={"replicas": 0}))
    )
    assert (invalid.status.code, invalid.status.reason) == (422, "Invalid")
    assert invalid.status.message == (
        'CronTab.stable.example.com "bad" is invalid: spec.replicas: Invalid value: 0: '
        "spec.replicas in body should be greater than or equal to 1"
    )

    applied = kube.apply(
        CronTab(
            apiVersion="stable.example.com/v1",
            kind="CronTab",
            metadata=ObjectMeta(name="ct-applied"),
            spec={"cronSpec": "@daily"},
        ),
        field_manager="crons",
    )
    assert owned_fields(applied, "crons") == {"f:spec": {"f:cronSpec": {}}}
    assert names_of(kube.list(CronTab)) == ["ct", "ct-applied"]

    kube.delete(CronTab, "ct")
    gone = api_error(lambda: kube.get(CronTab, "ct"))
    assert gone.status.message == 'crontabs.stable.example.com "ct" not found'


# ----- YAML manifests applied with server-side apply ------------------------------------


def test_load_all_yaml_and_apply_the_study_note_statefulset(kube: Client) -> None:
    """The note's apps/v1beta1 StatefulSet (a generic resource to lightkube) and its
    headless Service, loaded from one multi-document YAML and applied.

    The old version's defaults (selector and labels from the template, OnDelete,
    OrderedReady, revisionHistoryLimit) are applied after the merge, owned by nobody
    (upstream defaults the merged object): another manager may then set them freely.
    """
    create_namespaced_resource("apps", "v1beta1", "StatefulSet", "statefulsets")
    objects = codecs.load_all_yaml(KUBIA_HEADLESS_SERVICE + "---\n" + KUBIA_STATEFULSET)
    assert [(o.apiVersion, o.kind) for o in objects] == [
        ("v1", "Service"),
        ("apps/v1beta1", "StatefulSet"),
    ]
    applied = [kube.apply(obj, field_manager="study-note") for obj in objects]
    assert applied[0].spec.clusterIP == "None"

    stored = kube.get(StatefulSet, "kubia")
    assert stored.spec.selector.matchLabels == {"app": "kubia"}
    assert stored.metadata.labels == {"app": "kubia"}
    assert stored.spec.updateStrategy.type == "OnDelete"
    assert stored.spec.podManagementPolicy == "OrderedReady"
    owned = owned_fields(applied[1], "study-note")
    assert owned is not None and "f:metadata" not in owned
    assert set(owned["f:spec"]) == {
        "f:replicas",
        "f:serviceName",
        "f:template",
        "f:volumeClaimTemplates",
    }

    OldStatefulSet = type(objects[1])
    rolling = OldStatefulSet(
        apiVersion="apps/v1beta1",
        kind="StatefulSet",
        metadata=ObjectMeta(name="kubia"),
        spec={"updateStrategy": {"type": "RollingUpdate"}},
    )
    kube.apply(rolling, field_manager="ops")  # no conflict: "study-note" never owned it
    assert kube.get(StatefulSet, "kubia").spec.updateStrategy.type == "RollingUpdate"

    # Applying the manifests again conflicts with nobody and leaves "ops"'s choice alone.
    for obj in objects:
        kube.apply(obj, field_manager="study-note")
    assert kube.get(StatefulSet, "kubia").spec.updateStrategy.type == "RollingUpdate"


# ----- AsyncClient ----------------------------------------------------------------------


async def test_async_client_crud_errors_and_paging(akube: AsyncClient) -> None:
    created = await akube.create(configmap("async-0", asynced="1"))
    assert created.metadata.uid
    for i in (1, 2):
        await akube.create(configmap(f"async-{i}", asynced="1"))
    with pytest.raises(ApiError) as info:
        await akube.create(configmap("async-0"))
    assert (info.value.status.code, info.value.status.reason) == (409, "AlreadyExists")

    listing = akube.list(ConfigMap, labels={"asynced": "1"}, chunk_size=2)
    assert [o.metadata.name async for o in listing] == ["async-0", "async-1", "async-2"]

    patched = await akube.patch(
        ConfigMap, "async-1", {"data": {"a": "9"}}, patch_type=PatchType.MERGE
    )
    assert patched.data == {"a": "9"}
    await akube.delete(ConfigMap, "async-1")
    with pytest.raises(ApiError) as gone:
        await akube.get(ConfigMap, "async-1")
    assert gone.value.status.message == 'configmaps "async-1" not found'


async def test_async_watch_after_list(akube: AsyncClient) -> None:
    listing = akube.list(ConfigMap, labels={"awatch": "1"})
    assert [o async for o in listing] == []
    await akube.create(configmap("aw-0", awatch="1"))
    await akube.delete(ConfigMap, "aw-0")
    stream = akube.watch(
        ConfigMap, labels={"awatch": "1"}, resource_version=listing.resourceVersion
    )
    try:
        first, second = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
        seen = [(k, o.metadata.name) for k, o in (first, second)]
    finally:
        await stream.aclose()
    assert seen == [("ADDED", "aw-0"), ("DELETED", "aw-0")]


async def test_async_apply_service(akube: AsyncClient) -> None:
    svc = Service(
        apiVersion="v1",
        kind="Service",
        metadata=ObjectMeta(name="async-svc"),
        spec=core_v1.ServiceSpec(selector={"app": "x"}, ports=[core_v1.ServicePort(port=80)]),
    )
    applied = await akube.apply(svc, field_manager="async")
    assert applied.spec.clusterIP and applied.spec.clusterIP != "None"
    assert applied.spec.ports[0].targetPort == 80  # defaulted from port
    assert owned_fields(applied, "async") == {
        "f:spec": {
            "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}},
            "f:selector": {},
        }
    }
