"""Server-side apply and managedFields with the real kubectl.

``kubectl apply --server-side`` sends an ``application/apply-patch+yaml``
PATCH; ownership, conflicts (409 with upstream's message), pruning of fields
a manager stops applying, list-map merging between managers, ``kubectl
diff`` (a server-side dry run), client-side ``--prune`` and the move from
client-side to server-side apply are all observed through kubectl.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.https import https_client

from kajitori.testing.cluster import KajitoriCluster

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def configmap(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> str:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    if labels:
        doc["metadata"]["labels"] = labels
    doc["data"] = data
    return json.dumps(doc)


def deployment(name: str, containers: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": containers},
                },
            },
        }
    )


def get(cluster: KajitoriCluster, *args: str) -> Any:
    out = cluster.kubectl("get", *args, "-o", "json", "--show-managed-fields").stdout
    return json.loads(out)


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def ssa(cluster: KajitoriCluster, manifest: str, *flags: str, check: bool = True) -> Any:
    return cluster.kubectl("apply", "--server-side", *flags, "-f", "-", stdin=manifest, check=check)


def test_server_side_apply_creates_then_updates_with_an_apply_entry(
    cluster: KajitoriCluster,
) -> None:
    """The first apply creates the object; a second changes it; kubectl owns the data keys."""
    out = ssa(cluster, configmap("ssa-create", {"a": "1"})).stdout
    assert out.strip() == "configmap/ssa-create serverside-applied"
    ssa(cluster, configmap("ssa-create", {"a": "2", "b": "3"}))
    live = get(cluster, "configmap", "ssa-create")
    assert live["data"] == {"a": "2", "b": "3"}
    [entry] = live["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl"
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "v1"
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    shown = cluster.kubectl("get", "configmap", "ssa-create", "-o", "yaml", "--show-managed-fields")
    assert "managedFields:" in shown.stdout and "manager: kubectl" in shown.stdout
    hidden = cluster.kubectl("get", "configmap", "ssa-create", "-o", "yaml").stdout
    assert "managedFields" not in hidden


def test_a_conflicting_apply_is_refused_with_upstreams_message_until_forced(
    cluster: KajitoriCluster,
) -> None:
    """Another manager changing an owned field gets 409 naming it; --force-conflicts takes it."""
    ssa(cluster, configmap("ssa-conflict", {"key": "one", "x": "1"}))
    refused = ssa(
        cluster,
        configmap("ssa-conflict", {"key": "two"}),
        "--field-manager=other",
        check=False,
    )
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.key' in refused.stderr
    ssa(
        cluster,
        configmap("ssa-conflict", {"key": "two"}),
        "--field-manager=other",
        "--force-conflicts",
    )
    live = get(cluster, "configmap", "ssa-conflict")
    assert live["data"] == {"key": "two", "x": "1"}
    assert owners(live) == {
        ("kubectl", "Apply"): {"f:data": {"f:x": {}}},
        ("other", "Apply"): {"f:data": {"f:key": {}}},
    }


def test_an_update_by_kubectl_edit_style_manager_conflicts_with_a_later_apply(
    cluster: KajitoriCluster,
) -> None:
    """A PATCH by another manager owns what it changed; the applier then conflicts, per field."""
    ssa(cluster, configmap("ssa-update", {"a": "1", "b": "1"}))
    cluster.kubectl("patch", "configmap", "ssa-update", "-p", '{"data":{"a":"2","b":"2"}}')
    live = get(cluster, "configmap", "ssa-update")
    assert owners(live)[("kubectl-patch", "Update")] == {"f:data": {"f:a": {}, "f:b": {}}}
    refused = ssa(cluster, configmap("ssa-update", {"a": "3", "b": "3"}), check=False)
    assert 'Apply failed with 2 conflicts: conflicts with "kubectl-patch" using v1:' in (
        refused.stderr
    )
    assert "- .data.a\n- .data.b" in refused.stderr


def test_a_field_the_manager_stops_applying_is_removed(cluster: KajitoriCluster) -> None:
    """Dropping a key from the manifest deletes it, as no other manager owns it."""
    ssa(cluster, configmap("ssa-prune-field", {"keep": "1", "drop": "2"}))
    ssa(cluster, configmap("ssa-prune-field", {"keep": "1"}))
    assert get(cluster, "configmap", "ssa-prune-field")["data"] == {"keep": "1"}


def test_a_field_another_manager_also_applies_is_kept(cluster: KajitoriCluster) -> None:
    """Co-owned by applying the same value: one manager dropping it leaves it in place."""
    ssa(cluster, configmap("ssa-shared", {"shared": "s", "mine": "m"}))
    ssa(cluster, configmap("ssa-shared", {"shared": "s"}), "--field-manager=other")
    ssa(cluster, configmap("ssa-shared", {"mine": "m"}))
    live = get(cluster, "configmap", "ssa-shared")
    assert live["data"] == {"shared": "s", "mine": "m"}


def test_two_managers_merge_containers_by_name(cluster: KajitoriCluster) -> None:
    """Each manager applies its own container; both stay, each owning its item."""
    ssa(cluster, deployment("ssa-merge", [{"name": "web", "image": "nginx:1.25"}]))
    ssa(
        cluster,
        deployment("ssa-merge", [{"name": "sidecar", "image": "busybox:1.36"}]),
        "--field-manager=sidecar-injector",
    )
    live = get(cluster, "deployment", "ssa-merge")
    names = [c["name"] for c in live["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "sidecar"]
    injected = owners(live)[("sidecar-injector", "Apply")]
    containers = injected["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}}}


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("--server-side", id="server-side"),
        pytest.param("--server-side=false", id="client-side"),
    ],
)
def test_kubectl_diff_exits_one_on_a_difference_and_zero_without(
    cluster: KajitoriCluster, mode: str
) -> None:
    """kubectl diff dry-runs the write on the server: the change shows, nothing is stored."""
    name = f"diff{mode.replace('=', '-')}"
    cluster.kubectl("apply", mode, "-f", "-", stdin=configmap(name, {"a": "1"}))
    same = cluster.kubectl("diff", mode, "-f", "-", stdin=configmap(name, {"a": "1"}), check=False)
    assert (same.returncode, same.stdout) == (0, "")
    different = cluster.kubectl(
        "diff", mode, "-f", "-", stdin=configmap(name, {"a": "2"}), check=False
    )
    assert different.returncode == 1
    assert '-  a: "1"' in different.stdout and '+  a: "2"' in different.stdout
    assert get(cluster, "configmap", name)["data"] == {"a": "1"}


def test_client_side_apply_prune_deletes_labelled_objects_no_longer_listed(
    cluster: KajitoriCluster,
) -> None:
    """kubectl apply --prune -l deletes what carries the label but left the manifests."""
    both = "\n---\n".join(
        configmap(n, {"k": "v"}, {"app": "pruned"}) for n in ("prune-a", "prune-b")
    )
    cluster.kubectl("apply", "-f", "-", stdin=both)
    only_a = configmap("prune-a", {"k": "v"}, {"app": "pruned"})
    out = cluster.kubectl("apply", "--prune", "-l", "app=pruned", "-f", "-", stdin=only_a).stdout
    assert "configmap/prune-b pruned" in out
    left = cluster.kubectl("get", "configmaps", "-l", "app=pruned", "-o", "name").stdout
    assert left.split() == ["configmap/prune-a"]


def test_created_objects_get_an_update_entry_for_their_creator(
    cluster: KajitoriCluster,
) -> None:
    """kubectl create records kubectl-create (operation Update) owning the map it set."""
    cluster.kubectl("create", "configmap", "created-cm", "--from-literal=k=v")
    live = get(cluster, "configmap", "created-cm")
    [entry] = live["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("kubectl-create", "Update")
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:k": {}}}
    assert entry["time"] == live["metadata"]["creationTimestamp"]


def test_client_side_applied_object_moves_to_server_side_without_conflicts(
    cluster: KajitoriCluster,
) -> None:
    """kubectl's csaupgrade hands kubectl-client-side-apply's fields to the server-side applier."""
    cluster.kubectl("apply", "-f", "-", stdin=configmap("migrated", {"a": "1", "b": "2"}))
    before = get(cluster, "configmap", "migrated")
    assert ("kubectl-client-side-apply", "Update") in owners(before)
    # kubectl applies, records last-applied as kubectl-last-applied, upgrades the
    # client-side manager's entry with a JSON patch, then applies again.
    ssa(cluster, configmap("migrated", {"a": "9"}))
    live = get(cluster, "configmap", "migrated")
    assert live["data"] == {"a": "9"}
    assert set(owners(live)) == {("kubectl", "Apply"), ("kubectl-last-applied", "Apply")}
    assert owners(live)[("kubectl", "Apply")] == {"f:data": {"f:a": {}}}
    assert json.loads(live["metadata"]["annotations"][LAST_APPLIED])["data"] == {"a": "9"}


def test_managed_fields_set_to_one_empty_entry_are_cleared_and_an_empty_list_is_ignored(
    cluster: KajitoriCluster,
) -> None:
    """[{}] strips managedFields; [] keeps the stored ones (upstream's documented reset)."""
    ssa(cluster, configmap("mf-reset", {"a": "1"}))
    cluster.kubectl(
        "patch", "configmap", "mf-reset", "--type=merge", "-p", '{"metadata":{"managedFields":[]}}'
    )
    assert set(owners(get(cluster, "configmap", "mf-reset"))) == {("kubectl", "Apply")}
    cluster.kubectl(
        "patch",
        "configmap",
        "mf-reset",
        "--type=merge",
        "-p",
        '{"metadata":{"managedFields":[{}]}}',
    )
    assert "managedFields" not in get(cluster, "configmap", "mf-reset")["metadata"]


@pytest.mark.parametrize(
    ("query", "content_type", "message"),
    [
        pytest.param(
            "",
            "application/apply-patch+yaml",
            'PatchOptions.meta.k8s.io "" is invalid: '
            "fieldManager: Required value: is required for apply patch",
            id="apply-without-manager",
        ),
        pytest.param(
            "?fieldManager=m&force=true",
            "application/merge-patch+json",
            'PatchOptions.meta.k8s.io "" is invalid: '
            "force: Forbidden: may not be specified for non-apply patch",
            id="force-on-merge-patch",
        ),
    ],
)
def test_invalid_patch_options_are_a_422(
    cluster: KajitoriCluster,
    query: str,
    content_type: str,
    message: str,
) -> None:
    """Upstream's ValidatePatchOptions: apply needs fieldManager; only apply may force."""
    ssa(cluster, configmap("patch-options", {"a": "1"}))
    with https_client(cluster.kubeconfig) as http:
        response = http.patch(
            f"/api/v1/namespaces/default/configmaps/patch-options{query}",
            content=configmap("patch-options", {"a": "2"}),
            headers={"Content-Type": content_type},
        )
    assert response.status_code == 422
    assert response.json()["message"] == message


def test_an_apply_conflict_status_carries_one_cause_per_field(cluster: KajitoriCluster) -> None:
    """409 Conflict with FieldManagerConflict causes naming manager and field."""
    ssa(cluster, configmap("conflict-causes", {"a": "1", "b": "1"}))
    with https_client(cluster.kubeconfig) as http:
        response = http.patch(
            "/api/v1/namespaces/default/configmaps/conflict-causes?fieldManager=other",
            content=configmap("conflict-causes", {"a": "2", "b": "2"}),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
    status = response.json()
    assert (response.status_code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl":\n- .data.a\n- .data.b'
    )
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"', "field": f}
        for f in (".data.a", ".data.b")
    ]
