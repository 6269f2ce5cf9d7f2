"""The real kubectl changing objects: create, apply, replace, patch, edit, label, annotate, scale.

Client-side ``kubectl apply`` is the interesting one: kubectl computes a
three-way strategic merge patch from the last-applied-configuration
annotation, the new manifest and the live object, so the server's strategic
merge (merge keys, ``$setElementOrder``, ``null`` deletes) decides whether a
re-apply changes exactly what the manifest changed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: web
        image: {web_image}
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "infinity"]
{sidecar_env}"""

SIDECAR_ENV = """\
        env:
        - name: MODE
          value: fast
"""


def deployment(name: str, *, web_image: str = "nginx:1.25", sidecar_env: bool = True) -> str:
    env = SIDECAR_ENV if sidecar_env else ""
    return DEPLOYMENT.format(name=name, web_image=web_image, sidecar_env=env)


def containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def test_create_from_file_then_create_again_is_already_exists(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """create -f stores the manifest; a second create -f fails with AlreadyExists."""
    manifest = tmp_path / "dep.yaml"
    manifest.write_text(deployment("created"))
    out = cluster.kubectl("create", "-f", str(manifest)).stdout
    assert out.strip() == "deployment.apps/created created"
    live = cluster.get_json("deployment", "created")
    assert live["spec"]["replicas"] == 2
    assert LAST_APPLIED not in live["metadata"].get("annotations", {})
    again = cluster.kubectl("create", "-f", str(manifest), check=False)
    assert again.returncode != 0
    assert 'deployments.apps "created" already exists' in again.stderr


def test_apply_records_last_applied_configuration(cluster: KajitoriCluster, tmp_path: Path) -> None:
    """apply -f creates the object with the manifest in the last-applied annotation."""
    manifest = tmp_path / "dep.yaml"
    manifest.write_text(deployment("applied"))
    assert cluster.kubectl("apply", "-f", str(manifest)).stdout.strip() == (
        "deployment.apps/applied created"
    )
    live = cluster.get_json("deployment", "applied")
    recorded = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert recorded["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert "imagePullPolicy" not in recorded["spec"]["template"]["spec"]["containers"][0]
    unchanged = cluster.kubectl("apply", "-f", str(manifest)).stdout.strip()
    assert unchanged == "deployment.apps/applied unchanged"


def test_reapply_changes_only_the_changed_container(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """Re-applying with one image changed changes that container and keeps the other's fields."""
    manifest = tmp_path / "dep.yaml"
    manifest.write_text(deployment("merge"))
    cluster.kubectl("apply", "-f", str(manifest))
    # A field set outside the manifest on the sidecar survives the re-apply.
    cluster.kubectl(
        "patch",
        "deployment",
        "merge",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","workingDir":"/tmp"}]}}}}',
    )
    before = cluster.get_json("deployment", "merge")
    manifest.write_text(deployment("merge", web_image="nginx:1.26"))
    assert (
        "deployment.apps/merge configured" in cluster.kubectl("apply", "-f", str(manifest)).stdout
    )
    after = cluster.get_json("deployment", "merge")
    assert containers(after)["web"]["image"] == "nginx:1.26"
    assert containers(after)["sidecar"] == containers(before)["sidecar"]
    assert containers(after)["sidecar"]["workingDir"] == "/tmp"
    assert [c["name"] for c in after["spec"]["template"]["spec"]["containers"]] == [
        "web",
        "sidecar",
    ]
    assert int(after["metadata"]["generation"]) == int(before["metadata"]["generation"]) + 1


def test_reapply_without_a_field_removes_it(cluster: KajitoriCluster, tmp_path: Path) -> None:
    """A field dropped from the manifest is removed from the live object on re-apply."""
    manifest = tmp_path / "dep.yaml"
    manifest.write_text(deployment("prune"))
    cluster.kubectl("apply", "-f", str(manifest))
    assert containers(cluster.get_json("deployment", "prune"))["sidecar"]["env"] == [
        {"name": "MODE", "value": "fast"}
    ]
    manifest.write_text(deployment("prune", sidecar_env=False))
    cluster.kubectl("apply", "-f", str(manifest))
    live = cluster.get_json("deployment", "prune")
    assert "env" not in containers(live)["sidecar"]
    assert containers(live)["web"]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    recorded = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert "env" not in recorded["spec"]["template"]["spec"]["containers"][1]


def test_replace_swaps_the_whole_object(cluster: KajitoriCluster, tmp_path: Path) -> None:
    """replace -f overwrites data wholesale (keys absent from the file go away)."""
    cluster.kubectl("create", "configmap", "replaced", "--from-literal=a=1", "--from-literal=b=2")
    live = cluster.get_json("configmap", "replaced")
    live["data"] = {"c": "3"}
    manifest = tmp_path / "cm.json"
    manifest.write_text(json.dumps(live))
    out = cluster.kubectl("replace", "-f", str(manifest)).stdout
    assert out.strip() == "configmap/replaced replaced"
    after = cluster.get_json("configmap", "replaced")
    assert after["data"] == {"c": "3"}
    assert int(after["metadata"]["resourceVersion"]) > int(live["metadata"]["resourceVersion"])
    # The file still carries the old resourceVersion: a second replace conflicts.
    stale = cluster.kubectl("replace", "-f", str(manifest), check=False)
    assert stale.returncode != 0
    assert "the object has been modified" in stale.stderr


@pytest.mark.parametrize(
    ("patch_type", "patch", "expected_containers"),
    [
        pytest.param(
            "strategic",
            '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}',
            {"web": "nginx:1.25", "sidecar": "busybox:1.37"},
            id="strategic-merges-by-name",
        ),
        pytest.param(
            "merge",
            '{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"redis:7"}]}}}}',
            {"only": "redis:7"},
            id="merge-replaces-lists",
        ),
        pytest.param(
            "json",
            '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]',
            {"web": "nginx:1.27", "sidecar": "busybox:1.36"},
            id="json-patch-by-index",
        ),
    ],
)
def test_patch_types_treat_lists_as_upstream(
    cluster: KajitoriCluster,
    tmp_path: Path,
    patch_type: str,
    patch: str,
    expected_containers: dict[str, str],
) -> None:
    """patch --type strategic merges containers by name, merge replaces the list, json indexes."""
    name = f"patch-{patch_type}"
    manifest = tmp_path / "dep.yaml"
    manifest.write_text(deployment(name))
    cluster.kubectl("create", "-f", str(manifest))
    out = cluster.kubectl("patch", "deployment", name, "--type", patch_type, "-p", patch).stdout
    assert out.strip() == f"deployment.apps/{name} patched"
    live = cluster.get_json("deployment", name)
    assert {n: c["image"] for n, c in containers(live).items()} == expected_containers


def test_json_patch_test_op_failure_is_reported(cluster: KajitoriCluster) -> None:
    """A failing JSON patch ``test`` op leaves the object alone and kubectl reports it."""
    cluster.kubectl("create", "configmap", "guarded", "--from-literal=k=v")
    patch = '[{"op":"test","path":"/data/k","value":"other"},{"op":"remove","path":"/data/k"}]'
    result = cluster.kubectl(
        "patch", "configmap", "guarded", "--type", "json", "-p", patch, check=False
    )
    assert result.returncode != 0
    assert cluster.get_json("configmap", "guarded")["data"] == {"k": "v"}


def test_edit_with_a_scripted_editor(cluster: KajitoriCluster) -> None:
    """edit opens $EDITOR on the object and sends the edited result back."""
    cluster.kubectl("create", "configmap", "edited", "--from-literal=color=red")
    editor = f"sed -i {shlex.quote('s/color: red/color: blue/')}"
    out = cluster.kubectl("edit", "configmap", "edited", env={"EDITOR": editor}).stdout
    assert out.strip() == "configmap/edited edited"
    assert cluster.get_json("configmap", "edited")["data"] == {"color": "blue"}


def test_edit_without_changes_is_cancelled(cluster: KajitoriCluster) -> None:
    """An editor that changes nothing makes kubectl edit report 'Edit cancelled'."""
    cluster.kubectl("create", "configmap", "untouched", "--from-literal=color=red")
    before = cluster.get_json("configmap", "untouched")["metadata"]["resourceVersion"]
    result = cluster.kubectl("edit", "configmap", "untouched", env={"EDITOR": "true"})
    assert "Edit cancelled, no changes made." in result.stdout + result.stderr
    after = cluster.get_json("configmap", "untouched")["metadata"]["resourceVersion"]
    assert after == before


def test_label_add_overwrite_and_remove(cluster: KajitoriCluster) -> None:
    """label adds, refuses to overwrite without --overwrite, and removes with key-."""
    cluster.kubectl("create", "configmap", "labelled")
    assert cluster.kubectl("label", "configmap", "labelled", "tier=web").stdout.strip() == (
        "configmap/labelled labeled"
    )
    clash = cluster.kubectl("label", "configmap", "labelled", "tier=db", check=False)
    assert clash.returncode != 0
    assert "already has a value (web)" in clash.stderr
    cluster.kubectl("label", "configmap", "labelled", "tier=db", "--overwrite")
    assert cluster.get_json("configmap", "labelled")["metadata"]["labels"] == {"tier": "db"}
    selected = cluster.kubectl("get", "configmaps", "-l", "tier=db", "-o", "name").stdout
    assert selected.split() == ["configmap/labelled"]
    cluster.kubectl("label", "configmap", "labelled", "tier-")
    assert "labels" not in cluster.get_json("configmap", "labelled")["metadata"]


def test_annotate_add_and_remove(cluster: KajitoriCluster) -> None:
    """annotate sets and removes annotations."""
    cluster.kubectl("create", "configmap", "annotated")
    out = cluster.kubectl("annotate", "configmap", "annotated", "owner=team-a").stdout
    assert out.strip() == "configmap/annotated annotated"
    meta = cluster.get_json("configmap", "annotated")["metadata"]
    assert meta["annotations"] == {"owner": "team-a"}
    cluster.kubectl("annotate", "configmap", "annotated", "owner-")
    assert "annotations" not in cluster.get_json("configmap", "annotated")["metadata"]


def test_scale_deployment_uses_the_scale_subresource(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """scale --replicas changes spec.replicas; --current-replicas guards it."""
    manifest = tmp_path / "dep.yaml"
    manifest.write_text(deployment("scaled"))
    cluster.kubectl("create", "-f", str(manifest))
    out = cluster.kubectl("scale", "deployment", "scaled", "--replicas=5").stdout
    assert out.strip() == "deployment.apps/scaled scaled"
    assert cluster.get_json("deployment", "scaled")["spec"]["replicas"] == 5
    guarded = cluster.kubectl(
        "scale", "deployment", "scaled", "--current-replicas=2", "--replicas=1", check=False
    )
    assert guarded.returncode != 0
    assert "Expected replicas to be 2, was 5" in guarded.stderr
    assert cluster.get_json("deployment", "scaled")["spec"]["replicas"] == 5


def test_reapply_service_keeps_server_assigned_cluster_ip(
    cluster: KajitoriCluster, tmp_path: Path
) -> None:
    """Re-applying a Service keeps the allocated clusterIP; the changed targetPort is applied."""
    manifest = tmp_path / "svc.yaml"
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: front}\n"
        "spec:\n  selector: {app: front}\n  ports: [{port: 80, targetPort: %d}]\n"
    )
    manifest.write_text(service % 8080)
    cluster.kubectl("apply", "-f", str(manifest))
    ip = cluster.get_json("service", "front")["spec"]["clusterIP"]
    manifest.write_text(service % 9090)
    assert cluster.kubectl("apply", "-f", str(manifest)).stdout.strip() == (
        "service/front configured"
    )
    spec = cluster.get_json("service", "front")["spec"]
    assert spec["clusterIP"] == ip
    assert spec["clusterIPs"] == [ip]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 9090}]
