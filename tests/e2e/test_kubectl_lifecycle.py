"""The real kubectl following objects over time: delete cascades, wait, get -w.

No garbage collector runs yet, so a foreground or orphan delete stops at
the first step upstream takes: the object gets its deletionTimestamp and
the "foregroundDeletion" or "orphan" finalizer and stays until something
removes that finalizer. Background deletes remove the object at once.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_until

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: "nginx:1.25"}}]
"""


class LineReader:
    """Lines of a child's stdout as they come, with a timeout per line."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = 10.0) -> str | None:
        """The next line, or None at end of stream; fails the test on timeout."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout}s")


def kubectl_background(cluster: KajitoriCluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["kubectl", "--kubeconfig", str(cluster.kubeconfig), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def background(cluster: KajitoriCluster) -> Iterator[list[subprocess.Popen[str]]]:
    """Children started by a test; killed (by pid) if the test leaves them running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.communicate()


# ----- delete ---------------------------------------------------------------


def test_delete_background_removes_at_once(cluster: KajitoriCluster) -> None:
    """--cascade=background deletes the owner immediately (dependents left to the GC)."""
    cluster.kubectl("create", "-f", "-", stdin=DEPLOYMENT.format(name="gone"))
    out = cluster.kubectl("delete", "deployment", "gone", "--cascade=background").stdout
    assert out.strip() == 'deployment.apps "gone" deleted from default namespace'
    missing = cluster.kubectl("get", "deployment", "gone", check=False)
    assert missing.returncode == 1
    assert 'deployments.apps "gone" not found' in missing.stderr


HELD_DEPLOYMENT = DEPLOYMENT.replace(
    "  name: {name}\n", "  name: {name}\n  finalizers: [example.com/hold]\n"
)


def watched_events(cluster: KajitoriCluster, path: str, after_rv: str) -> list[Any]:
    """Every watch event on ``path`` after ``after_rv`` (the server ends the stream after 1 s)."""
    query = f"watch=1&resourceVersion={after_rv}&timeoutSeconds=1"
    raw = cluster.kubectl("get", "--raw", f"{path}&{query}").stdout
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("cascade", "finalizer"),
    [
        pytest.param("foreground", "foregroundDeletion", id="foreground"),
        pytest.param("orphan", "orphan", id="orphan"),
    ],
)
def test_delete_cascade_stores_the_policy_finalizer_for_the_gc(
    cluster: KajitoriCluster, cascade: str, finalizer: str
) -> None:
    """foreground/orphan store deletionTimestamp and the policy's finalizer; the GC then clears it."""
    name = f"held-{cascade}"
    cluster.kubectl("create", "-f", "-", stdin=HELD_DEPLOYMENT.format(name=name))
    before = cluster.get_json("deployment", name)
    cluster.kubectl("delete", "deployment", name, f"--cascade={cascade}", "--wait=false")
    # The garbage collector removes its finalizer; ours keeps the object.
    wait_until(
        lambda: (
            cluster.get_json("deployment", name)["metadata"]["finalizers"] == ["example.com/hold"]
        )
    )
    events = watched_events(
        cluster,
        f"/apis/apps/v1/namespaces/default/deployments?fieldSelector=metadata.name={name}",
        before["metadata"]["resourceVersion"],
    )
    # Controllers may write status first; the delete is the first event marking deletion.
    marking = next(e for e in events if e["object"]["metadata"].get("deletionTimestamp"))
    marked = marking["object"]["metadata"]
    assert marking["type"] == "MODIFIED"
    assert marked["finalizers"] == ["example.com/hold", finalizer]
    assert marked["deletionTimestamp"]
    assert marked["deletionGracePeriodSeconds"] == 0
    assert marked["generation"] == before["metadata"]["generation"] + 1


def test_removing_the_last_finalizer_finishes_the_delete(cluster: KajitoriCluster) -> None:
    """An object held by a finalizer is deleted once the finalizer is patched away."""
    cluster.kubectl(
        "create",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pending\n"
        "  finalizers: [example.com/hold]\n",
    )
    cluster.kubectl("delete", "configmap", "pending", "--wait=false")
    held = cluster.get_json("configmap", "pending")["metadata"]
    assert held["finalizers"] == ["example.com/hold"]
    assert held["deletionTimestamp"]
    cluster.kubectl(
        "patch",
        "configmap",
        "pending",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    missing = cluster.kubectl("get", "configmap", "pending", check=False)
    assert 'configmaps "pending" not found' in missing.stderr


def test_delete_by_label_selector(cluster: KajitoriCluster) -> None:
    """delete -l removes exactly the selected objects."""
    for name, team in (("sel-a", "red"), ("sel-b", "red"), ("sel-c", "blue")):
        cluster.kubectl("create", "configmap", name)
        cluster.kubectl("label", "configmap", name, f"team={team}")
    out = cluster.kubectl("delete", "configmaps", "-l", "team=red").stdout
    assert sorted(out.splitlines()) == [
        'configmap "sel-a" deleted from default namespace',
        'configmap "sel-b" deleted from default namespace',
    ]
    left = cluster.kubectl("get", "configmaps", "-l", "team", "-o", "name").stdout
    assert left.split() == ["configmap/sel-c"]


# ----- wait -----------------------------------------------------------------


def test_wait_for_jsonpath_ends_when_another_kubectl_labels(
    cluster: KajitoriCluster, background: list[subprocess.Popen[str]]
) -> None:
    """wait --for=jsonpath blocks until a concurrent label makes the expression true."""
    cluster.kubectl("create", "configmap", "gate")
    waiter = kubectl_background(
        cluster,
        "wait",
        "configmap/gate",
        "--for=jsonpath={.metadata.labels.ready}=yes",
        "--timeout=20s",
    )
    background.append(waiter)
    time.sleep(1.0)
    assert waiter.poll() is None, waiter.communicate()
    cluster.kubectl("label", "configmap", "gate", "ready=yes")
    stdout, stderr = waiter.communicate(timeout=15)
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == "configmap/gate condition met"


def test_wait_for_jsonpath_times_out_when_never_true(cluster: KajitoriCluster) -> None:
    """wait gives up with 'timed out' when the condition never holds."""
    cluster.kubectl("create", "configmap", "never")
    result = cluster.kubectl(
        "wait",
        "configmap/never",
        "--for=jsonpath={.metadata.labels.ready}=yes",
        "--timeout=1s",
        check=False,
    )
    assert result.returncode != 0
    assert "timed out waiting for the condition" in result.stderr


def test_wait_for_delete_ends_when_deleted(
    cluster: KajitoriCluster, background: list[subprocess.Popen[str]]
) -> None:
    """wait --for=delete returns once another kubectl deletes the object."""
    cluster.kubectl("create", "configmap", "doomed")
    waiter = kubectl_background(
        cluster, "wait", "configmap/doomed", "--for=delete", "--timeout=20s"
    )
    background.append(waiter)
    time.sleep(1.0)
    assert waiter.poll() is None, waiter.communicate()
    cluster.kubectl("delete", "configmap", "doomed")
    stdout, stderr = waiter.communicate(timeout=15)
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == "configmap/doomed condition met"


# ----- watch ----------------------------------------------------------------


def test_get_watch_streams_added_modified_deleted_in_order(
    cluster: KajitoriCluster, background: list[subprocess.Popen[str]]
) -> None:
    """get -w --output-watch-events prints the existing object, then each change as it happens."""
    cluster.kubectl("create", "namespace", "watched")
    cluster.wait_for_namespace_defaults("watched")
    cluster.kubectl("create", "configmap", "before", "-n", "watched", "--from-literal=a=1")
    watcher = kubectl_background(
        cluster, "get", "configmaps", "-n", "watched", "-w", "--output-watch-events"
    )
    background.append(watcher)
    assert watcher.stdout is not None
    lines = LineReader(watcher.stdout)

    def event() -> list[str]:
        line = lines.next()
        assert line is not None, watcher.communicate()
        return line.split()

    assert event()[:3] == ["EVENT", "NAME", "DATA"]
    assert event()[:3] == ["ADDED", "before", "1"]
    assert event()[:3] == ["ADDED", "kube-root-ca.crt", "1"]  # every namespace has it
    cluster.kubectl("create", "configmap", "during", "-n", "watched", "--from-literal=a=1")
    assert event()[:3] == ["ADDED", "during", "1"]
    cluster.kubectl("patch", "configmap", "during", "-n", "watched", "-p", '{"data":{"b":"2"}}')
    assert event()[:3] == ["MODIFIED", "during", "2"]
    cluster.kubectl("delete", "configmap", "during", "-n", "watched")
    assert event()[:3] == ["DELETED", "during", "2"]
    cluster.kubectl("label", "configmap", "before", "-n", "watched", "seen=yes")
    assert event()[:3] == ["MODIFIED", "before", "1"]


def test_get_watch_json_events_carry_increasing_resource_versions(
    cluster: KajitoriCluster, background: list[subprocess.Popen[str]]
) -> None:
    """get -w -o json prints one watch event per line; resourceVersions only grow."""
    cluster.kubectl("create", "namespace", "watched-json")
    cluster.wait_for_namespace_defaults("watched-json")
    cluster.kubectl("create", "configmap", "sentinel", "-n", "watched-json")
    watcher = kubectl_background(
        cluster,
        "get",
        "configmaps",
        "-n",
        "watched-json",
        "-w",
        "--output-watch-events",
        "-o",
        "json",
    )
    background.append(watcher)
    assert watcher.stdout is not None
    lines = LineReader(watcher.stdout)

    def event() -> Any:
        line = lines.next()
        assert line is not None, watcher.communicate()
        return json.loads(line)

    # The listed objects arrive first: after them, no later change can be missed.
    initial = [event(), event()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [
        ("ADDED", "kube-root-ca.crt"),  # every namespace has it
        ("ADDED", "sentinel"),
    ]
    cluster.kubectl("create", "configmap", "one", "-n", "watched-json")
    cluster.kubectl("annotate", "configmap", "one", "-n", "watched-json", "n=1")
    cluster.kubectl("delete", "configmap", "one", "-n", "watched-json")
    events = [event() for _ in range(3)]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert {e["object"]["metadata"]["name"] for e in events} == {"one"}
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in [*initial, *events]]
    assert versions == sorted(versions)
    assert len(set(versions)) == 5
    assert events[1]["object"]["metadata"]["annotations"] == {"n": "1"}
