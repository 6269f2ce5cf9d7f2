"""``kubectl debug`` on the oci runtime: a real busybox debug container under runc.

With ``--target`` the ephemeral container joins the target container's PID
namespace (upstream's CRI NamespaceMode TARGET), so ``ps`` in it lists the
target's processes; without, it has a PID namespace of its own. Both share
the pod's network, IPC and UTS namespaces (the hostname is the pod's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers

from kajitori.testing import node_network
from kajitori.testing.cluster import KajitoriCluster, wait_for

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: target}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
"""
STATE = "{.status.ephemeralContainerStatuses[?(@.name=='%s')].state}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    tmp_path = tmp_path_factory.mktemp("oci-debug")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAJITORI_OCI_ROOT", str(tmp_path / "oci"))
        patch.setenv("KAJITORI_OCI_IMAGES", "busybox")  # the host's busybox-static
        network = node_network.up_args(node_network.cluster_name(), node_network.free_node_cidr())
        args = ("--nodes=1", "--runtime=oci", *network)
        with KajitoriCluster(Path(tmp_path) / "data", extra_args=args) as running:
            running.wait_for_namespace_defaults("default")
            running.kubectl("apply", "-f", "-", stdin=POD)
            running.kubectl(
                "wait", "pod/target", "--for=jsonpath={.status.phase}=Running", "--timeout=60s"
            )
            yield running


def _running(cluster: KajitoriCluster, name: str) -> Object:
    def state() -> Object | None:
        text = cluster.kubectl("get", "pod", "target", "-o", f"jsonpath={STATE % name}").stdout
        found: Object | None = (json.loads(text) if text else {}).get("running")
        return found

    return wait_for(state, timeout=30, what=f"ephemeral container {name} running")


def _ps(cluster: KajitoriCluster, container: str) -> str:
    return cluster.kubectl("exec", "target", "-c", container, "--", "ps", "-o", "args").stdout


def test_a_targeted_debug_container_sees_the_target_processes(cluster: KajitoriCluster) -> None:
    cluster.kubectl(
        "debug", "target", "--image=busybox", "-c", "shared", "--target=app",
        "--", "sleep", "3600",
    )  # fmt: skip
    _running(cluster, "shared")
    processes = _ps(cluster, "shared")
    assert "trap 'exit 0' TERM" in processes, processes  # the target's shell
    assert "sleep 3600" in processes
    status = cluster.get_json("pod", "target")["status"]
    (entry,) = [s for s in status["ephemeralContainerStatuses"] if s["name"] == "shared"]
    assert entry["containerID"].startswith("runc://") and entry["ready"] is False
    # The pod's UTS namespace: the debug container's hostname is the pod's.
    host = cluster.kubectl("exec", "target", "-c", "shared", "--", "hostname").stdout
    assert host.strip() == "target"


def test_without_a_target_it_has_its_own_pid_namespace(cluster: KajitoriCluster) -> None:
    cluster.kubectl("debug", "target", "--image=busybox", "-c", "alone", "--", "sleep", "3600")
    _running(cluster, "alone")
    processes = _ps(cluster, "alone")
    assert "sleep 3600" in processes
    assert "trap 'exit 0' TERM" not in processes, processes


def test_a_debug_container_that_exits_is_not_restarted(cluster: KajitoriCluster) -> None:
    cluster.kubectl("debug", "target", "--image=busybox", "-c", "once", "--", "sh", "-c", "exit 3")

    def terminated() -> Object | None:
        text = cluster.kubectl("get", "pod", "target", "-o", f"jsonpath={STATE % 'once'}").stdout
        found: Object | None = (json.loads(text) if text else {}).get("terminated")
        return found

    done = wait_for(terminated, timeout=30, what="ephemeral container once terminated")
    assert (done["exitCode"], done["reason"]) == (3, "Error")
    pod = cluster.get_json("pod", "target")
    (entry,) = [s for s in pod["status"]["ephemeralContainerStatuses"] if s["name"] == "once"]
    assert entry["restartCount"] == 0 and "waiting" not in entry["state"]
    assert pod["status"]["phase"] == "Running"  # the pod's own containers decide the phase
