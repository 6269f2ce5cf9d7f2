"""The study note's StatefulSet (apps/v1beta1) and DaemonSet (apps/v1beta2), applied unchanged.

The note was written against a 2018 book, when workloads lived in
apps/v1beta1, apps/v1beta2 and extensions/v1beta1. kajitori serves those
versions by default (``--api-versions=legacy``) over the apps/v1 storage:
kubectl applies the manifests with client-side validation, prints upstream's
deprecation warning, and the objects read back as apps/v1 with the old
versions' defaults (selector and labels from the template) and convert back
when read in the old version. The manifests are copied byte for byte.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.study_note import KUBIA_STATEFULSET, SSD_MONITOR_DAEMONSET

from kajitori.testing.cluster import KajitoriCluster

SEED_DIR = Path("/work/shared/seed")

# The book's Deployment (chapter 9), in the extensions/v1beta1 it was written for.
KUBIA_DEPLOYMENT = """\
apiVersion: extensions/v1beta1
kind: Deployment
metadata:
  name: kubia
spec:
  replicas: 3
  template:
    metadata:
      name: kubia
      labels:
        app: kubia
    spec:
      containers:
      - image: luksa/kubia:v1
        name: nodejs
"""

STATEFULSET_WARNING = (
    "Warning: apps/v1beta1 StatefulSet is deprecated in v1.9+, unavailable in v1.16+; "
    "use apps/v1 StatefulSet"
)
DAEMONSET_WARNING = (
    "Warning: apps/v1beta2 DaemonSet is deprecated in v1.9+, unavailable in v1.16+; "
    "use apps/v1 DaemonSet"
)


class Kubectl:
    """The real kubectl with a private discovery cache (ports get reused between runs)."""

    def __init__(self, cluster: KajitoriCluster, cache: Path) -> None:
        self.cluster = cluster
        self.cache = cache

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return self.cluster.kubectl(f"--cache-dir={self.cache}", *args, stdin=stdin, check=check)

    def get_json(self, *args: str) -> Any:
        return json.loads(self("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def kubectl(
    cluster: KajitoriCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kubectl]:
    yield Kubectl(cluster, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture(scope="module")
def applied(kubectl: Kubectl) -> dict[str, Any]:
    """The note's two manifests and the book's Deployment, applied as written (validation on)."""
    return {
        "statefulset": kubectl("apply", "-f", "-", stdin=KUBIA_STATEFULSET),
        "daemonset": kubectl("apply", "-f", "-", stdin=SSD_MONITOR_DAEMONSET),
        "deployment": kubectl("apply", "-f", "-", stdin=KUBIA_DEPLOYMENT),
    }


@pytest.mark.skipif(not SEED_DIR.is_dir(), reason="the study note is not on this machine")
@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(KUBIA_STATEFULSET, id="statefulset"),
        pytest.param(SSD_MONITOR_DAEMONSET, id="daemonset"),
    ],
)
def test_embedded_manifests_are_the_notes(manifest: str) -> None:
    """The manifests here are byte for byte the note's."""
    (note,) = SEED_DIR.glob("*.txt")
    assert manifest in note.read_text()


@pytest.mark.parametrize(
    ("key", "created", "warning"),
    [
        pytest.param(
            "statefulset", "statefulset.apps/kubia created", STATEFULSET_WARNING, id="sts"
        ),
        pytest.param("daemonset", "daemonset.apps/ssd-monitor created", DAEMONSET_WARNING, id="ds"),
        pytest.param(
            "deployment",
            "deployment.extensions/kubia created",
            "Warning: extensions/v1beta1 Deployment is deprecated in v1.8+, unavailable in "
            "v1.16+; use apps/v1 Deployment",
            id="deploy",
        ),
    ],
)
def test_old_version_manifests_are_created_with_a_deprecation_warning(
    applied: dict[str, Any], key: str, created: str, warning: str
) -> None:
    """kubectl apply creates each object and prints upstream's deprecation warning."""
    result = applied[key]
    assert result.stdout.strip() == created
    assert warning in result.stderr.splitlines()


def test_statefulset_reads_back_as_apps_v1_with_the_old_defaults(
    applied: dict[str, Any], kubectl: Kubectl
) -> None:
    """apps/v1beta1 defaulted selector and labels from the template and updates OnDelete."""
    sts = kubectl.get_json("statefulsets.v1.apps", "kubia")
    assert sts["apiVersion"] == "apps/v1"
    assert sts["spec"]["selector"] == {"matchLabels": {"app": "kubia"}}
    assert sts["metadata"]["labels"] == {"app": "kubia"}
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"


def test_statefulset_reads_in_its_old_version_converted_back(
    applied: dict[str, Any], kubectl: Kubectl
) -> None:
    """GET in apps/v1beta1 answers apiVersion apps/v1beta1 for the same object."""
    old = kubectl("get", "statefulsets.v1beta1.apps", "kubia", "-o", "json")
    sts = json.loads(old.stdout)
    assert sts["apiVersion"] == "apps/v1beta1"
    assert sts["spec"]["selector"] == {"matchLabels": {"app": "kubia"}}
    assert STATEFULSET_WARNING in old.stderr.splitlines()
    current = kubectl.get_json("statefulsets.v1.apps", "kubia")
    assert sts["metadata"]["uid"] == current["metadata"]["uid"]


def test_daemonset_reads_back_in_both_versions(applied: dict[str, Any], kubectl: Kubectl) -> None:
    """The apps/v1beta2 DaemonSet is one object, apps/v1 and apps/v1beta2 by request."""
    ds = kubectl.get_json("daemonsets.v1.apps", "ssd-monitor")
    old = kubectl.get_json("daemonsets.v1beta2.apps", "ssd-monitor")
    assert (ds["apiVersion"], old["apiVersion"]) == ("apps/v1", "apps/v1beta2")
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 1
    assert old["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}


def test_extensions_deployment_gets_the_extensions_defaults(
    applied: dict[str, Any], kubectl: Kubectl
) -> None:
    """extensions/v1beta1: selector from labels, one pod at a time, keep all old ReplicaSets."""
    deploy = kubectl.get_json("deployments.v1.apps", "kubia")
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "kubia"}}
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 1}
    assert deploy["spec"]["revisionHistoryLimit"] == 2**31 - 1
    assert deploy["spec"]["progressDeadlineSeconds"] == 2**31 - 1


def test_patch_in_an_old_version_changes_the_one_object(
    applied: dict[str, Any], kubectl: Kubectl
) -> None:
    """A strategic merge patch through extensions/v1beta1 lands in the apps/v1 object."""
    kubectl("patch", "deployments.v1beta1.extensions", "kubia", "-p", '{"spec":{"replicas":4}}')
    assert kubectl.get_json("deployments.v1.apps", "kubia")["spec"]["replicas"] == 4


def test_apps_v1_stays_the_preferred_version(applied: dict[str, Any], kubectl: Kubectl) -> None:
    """Short names resolve to apps without kubectl warning about another match."""
    result = kubectl("get", "deploy,sts,ds")
    assert "could also match" not in result.stderr
    assert "deprecated" not in result.stderr
    assert re.search(r"^deployment\.apps/kubia ", result.stdout, flags=re.MULTILINE)


def test_upstream_api_versions_serve_only_apps_v1(tmp_path: Path) -> None:
    """--api-versions=upstream serves exactly 1.37's versions: the old manifest is refused."""
    with KajitoriCluster(tmp_path / "c", extra_args=["--api-versions=upstream"]) as upstream:
        versions = upstream.kubectl("api-versions").stdout.split()
        assert "apps/v1" in versions
        assert not {"apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"} & set(versions)
        result = upstream.kubectl(
            f"--cache-dir={tmp_path / 'cache'}",
            "apply",
            "-f",
            "-",
            stdin=KUBIA_STATEFULSET,
            check=False,
        )
        assert result.returncode != 0
        assert 'no matches for kind "StatefulSet" in version "apps/v1beta1"' in result.stderr


def _request(cluster: KajitoriCluster, method: str, path: str) -> tuple[int, bytes]:
    pki = cluster.data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    request = urllib.request.Request(f"{cluster.url}{path}", method=method)
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return response.status, response.read()


def test_watch_in_an_old_version_sends_old_version_objects(
    applied: dict[str, Any], cluster: KajitoriCluster
) -> None:
    """Watch events read through apps/v1beta1 carry apps/v1beta1 objects."""
    status, body = _request(
        cluster,
        "GET",
        "/apis/apps/v1beta1/namespaces/default/statefulsets?watch=1&timeoutSeconds=1",
    )
    events = [json.loads(line) for line in body.splitlines()]
    assert status == 200
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "kubia")]
    assert events[0]["object"]["apiVersion"] == "apps/v1beta1"


def test_delete_in_an_old_version_orphans_by_default(
    applied: dict[str, Any], cluster: KajitoriCluster, kubectl: Kubectl
) -> None:
    """DELETE through extensions/v1beta1 without a policy orphans the pods (upstream's default)."""
    kubectl("apply", "-f", "-", stdin=ORPHANING_REPLICASET)
    uid = kubectl.get_json("replicasets.v1.apps", "orphaning")["metadata"]["uid"]
    pods = _wait_for(lambda: _pods_owned_by(kubectl, uid))
    status, _ = _request(
        cluster, "DELETE", "/apis/extensions/v1beta1/namespaces/default/replicasets/orphaning"
    )
    assert status == 200
    _wait_for(lambda: not _pods_owned_by(kubectl, uid))
    left = {
        p["metadata"]["name"]
        for p in kubectl.get_json("pods", "-l", "app=orphaning")["items"]
        if "deletionTimestamp" not in p["metadata"]
    }
    assert set(pods) <= left


ORPHANING_REPLICASET = """\
apiVersion: extensions/v1beta1
kind: ReplicaSet
metadata:
  name: orphaning
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app: orphaning
    spec:
      containers:
      - name: main
        image: busybox
"""


def _pods_owned_by(kubectl: Kubectl, uid: str) -> list[str]:
    pods = kubectl.get_json("pods", "-l", "app=orphaning")["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if any(o["uid"] == uid for o in p["metadata"].get("ownerReferences") or [])
    ]


def _wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "timed out"
            return value
        time.sleep(0.2)
