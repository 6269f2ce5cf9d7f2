"""The official Python client against kajitori: paging, selectors and watch.

Lists are consistent snapshots across ``continue`` pages; selectors follow
upstream's label grammar and per-kind field allow-lists; watches deliver
every change in revision order with upstream's resourceVersion semantics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch

from kajitori.testing.cluster import KajitoriCluster

PAGING_NS = "paging"
SELECT_NS = "select"
WATCH_NS = "watching"


@pytest.fixture(scope="module")
def core(cluster: KajitoriCluster) -> Iterator[client.CoreV1Api]:
    """A typed client from the cluster's kubeconfig, with this module's namespaces."""
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    api = client.CoreV1Api(api_client)
    for ns in (PAGING_NS, SELECT_NS, WATCH_NS):
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    for ns in (PAGING_NS, SELECT_NS, WATCH_NS):
        # Every namespace soon holds kube-root-ca.crt (upstream's publisher);
        # wait for it so the lists below are stable.
        cluster.wait_for_namespace_defaults(ns)
    yield api
    api_client.close()


def configmap(name: str, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or None))


def names(result: Any) -> list[str]:
    return [item.metadata.name for item in result.items]


def status_of(exc: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


# ----- paging -----------------------------------------------------------------------


def test_paging_returns_every_object_once_from_one_snapshot(core: client.CoreV1Api) -> None:
    """limit=10 pages through 26 objects; writes between pages are invisible; counts are exact.

    The 26th is the namespace's kube-root-ca.crt, which sorts after every cm-NN.
    """
    for i in range(25):
        core.create_namespaced_config_map(PAGING_NS, configmap(f"cm-{i:02d}"))

    first = core.list_namespaced_config_map(PAGING_NS, limit=10)
    snapshot_rv = first.metadata.resource_version
    assert len(first.items) == 10
    assert first.metadata.remaining_item_count == 16
    # Changes after the first page: a new object that sorts last, a deleted one
    # from a later page. The snapshot must show neither change.
    core.create_namespaced_config_map(PAGING_NS, configmap("cm-99-late"))
    core.delete_namespaced_config_map("cm-20", PAGING_NS)

    seen = names(first)
    token = first.metadata.var_continue
    remaining = [6, None]
    while token:
        page = core.list_namespaced_config_map(PAGING_NS, limit=10, _continue=token)
        assert page.metadata.resource_version == snapshot_rv
        assert page.metadata.remaining_item_count == remaining.pop(0)
        seen += names(page)
        token = page.metadata.var_continue
    assert seen == [*(f"cm-{i:02d}" for i in range(25)), "kube-root-ca.crt"]

    fresh = names(core.list_namespaced_config_map(PAGING_NS))
    assert "cm-99-late" in fresh and "cm-20" not in fresh


def test_invalid_continue_token_is_400(core: client.CoreV1Api) -> None:
    """A continue token that is not one of ours is a BadRequest."""
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map(PAGING_NS, limit=1, _continue="not-a-token")
    assert info.value.status == 400
    assert status_of(info.value)["reason"] == "BadRequest"


# ----- label selectors ----------------------------------------------------------------

_LABELLED = {
    "a": {"env": "prod", "tier": "web"},
    "b": {"env": "dev", "tier": "web"},
    "c": {"env": "test"},
    "d": {"tier": "db"},
    "e": {},
}


@pytest.fixture(scope="module")
def labelled(core: client.CoreV1Api) -> None:
    for name, labels in _LABELLED.items():
        core.create_namespaced_config_map(SELECT_NS, configmap(name, **labels))


@pytest.mark.usefixtures("labelled")
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("env=prod", ["a"], id="equals"),
        pytest.param("env==prod", ["a"], id="double-equals"),
        pytest.param(
            "env!=prod", ["b", "c", "d", "e", "kube-root-ca.crt"], id="not-equals-includes-missing"
        ),
        pytest.param("env in (prod,dev)", ["a", "b"], id="in"),
        pytest.param(
            "env notin (prod,dev)", ["c", "d", "e", "kube-root-ca.crt"], id="notin-includes-missing"
        ),
        pytest.param("tier", ["a", "b", "d"], id="exists"),
        pytest.param("!tier", ["c", "e", "kube-root-ca.crt"], id="not-exists"),
        pytest.param("tier=web,env in (dev)", ["b"], id="and"),
        pytest.param("", ["a", "b", "c", "d", "e", "kube-root-ca.crt"], id="empty-selects-all"),
    ],
)
def test_label_selector_set_based_syntax(
    core: client.CoreV1Api, selector: str, expected: list[str]
) -> None:
    """Every operator of upstream's label selector grammar selects the right objects."""
    listed = core.list_namespaced_config_map(SELECT_NS, label_selector=selector)
    assert names(listed) == expected


def test_malformed_label_selector_is_400(core: client.CoreV1Api) -> None:
    """A selector that does not parse is a BadRequest, not an empty list."""
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map(SELECT_NS, label_selector="env in prod")
    assert info.value.status == 400
    assert status_of(info.value)["reason"] == "BadRequest"


# ----- field selectors ------------------------------------------------------------------


def test_field_selector_on_name_and_namespace(core: client.CoreV1Api, labelled: None) -> None:
    """metadata.name and metadata.namespace select across all namespaces too."""
    by_name = core.list_namespaced_config_map(SELECT_NS, field_selector="metadata.name=c")
    assert names(by_name) == ["c"]
    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={SELECT_NS},metadata.name!=a"
    )
    assert names(everywhere) == ["b", "c", "d", "e", "kube-root-ca.crt"]


def test_field_selector_on_secret_type(core: client.CoreV1Api) -> None:
    """Secrets are selectable by type."""
    core.create_namespaced_secret(
        SELECT_NS, client.V1Secret(metadata=client.V1ObjectMeta(name="opaque"))
    )
    core.create_namespaced_secret(
        SELECT_NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="basic"),
            type="kubernetes.io/basic-auth",
            string_data={"username": "u"},
        ),
    )
    basic = core.list_namespaced_secret(SELECT_NS, field_selector="type=kubernetes.io/basic-auth")
    assert names(basic) == ["basic"]
    opaque = core.list_namespaced_secret(SELECT_NS, field_selector="type!=kubernetes.io/basic-auth")
    assert names(opaque) == ["opaque"]


def test_field_selector_on_pod_node_name_and_phase(core: client.CoreV1Api) -> None:
    """Pods are selectable by spec.nodeName and status.phase (what kubelets and kubectl use)."""
    for name, node in (("p-a", "node-a"), ("p-b", "node-b"), ("p-none", None)):
        core.create_namespaced_pod(
            SELECT_NS,
            client.V1Pod(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1PodSpec(
                    node_name=node, containers=[client.V1Container(name="c", image="nginx")]
                ),
            ),
        )
    core.patch_namespaced_pod_status("p-b", SELECT_NS, {"status": {"phase": "Running"}})

    def pods(selector: str) -> list[str]:
        return names(core.list_namespaced_pod(SELECT_NS, field_selector=selector))

    assert pods("spec.nodeName=node-a") == ["p-a"]
    assert pods("spec.nodeName=") == ["p-none"]
    assert pods("status.phase=Running") == ["p-b"]
    assert pods("status.phase=Pending") == ["p-a", "p-none"]
    assert pods("spec.nodeName=node-b,status.phase!=Pending") == ["p-b"]


@pytest.mark.parametrize(
    ("kind", "selector", "message"),
    [
        pytest.param(
            "configmaps",
            "data.x=1",
            '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"',
            id="configmap-default-conversion",
        ),
        pytest.param(
            "pods", "spec.foo=1", "field label not supported: spec.foo", id="pod-conversion"
        ),
        pytest.param(
            "secrets", "data.x=1", "field label not supported: data.x", id="secret-conversion"
        ),
    ],
)
def test_unsupported_field_selector_is_400_with_upstream_message(
    core: client.CoreV1Api, kind: str, selector: str, message: str
) -> None:
    """A field the kind does not index is refused with the kind's conversion error."""
    lister = {
        "configmaps": core.list_namespaced_config_map,
        "pods": core.list_namespaced_pod,
        "secrets": core.list_namespaced_secret,
    }[kind]
    with pytest.raises(client.ApiException) as info:
        lister(SELECT_NS, field_selector=selector)
    status = status_of(info.value)
    assert info.value.status == 400
    assert status["reason"] == "BadRequest"
    assert status["message"] == message


# ----- watch -------------------------------------------------------------------------------


def collect(core: client.CoreV1Api, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    """The first ``count`` events of a ConfigMap watch in WATCH_NS (raw objects)."""
    events: list[dict[str, Any]] = []
    w = watch.Watch()
    kwargs.setdefault("timeout_seconds", 5)
    for event in w.stream(core.list_namespaced_config_map, WATCH_NS, **kwargs):
        events.append({"type": event["type"], "object": event["raw_object"]})
        if len(events) >= count:
            w.stop()
    return events


def test_watch_delivers_added_modified_deleted_in_order(core: client.CoreV1Api) -> None:
    """From a list's resourceVersion, a watch sees create, update, delete with rising RVs."""
    start = core.list_namespaced_config_map(WATCH_NS).metadata.resource_version
    core.create_namespaced_config_map(WATCH_NS, configmap("w1"))
    core.patch_namespaced_config_map("w1", WATCH_NS, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("w1", WATCH_NS)

    events = collect(core, 3, resource_version=start)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e["object"]["metadata"]["name"] == "w1" for e in events)
    assert events[1]["object"]["data"] == {"k": "v"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(set(rvs)) and rvs[0] > int(start)


@pytest.mark.parametrize("resource_version", [None, "0"], ids=["unset", "zero"])
def test_watch_without_exact_version_starts_with_current_state(
    core: client.CoreV1Api, resource_version: str | None
) -> None:
    """resourceVersion unset or "0": every existing object first arrives as ADDED."""
    for name in ("s1", "s2"):
        try:
            core.create_namespaced_config_map(WATCH_NS, configmap(name, group="state"))
        except client.ApiException as exc:
            assert exc.status == 409
    kwargs: dict[str, Any] = {"label_selector": "group=state"}
    if resource_version is not None:
        kwargs["resource_version"] = resource_version
    events = collect(core, 2, **kwargs)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "s1"),
        ("ADDED", "s2"),
    ]


def test_watch_from_exact_version_sends_only_later_events(core: client.CoreV1Api) -> None:
    """An exact resourceVersion replays nothing at or before it; the stream ends on timeout."""
    core.create_namespaced_config_map(WATCH_NS, configmap("before", group="exact"))
    rv = core.list_namespaced_config_map(WATCH_NS).metadata.resource_version
    core.create_namespaced_config_map(WATCH_NS, configmap("after", group="exact"))
    began = time.monotonic()
    events = collect(core, 99, resource_version=rv, label_selector="group=exact", timeout_seconds=1)
    elapsed = time.monotonic() - began
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "after")]
    assert 0.9 <= elapsed < 4, "timeoutSeconds=1 ends the stream after about a second"


def test_watch_selector_turns_leaving_and_entering_into_deleted_and_added(
    core: client.CoreV1Api,
) -> None:
    """An update that moves an object out of (into) a selector is DELETED (ADDED) for its watcher."""
    core.create_namespaced_config_map(WATCH_NS, configmap("mover", phase="in"))
    rv = core.list_namespaced_config_map(WATCH_NS).metadata.resource_version
    core.patch_namespaced_config_map("mover", WATCH_NS, {"metadata": {"labels": {"phase": "out"}}})
    core.patch_namespaced_config_map("mover", WATCH_NS, {"metadata": {"labels": {"phase": "in"}}})
    events = collect(core, 2, resource_version=rv, label_selector="phase=in")
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_watch_of_one_object_by_name(core: client.CoreV1Api) -> None:
    """A field selector on metadata.name watches one object among many."""
    rv = core.list_namespaced_config_map(WATCH_NS).metadata.resource_version
    core.create_namespaced_config_map(WATCH_NS, configmap("other"))
    core.create_namespaced_config_map(WATCH_NS, configmap("target"))
    events = collect(core, 1, resource_version=rv, field_selector="metadata.name=target")
    assert events[0]["object"]["metadata"]["name"] == "target"
