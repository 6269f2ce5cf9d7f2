"""The namespace controller, through ``kajitori up`` and the real kubectl."""

from __future__ import annotations

import json

from kajitori.testing.cluster import KajitoriCluster

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: doomed}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"""


def test_deleting_a_namespace_empties_it_and_then_it_disappears(
    cluster: KajitoriCluster,
) -> None:
    """``kubectl delete namespace`` returns once content is gone; then the namespace is NotFound."""
    cluster.kubectl("create", "namespace", "doomed")
    cluster.kubectl("-n", "doomed", "create", "configmap", "cm", "--from-literal=a=b")
    cluster.kubectl("-n", "doomed", "create", "secret", "generic", "s", "--from-literal=a=b")
    cluster.kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    cluster.kubectl("delete", "namespace", "doomed", "--timeout=30s")
    gone = cluster.kubectl("get", "namespace", "doomed", check=False)
    assert gone.returncode == 1
    assert 'namespaces "doomed" not found' in gone.stderr
    for kind in ("configmaps", "secrets", "deployments"):
        listed = cluster.kubectl("get", kind, "-n", "doomed", "-o", "json")
        assert json.loads(listed.stdout)["items"] == []


def test_content_held_by_a_finalizer_keeps_the_namespace_terminating_with_conditions(
    cluster: KajitoriCluster,
) -> None:
    """While a finalizer holds an object, the namespace stays Terminating and says why."""
    cluster.kubectl("create", "namespace", "held")
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        stdin=(
            "apiVersion: v1\nkind: ConfigMap\n"
            "metadata: {name: pinned, namespace: held, finalizers: [example.com/hold]}\n"
        ),
    )
    cluster.kubectl("delete", "namespace", "held", "--wait=false")
    conditions: dict[str, dict[str, str]] = {}
    for _ in range(100):
        namespace = json.loads(cluster.kubectl("get", "ns", "held", "-o", "json").stdout)
        conditions = {c["type"]: c for c in namespace["status"].get("conditions") or []}
        if "NamespaceFinalizersRemaining" in conditions:
            break
    assert namespace["status"]["phase"] == "Terminating"
    assert conditions["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert (
        "configmaps. has 1 resource instances" in conditions["NamespaceContentRemaining"]["message"]
    )
    assert conditions["NamespaceFinalizersRemaining"]["status"] == "True"
    assert (
        "example.com/hold in 1 resource instances"
        in (conditions["NamespaceFinalizersRemaining"]["message"])
    )
    assert conditions["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    cluster.kubectl(
        "-n",
        "held",
        "patch",
        "configmap",
        "pinned",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    cluster.kubectl("wait", "--for=delete", "namespace/held", "--timeout=60s")
