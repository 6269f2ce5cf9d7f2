"""A real kopf operator against a kajitori cluster from the pytest plugin.

kopf (PyPI ``kopf``) is a demanding client: it discovers the custom resource,
joins a ClusterKopfPeering (merge patches of a CRD without a status subresource),
lists and watches it cluster-wide (with bookmarks and restarts), adds its
finalizer, keeps the last handled spec in an annotation and its retry
progress in ``status.kopf`` (merge patches on the object and on ``/status``),
posts Events (``kopf.info``), and removes its finalizer after the delete
handler. The operator is ``kopf_operator/example.py``. The official client's
``CustomObjectsApi`` and ``DynamicClient`` are covered in ``test_crd_e2e.py``;
here they only meet the status the operator wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, dynamic
from tests.e2e.kopf_operator import example

from kajitori.testing.cluster import wait_until
from kajitori.testing.inprocess import InProcessCluster

# kopf needs only the API server: no controllers, so the cluster starts fastest.
pytestmark = pytest.mark.kajitori(controllers=False)

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"


@pytest.fixture(scope="module")
def crd_cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    """The module's cluster with the KopfExample and peering CRDs, and the default peering."""
    cluster = kajitori_module_cluster
    crds = [example.CRD, example.PEERING_CRD]
    cluster.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps(crd) for crd in crds))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        *(f"crd/{crd['metadata']['name']}" for crd in crds),
    )
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(example.DEFAULT_PEERING))
    return cluster


@pytest.fixture(scope="module")
def seen(crd_cluster: InProcessCluster) -> Iterator[example.Seen]:
    """The operator, running for the whole module; its journal of handler calls."""
    with example.running_operator(crd_cluster.kubeconfig) as journal:
        yield journal


def _apply(cluster: InProcessCluster, name: str, **metadata: Any) -> None:
    body = {
        "apiVersion": f"{example.GROUP}/{example.VERSION}",
        "kind": "KopfExample",
        "metadata": {"name": name, "namespace": "default", **metadata},
        "spec": {"field": "value", "items": ["item1", "item2"]},
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def _get(cluster: InProcessCluster, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "kopfexample", name, "-o", "json")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _status(cluster: InProcessCluster, name: str, path: str) -> str:
    out = cluster.kubectl("get", "kex", name, "-o", f"jsonpath={{.status.{path}}}", check=False)
    return out.stdout


def test_create_handler_fires_and_its_result_lands_in_status(
    crd_cluster: InProcessCluster, seen: example.Seen
) -> None:
    """The create handler gets the spec; kubectl shows its message, the finalizer and diff base."""
    _apply(crd_cluster, "kex-create")
    wait_until(
        lambda: _status(crd_cluster, "kex-create", "create_fn.message") == "hello kex-create",
        timeout=20,
        what="kopf's create_fn result in status",
    )
    assert [c.details for c in seen.of("create", "kex-create")] == [
        {"field": "value", "items": ["item1", "item2"]}
    ]
    obj = _get(crd_cluster, "kex-create")
    assert FINALIZER in obj["metadata"]["finalizers"]
    last = json.loads(obj["metadata"]["annotations"][LAST_HANDLED])
    assert last["spec"] == {"field": "value", "items": ["item1", "item2"]}
    table = crd_cluster.kubectl("get", "kex", "kex-create")
    assert table.stdout.split("\n")[1].split() == ["kex-create", "value", "hello", "kex-create"]


def test_update_handler_sees_the_diff(crd_cluster: InProcessCluster, seen: example.Seen) -> None:
    """A merge patch of the spec reaches update_fn as a diff; kopf stores the new diff base."""
    _apply(crd_cluster, "kex-update")
    wait_until(
        lambda: bool(_status(crd_cluster, "kex-update", "create_fn.message")),
        timeout=20,
        what="create_fn to finish",
    )
    crd_cluster.kubectl(
        "patch", "kex", "kex-update", "--type=merge", "-p", '{"spec": {"field": "changed"}}'
    )
    wait_until(
        lambda: _status(crd_cluster, "kex-update", "update_fn.field") == "changed",
        timeout=20,
        what="kopf's update_fn result in status",
    )
    assert [c.details for c in seen.of("update", "kex-update")] == [
        [("change", ("spec", "field"), "value", "changed")]
    ]
    obj = _get(crd_cluster, "kex-update")
    assert json.loads(obj["metadata"]["annotations"][LAST_HANDLED])["spec"]["field"] == "changed"


def test_temporary_error_is_retried_with_progress_in_status(
    crd_cluster: InProcessCluster, seen: example.Seen
) -> None:
    """A handler failing with TemporaryError runs again; its second attempt succeeds."""
    _apply(crd_cluster, "kex-flaky", labels={"flaky": "yes"})
    wait_until(
        lambda: _status(crd_cluster, "kex-flaky", "flaky_fn.retries") == "1",
        timeout=20,
        what="flaky_fn to succeed on its retry",
    )
    assert [c.details for c in seen.of("flaky", "kex-flaky")] == [0, 1]


def test_delete_handler_runs_before_the_finalizer_goes(
    crd_cluster: InProcessCluster, seen: example.Seen
) -> None:
    """kubectl delete waits for delete_fn and kopf's finalizer removal; the object is gone."""
    _apply(crd_cluster, "kex-delete")
    wait_until(
        lambda: FINALIZER in _get(crd_cluster, "kex-delete")["metadata"].get("finalizers", []),
        timeout=20,
        what="kopf's finalizer",
    )
    crd_cluster.kubectl("delete", "kex", "kex-delete", "--timeout=20s")
    assert seen.of("delete", "kex-delete") == [example.Call("delete", "kex-delete")]
    gone = crd_cluster.kubectl("get", "kex", "kex-delete", check=False)
    assert "not found" in gone.stderr


def test_events_posted_by_handlers_reach_the_object(
    crd_cluster: InProcessCluster, seen: example.Seen
) -> None:
    """kopf.info() in a handler posts a core/v1 Event about the object."""
    _apply(crd_cluster, "kex-events")

    def events() -> list[dict[str, Any]]:
        out = crd_cluster.kubectl(
            "get", "events", "--field-selector", "involvedObject.name=kex-events", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items

    wait_until(lambda: bool(events()), timeout=20, what="kopf's event")
    [event] = events()
    assert (event["reason"], event["message"], event["type"]) == (
        "Greeted",
        "field=value",
        "Normal",
    )
    assert event["involvedObject"]["kind"] == "KopfExample"
    assert event["involvedObject"]["uid"] == _get(crd_cluster, "kex-events")["metadata"]["uid"]


def test_official_clients_meet_the_operators_status(
    crd_cluster: InProcessCluster, seen: example.Seen
) -> None:
    """A CustomObjectsApi merge patch triggers update_fn; DynamicClient reads the result."""
    _apply(crd_cluster, "kex-clients")
    wait_until(
        lambda: bool(_status(crd_cluster, "kex-clients", "create_fn.message")),
        timeout=20,
        what="create_fn to finish",
    )
    with crd_cluster.api_client() as api:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            example.GROUP,
            example.VERSION,
            "default",
            example.PLURAL,
            "kex-clients",
            {"spec": {"field": "from-python"}},
        )
        kexes = dynamic.DynamicClient(api).resources.get(
            api_version=f"{example.GROUP}/{example.VERSION}", kind="KopfExample"
        )

        def update_status() -> Any:
            return kexes.get(name="kex-clients", namespace="default").status.update_fn

        wait_until(
            lambda: update_status() is not None and update_status().field == "from-python",
            timeout=20,
            what="update_fn's result through DynamicClient",
        )


def test_the_operator_keeps_its_peering_alive(
    crd_cluster: InProcessCluster, seen: example.Seen
) -> None:
    """Not standalone, kopf announces itself in the default ClusterKopfPeering's status."""

    def peers() -> dict[str, Any]:
        out = crd_cluster.kubectl("get", "clusterkopfpeering", "default", "-o", "json")
        status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
        return status

    wait_until(lambda: len(peers()) == 1, timeout=20, what="kopf's keep-alive in the peering")
    [peer] = peers().values()
    assert peer["lifetime"] == 60
    assert peer["priority"] == 0
    assert peer["lastseen"]
