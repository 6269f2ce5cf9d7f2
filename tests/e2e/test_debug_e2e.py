"""``kubectl debug``: ephemeral containers through ``pods/ephemeralcontainers``, end to end.

The real kubectl against ``kajitori up`` (one simulated node): ``kubectl
debug`` sends its strategic merge patch to the subresource, the kubelet
starts the ephemeral container in the running pod and reports it in
``status.ephemeralContainerStatuses``; changes the subresource and the main
pod endpoint refuse come back with upstream's messages. The oci runtime's
counterpart (a real debug container in the target's PID namespace) is in
``tests/kubelet/runtimes/oci/test_oci_ephemeral.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_for

EPHEMERAL_STATE = "{.status.ephemeralContainerStatuses[?(@.name=='%s')].state}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    with KajitoriCluster(tmp_path_factory.mktemp("debug"), extra_args=["--nodes=1"]) as up:
        up.wait_for_namespace_defaults("default")
        yield up


def _running_pod(cluster: KajitoriCluster, name: str) -> None:
    cluster.kubectl("run", name, "--image=nginx", "--restart=Never")
    cluster.kubectl("wait", f"pod/{name}", "--for=jsonpath={.status.phase}=Running")


def _ephemeral_state(cluster: KajitoriCluster, pod: str, container: str) -> dict[str, Any] | None:
    jsonpath = EPHEMERAL_STATE % container
    text = cluster.kubectl("get", "pod", pod, "-o", f"jsonpath={jsonpath}").stdout
    return json.loads(text) if text else None


def _patch_ephemeral(
    cluster: KajitoriCluster, pod: str, patch: dict[str, Any], kind: str = "strategic"
) -> Any:
    return cluster.kubectl(
        "patch", "pod", pod, "--subresource=ephemeralcontainers", f"--type={kind}",
        "-p", json.dumps(patch), check=False,
    )  # fmt: skip


def test_kubectl_debug_starts_an_ephemeral_container(cluster: KajitoriCluster) -> None:
    _running_pod(cluster, "web")
    done = cluster.kubectl("debug", "web", "--image=busybox", "-c", "debugger", check=False)
    assert done.returncode == 0, done.stderr
    state = wait_for(
        lambda: (_ephemeral_state(cluster, "web", "debugger") or {}).get("running"),
        what="the ephemeral container running",
    )
    assert "startedAt" in state
    pod = cluster.get_json("pod", "web")
    (container,) = pod["spec"]["ephemeralContainers"]
    assert container["name"] == "debugger"
    assert container["image"] == "busybox"
    assert container["terminationMessagePolicy"] == "File"  # defaulted by the server
    (status,) = pod["status"]["ephemeralContainerStatuses"]
    assert status["ready"] is False and "started" not in status
    assert status["restartCount"] == 0
    assert status["image"] == "docker.io/library/busybox:latest"
    # An ephemeral container counts for neither READY nor the phase.
    assert pod["status"]["phase"] == "Running"
    assert cluster.kubectl("get", "pod", "web", "--no-headers").stdout.split()[1] == "1/1"
    assert pod["metadata"]["generation"] == 2  # upstream's updatePodGeneration
    events = cluster.kubectl(
        "get", "events", "--field-selector",
        "involvedObject.name=web,involvedObject.fieldPath=spec.ephemeralContainers{debugger}",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert {"Created", "Started"} <= set(events)


def test_debug_with_a_target_names_the_container(cluster: KajitoriCluster) -> None:
    _running_pod(cluster, "targeted")
    cluster.kubectl(
        "debug", "targeted", "--image=busybox", "-c", "probe", "--target=targeted",
        "--profile=general",
    )  # fmt: skip
    pod = cluster.get_json("pod", "targeted")
    (container,) = pod["spec"]["ephemeralContainers"]
    assert container["targetContainerName"] == "targeted"
    wait_for(
        lambda: (_ephemeral_state(cluster, "targeted", "probe") or {}).get("running"),
        what="the targeted ephemeral container running",
    )


def test_subresource_get_answers_the_pod_and_discovery_lists_it(cluster: KajitoriCluster) -> None:
    _running_pod(cluster, "plain")
    raw = cluster.kubectl(
        "get", "--raw", "/api/v1/namespaces/default/pods/plain/ephemeralcontainers"
    ).stdout
    assert json.loads(raw)["kind"] == "Pod"
    resources = json.loads(cluster.kubectl("get", "--raw", "/api/v1").stdout)["resources"]
    (entry,) = [r for r in resources if r["name"] == "pods/ephemeralcontainers"]
    assert (entry["kind"], sorted(entry["verbs"])) == ("Pod", ["get", "patch", "update"])


def test_existing_ephemeral_containers_may_not_change(cluster: KajitoriCluster) -> None:
    _running_pod(cluster, "fixed")
    cluster.kubectl("debug", "fixed", "--image=busybox", "-c", "one")
    changed = _patch_ephemeral(
        cluster, "fixed",
        {"spec": {"ephemeralContainers": [{"name": "one", "image": "alpine"}]}},
    )  # fmt: skip
    assert changed.returncode != 0
    assert (
        'The Pod "fixed" is invalid: spec.ephemeralContainers: Forbidden: existing '
        'ephemeral containers "one" may not be changed'
    ) in changed.stderr
    removed = _patch_ephemeral(
        cluster, "fixed", {"spec": {"ephemeralContainers": None}}, kind="merge"
    )
    assert removed.returncode != 0
    assert 'existing ephemeral containers "one" may not be removed' in removed.stderr


def test_refused_fields_and_names(cluster: KajitoriCluster) -> None:
    _running_pod(cluster, "strict")
    bad = {
        "name": "strict",
        "image": "busybox",
        "targetContainerName": "nope",
        "ports": [{"containerPort": 80}],
        "readinessProbe": {"exec": {"command": ["true"]}},
    }
    done = _patch_ephemeral(cluster, "strict", {"spec": {"ephemeralContainers": [bad]}})
    assert done.returncode != 0
    for message in (
        'spec.ephemeralContainers[0].name: Duplicate value: "strict"',
        'spec.ephemeralContainers[0].targetContainerName: Not found: "nope"',
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an "
        "Ephemeral Container",
    ):
        assert message in done.stderr, done.stderr


def test_main_update_path_refuses_ephemeral_containers(cluster: KajitoriCluster) -> None:
    _running_pod(cluster, "main")
    added = {"spec": {"ephemeralContainers": [{"name": "x", "image": "busybox"}]}}
    done = cluster.kubectl("patch", "pod", "main", "-p", json.dumps(added), check=False)
    assert done.returncode != 0
    assert (
        'The Pod "main" is invalid: spec: Forbidden: pod updates may not change fields other than'
    ) in done.stderr
    assert "ephemeralContainers" not in cluster.get_json("pod", "main")["spec"]


def test_only_ephemeral_containers_change_through_the_subresource(
    cluster: KajitoriCluster,
) -> None:
    _running_pod(cluster, "only")
    patch = {
        "metadata": {"labels": {"sneaky": "yes"}},
        "spec": {
            "activeDeadlineSeconds": 5,
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}],
        },
    }
    done = _patch_ephemeral(cluster, "only", patch)
    assert done.returncode == 0, done.stderr
    pod = cluster.get_json("pod", "only")
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["dbg"]
    assert "activeDeadlineSeconds" not in pod["spec"]
    assert "sneaky" not in (pod["metadata"].get("labels") or {})


def test_pod_security_evaluates_the_added_containers(cluster: KajitoriCluster) -> None:
    """PodSecurity checks ``pods/ephemeralcontainers`` writes: sysadmin is not baseline."""
    cluster.kubectl("create", "namespace", "guarded")
    cluster.kubectl("label", "namespace", "guarded", "pod-security.kubernetes.io/enforce=baseline")
    cluster.kubectl("run", "app", "-n", "guarded", "--image=nginx", "--restart=Never")
    cluster.kubectl("wait", "-n", "guarded", "pod/app", "--for=jsonpath={.status.phase}=Running")
    refused = cluster.kubectl(
        "debug", "-n", "guarded", "app", "--image=busybox", "-c", "root", "--profile=sysadmin",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert (
        'pods "app" is forbidden: violates PodSecurity "baseline:latest": privileged '
        '(container "root" must not set securityContext.privileged=true)'
    ) in refused.stderr
    cluster.kubectl(
        "debug", "-n", "guarded", "app", "--image=busybox", "-c", "fine", "--profile=baseline"
    )
    pod = cluster.get_json("pod", "app", "-n", "guarded")
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["fine"]
