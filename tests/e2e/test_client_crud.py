"""The official Python client against kajitori: CRUD, errors, deletion and subresources.

Every test talks to a real ``kajitori up`` through ``kubernetes.client``, the
way an operator written in Python would, and checks upstream's status codes,
reasons and messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client, config

from kajitori.testing.cluster import KajitoriCluster

NS = "crud"


@pytest.fixture(scope="module")
def api(cluster: KajitoriCluster) -> Iterator[client.ApiClient]:
    """An ApiClient from the cluster's kubeconfig, with a namespace for this module."""
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def status_of(exc: client.ApiException) -> dict[str, Any]:
    """The metav1.Status an error response carried."""
    body = json.loads(exc.body)
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def meta(name: str, **extra: Any) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, **extra)


def deployment(name: str, *, replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=meta(name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
            ),
        ),
    )


def pod(name: str, *, node: str | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=meta(name),
        spec=client.V1PodSpec(
            node_name=node, containers=[client.V1Container(name="c", image="nginx")]
        ),
    )


# ----- CRUD over several kinds ---------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How to create, read, replace, patch, list and delete one kind with the client."""

    plural: str
    new: Callable[[str], Any]
    create: Callable[[Any, Any], Any]
    read: Callable[[Any, str], Any]
    replace: Callable[[Any, str, Any], Any]
    patch: Callable[[Any, str, Any], Any]
    list_names: Callable[[Any], list[str]]
    delete: Callable[[Any, str], Any]
    api: str = "core"


def _names(result: Any) -> list[str]:
    return [item.metadata.name for item in result.items]


KINDS = [
    pytest.param(
        Kind(
            plural="configmaps",
            new=lambda n: client.V1ConfigMap(metadata=meta(n), data={"a": "1"}),
            create=lambda c, o: c.create_namespaced_config_map(NS, o),
            read=lambda c, n: c.read_namespaced_config_map(n, NS),
            replace=lambda c, n, o: c.replace_namespaced_config_map(n, NS, o),
            patch=lambda c, n, p: c.patch_namespaced_config_map(n, NS, p),
            list_names=lambda c: _names(c.list_namespaced_config_map(NS)),
            delete=lambda c, n: c.delete_namespaced_config_map(n, NS),
        ),
        id="configmap",
    ),
    pytest.param(
        Kind(
            plural="secrets",
            new=lambda n: client.V1Secret(metadata=meta(n), string_data={"a": "1"}),
            create=lambda c, o: c.create_namespaced_secret(NS, o),
            read=lambda c, n: c.read_namespaced_secret(n, NS),
            replace=lambda c, n, o: c.replace_namespaced_secret(n, NS, o),
            patch=lambda c, n, p: c.patch_namespaced_secret(n, NS, p),
            list_names=lambda c: _names(c.list_namespaced_secret(NS)),
            delete=lambda c, n: c.delete_namespaced_secret(n, NS),
        ),
        id="secret",
    ),
    pytest.param(
        Kind(
            plural="namespaces",
            new=lambda n: client.V1Namespace(metadata=meta(n)),
            create=lambda c, o: c.create_namespace(o),
            read=lambda c, n: c.read_namespace(n),
            replace=lambda c, n, o: c.replace_namespace(n, o),
            patch=lambda c, n, p: c.patch_namespace(n, p),
            list_names=lambda c: _names(c.list_namespace()),
            delete=lambda c, n: c.delete_namespace(n),
        ),
        id="namespace",
    ),
    pytest.param(
        Kind(
            plural="services",
            new=lambda n: client.V1Service(
                metadata=meta(n),
                spec=client.V1ServiceSpec(
                    selector={"app": n}, ports=[client.V1ServicePort(port=80)]
                ),
            ),
            create=lambda c, o: c.create_namespaced_service(NS, o),
            read=lambda c, n: c.read_namespaced_service(n, NS),
            replace=lambda c, n, o: c.replace_namespaced_service(n, NS, o),
            patch=lambda c, n, p: c.patch_namespaced_service(n, NS, p),
            list_names=lambda c: _names(c.list_namespaced_service(NS)),
            delete=lambda c, n: c.delete_namespaced_service(n, NS),
        ),
        id="service",
    ),
    pytest.param(
        Kind(
            plural="deployments",
            new=deployment,
            create=lambda c, o: c.create_namespaced_deployment(NS, o),
            read=lambda c, n: c.read_namespaced_deployment(n, NS),
            replace=lambda c, n, o: c.replace_namespaced_deployment(n, NS, o),
            patch=lambda c, n, p: c.patch_namespaced_deployment(n, NS, p),
            list_names=lambda c: _names(c.list_namespaced_deployment(NS)),
            delete=lambda c, n: c.delete_namespaced_deployment(n, NS),
            api="apps",
        ),
        id="deployment",
    ),
]


@pytest.mark.parametrize("kind", KINDS)
def test_create_read_replace_patch_list_delete_round_trip(
    core: client.CoreV1Api, apps: client.AppsV1Api, kind: Kind
) -> None:
    """Each kind goes through its whole life with the typed client and is then gone."""
    c = apps if kind.api == "apps" else core
    name = f"life-{kind.plural}"
    created = kind.create(c, kind.new(name))
    assert created.metadata.uid and created.metadata.creation_timestamp
    rv1 = int(created.metadata.resource_version)

    def replace() -> Any:
        read = kind.read(c, name)
        assert read.metadata.uid == created.metadata.uid
        read.metadata.labels = {"stage": "replaced"}
        return kind.replace(c, name, read)

    # Controllers write status concurrently (a Deployment's), so read-modify-write
    # retries on 409 as client-go's RetryOnConflict does.
    replaced = retry_on_conflict(replace)
    assert replaced.metadata.labels["stage"] == "replaced"
    assert int(replaced.metadata.resource_version) > rv1

    patched = kind.patch(c, name, {"metadata": {"labels": {"stage": "patched"}}})
    assert patched.metadata.labels["stage"] == "patched"
    assert int(patched.metadata.resource_version) > int(replaced.metadata.resource_version)
    assert name in kind.list_names(c)

    kind.delete(c, name)
    if kind.plural == "namespaces":
        return  # namespace deletion is asynchronous upstream (finalizer "kubernetes")
    with pytest.raises(client.ApiException) as info:
        kind.read(c, name)
    assert info.value.status == 404
    resource = f"{kind.plural}.apps" if kind.api == "apps" else kind.plural
    assert status_of(info.value)["message"] == f'{resource} "{name}" not found'


def retry_on_conflict(write: Callable[[], Any], attempts: int = 10) -> Any:
    """Run a read-modify-write again while it loses races (409 Conflict)."""
    for _ in range(attempts - 1):
        try:
            return write()
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    return write()


# ----- errors ---------------------------------------------------------------------


def test_get_missing_object_is_404_with_upstream_message(core: client.CoreV1Api) -> None:
    """A missing ConfigMap is 404 NotFound naming the resource and the name."""
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_config_map("nope", NS)
    status = status_of(info.value)
    assert info.value.status == 404
    assert status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "nope" not found'
    assert status["details"] == {"name": "nope", "kind": "configmaps"}


def test_create_existing_name_is_409_already_exists(core: client.CoreV1Api) -> None:
    """Creating a second object with the same name is 409 AlreadyExists."""
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta("twice")))
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta("twice")))
    status = status_of(info.value)
    assert info.value.status == 409
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "twice" already exists'


def test_update_with_stale_resource_version_is_409_conflict(core: client.CoreV1Api) -> None:
    """Replacing with a resourceVersion someone else moved past is a Conflict, not a write."""
    first = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=meta("x"), data={"v": "1"})
    )
    core.patch_namespaced_config_map("x", NS, {"data": {"v": "2"}})
    first.data = {"v": "stale"}
    with pytest.raises(client.ApiException) as info:
        core.replace_namespaced_config_map("x", NS, first)
    status = status_of(info.value)
    assert info.value.status == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "x": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert core.read_namespaced_config_map("x", NS).data == {"v": "2"}


# ----- dry run, generateName, deletecollection ------------------------------------


def test_dry_run_all_stores_nothing(core: client.CoreV1Api) -> None:
    """dryRun=All answers as if written for create, update and delete, but storage is unchanged."""
    created = core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=meta("dry"), data={"a": "1"}), dry_run="All"
    )
    assert created.metadata.name == "dry" and created.metadata.uid
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_config_map("dry", NS)
    assert info.value.status == 404

    real = core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta("dry")))
    real.data = {"changed": "yes"}
    answered = core.replace_namespaced_config_map("dry", NS, real, dry_run="All")
    assert answered.data == {"changed": "yes"}
    core.delete_namespaced_config_map("dry", NS, dry_run="All")
    stored = core.read_namespaced_config_map("dry", NS)
    assert stored.data is None
    assert stored.metadata.resource_version == real.metadata.resource_version


def test_generate_name_makes_unique_names_with_the_prefix(core: client.CoreV1Api) -> None:
    """generateName gets a 5-character random suffix; two creates get two names."""
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    one = core.create_namespaced_config_map(NS, body)
    two = core.create_namespaced_config_map(NS, body)
    for made in (one, two):
        assert made.metadata.name.startswith("gen-")
        assert len(made.metadata.name) == len("gen-") + 5
        assert made.metadata.generate_name == "gen-"
    assert one.metadata.name != two.metadata.name


def test_delete_collection_removes_only_selected_objects(core: client.CoreV1Api) -> None:
    """deletecollection with a label selector deletes the matching objects and no others."""
    for name, group in (("dc-a", "drop"), ("dc-b", "drop"), ("dc-c", "keep")):
        core.create_namespaced_config_map(
            NS, client.V1ConfigMap(metadata=meta(name, labels={"dc": group}))
        )
    core.delete_collection_namespaced_config_map(NS, label_selector="dc=drop")
    left = _names(core.list_namespaced_config_map(NS, label_selector="dc"))
    assert left == ["dc-c"]


# ----- graceful deletion and finalizers ---------------------------------------------


def test_scheduled_pod_deletion_is_graceful_until_grace_zero(core: client.CoreV1Api) -> None:
    """A Pod bound to a node keeps deletionTimestamp and grace 30 until deleted with grace 0."""
    core.create_namespaced_pod(NS, pod("graceful", node="node-a"))
    core.delete_namespaced_pod("graceful", NS)
    pending = core.read_namespaced_pod("graceful", NS)
    assert pending.metadata.deletion_timestamp is not None
    assert pending.metadata.deletion_grace_period_seconds == 30
    # Deleting again with the default grace changes nothing.
    core.delete_namespaced_pod("graceful", NS)
    again = core.read_namespaced_pod("graceful", NS)
    assert again.metadata.resource_version == pending.metadata.resource_version
    core.delete_namespaced_pod("graceful", NS, grace_period_seconds=0)
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_pod("graceful", NS)
    assert info.value.status == 404


def test_unscheduled_pod_is_deleted_at_once(core: client.CoreV1Api) -> None:
    """A Pod no kubelet runs has nobody to wait for: it is deleted immediately."""
    core.create_namespaced_pod(NS, pod("unscheduled"))
    core.delete_namespaced_pod("unscheduled", NS)
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_pod("unscheduled", NS)
    assert info.value.status == 404


def test_finalizer_holds_object_until_removed(core: client.CoreV1Api) -> None:
    """Delete marks a finalized object; removing the last finalizer by update removes it."""
    core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=meta("held", finalizers=["example.com/hold"]))
    )
    core.delete_namespaced_config_map("held", NS)
    held = core.read_namespaced_config_map("held", NS)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.deletion_grace_period_seconds == 0
    assert held.metadata.finalizers == ["example.com/hold"]

    held.metadata.finalizers = []
    core.replace_namespaced_config_map("held", NS, held)
    with pytest.raises(client.ApiException) as info:
        core.read_namespaced_config_map("held", NS)
    assert info.value.status == 404


# ----- generation, status and scale -------------------------------------------------


def test_generation_bumps_on_spec_change_only(apps: client.AppsV1Api) -> None:
    """metadata.generation is 1 at create, unchanged by label edits, +1 per spec change."""
    created = apps.create_namespaced_deployment(NS, deployment("gen"))
    assert created.metadata.generation == 1
    relabeled = apps.patch_namespaced_deployment("gen", NS, {"metadata": {"labels": {"a": "b"}}})
    assert relabeled.metadata.generation == 1
    rescaled = apps.patch_namespaced_deployment("gen", NS, {"spec": {"replicas": 3}})
    assert rescaled.metadata.generation == 2


def test_status_subresource_changes_status_only(apps: client.AppsV1Api) -> None:
    """PATCH .../status writes status (not spec, not generation); the main resource ignores status."""
    apps.create_namespaced_deployment(NS, deployment("stat"))
    patched = apps.patch_namespaced_deployment_status(
        "stat",
        NS,
        {"status": {"observedGeneration": 1, "replicas": 1}, "spec": {"replicas": 9}},
    )
    assert patched.status.observed_generation == 1
    assert patched.status.replicas == 1
    assert patched.spec.replicas == 1
    assert patched.metadata.generation == 1

    main = apps.patch_namespaced_deployment("stat", NS, {"status": {"replicas": 7}})
    assert main.status.replicas == 1


def test_scale_subresource_reads_and_writes_replicas(apps: client.AppsV1Api) -> None:
    """GET/PUT .../scale is an autoscaling/v1 Scale; writing it changes spec.replicas."""
    apps.create_namespaced_deployment(NS, deployment("scaled", replicas=2))
    scale = apps.read_namespaced_deployment_scale("scaled", NS)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=scaled"

    def write_scale() -> Any:
        current = apps.read_namespaced_deployment_scale("scaled", NS)
        current.spec.replicas = 5
        return apps.replace_namespaced_deployment_scale("scaled", NS, current)

    written = retry_on_conflict(write_scale)
    assert written.spec.replicas == 5
    stored = apps.read_namespaced_deployment("scaled", NS)
    assert stored.spec.replicas == 5
    assert stored.metadata.generation == 2

    patched = apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": 1}})
    assert patched.spec.replicas == 1
    assert apps.read_namespaced_deployment("scaled", NS).spec.replicas == 1
