"""The study note end to end on real containers, driven with the real kubectl only.

One ``kajitori up --runtime oci --nodes 2`` cluster runs the note's
manifests (kept in test_kubectl_study_note.py and test_seed_manifests_e2e.py)
under runc, with their images swapped for ones this test builds from
Debian packages (busybox-static; curl with its libraries) and pushes to a
private registry it starts (Debian's docker-registry, htpasswd over TLS).
The kubelets trust that registry's CA through ``<data-dir>/certs.d/<host:port>/ca.crt``
(decision 0032) and pull every image from it, so each pod names a pull
Secret. Nothing is downloaded.

What the note does, in order: a Secret in a container's environment and
under a ``mountPath``; ``ls`` of the service-account directory and
``env | grep KUBERNETES_SERVICE`` through ``kubectl exec``; a private image
pulled with ``imagePullSecrets`` and refused without them; the StatefulSet
keeping its data when its pod is deleted; the DaemonSet on each node labelled
``disk=ssd``; and, from inside a pod, the API with the mounted token and CA:
403 with upstream's message, then 200 after a RoleBinding.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from tests.e2e import test_seed_manifests_e2e as seed
from tests.e2e.test_kubectl_study_note import FORTUNE_ENV, FORTUNE_HTTPS, PRIVATE_POD
from tests.e2e.test_seed_manifests_e2e import KUBIA_STATEFULSET, SSD_MONITOR_DAEMONSET
from tests.kubelet.runtimes.oci import helpers

from kajitori.auth import pki
from kajitori.kubelet.runtimes.oci import mounts
from kajitori.testing import images
from kajitori.testing import registry as test_registry
from kajitori.testing.cluster import KajitoriCluster, wait_until

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]
NODES = ("kajitori-worker", "kajitori-worker2")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
PULL_SECRET = "regcred"
# Containers stay up until asked to stop, and stop at once (the note's images are servers).
SERVE = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[test_registry.Registry]:
    """Debian's docker-registry, htpasswd over TLS, holding the images the pods run."""
    reason = test_registry.available() or (
        None if shutil.which("curl") else "curl is not installed (scripts/install-test-deps)"
    )
    if reason:
        pytest.skip(reason)
    with test_registry.Registry.start(tmp_path_factory.mktemp("registry")) as running:
        running.push("study/busybox", "1.0", images.busybox_image())
        # Its own repository, pulled by no other pod: the node must not have it already.
        running.push("study/private", "tag", images.busybox_image(env=["PRIVATE=1"]))
        running.push("study/curl", "1.0", images.curl_image())
        yield running


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, private_registry: test_registry.Registry
) -> Iterator[KajitoriCluster]:
    """``kajitori up --runtime oci --nodes 2`` trusting the registry's CA through certs.d."""
    base = tmp_path_factory.mktemp("study-note-oci")
    data = base / "data"
    trust = data / "certs.d" / private_registry.host
    trust.mkdir(parents=True)
    shutil.copyfile(private_registry.certs.ca_file, trust / "ca.crt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAJITORI_OCI_ROOT", str(base / "oci"))
        patch.delenv("KAJITORI_OCI_IMAGES", raising=False)  # pull from the registry
        with KajitoriCluster(
            data, extra_args=("--nodes=2", "--runtime=oci", *_own_network())
        ) as running:
            running.wait_for_namespace_defaults("default")
            yield running
            # Containers outlive a kubelet that stops (as upstream's): remove them first.
            running.kubectl("delete", "statefulsets,daemonsets,pods", "--all", "--wait=false")
            wait_until(lambda: not _live_pods(running), timeout=60, what="every pod gone")
    assert mounts.mounts_under(base / "oci") == []


def _live_pods(cluster: KajitoriCluster) -> list[str]:
    return cluster.kubectl("get", "pods", "-o", "name").stdout.split()


def _own_network() -> list[str]:
    """A cluster name and node network of our own: other tests run clusters at the same time."""
    suffix = secrets.token_hex(3)
    return [f"--cluster-name=study-{suffix}", f"--node-cidr=172.29.{int(suffix[:2], 16)}.0/24"]


@pytest.fixture(scope="module")
def kubectl(cluster: KajitoriCluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(cluster, tmp_path_factory.mktemp("kubectl-cache"))


class Kubectl(seed.Kubectl):
    """test_seed_manifests_e2e's kubectl helper, with exec and wait."""

    def exec(self, pod: str, *command: str) -> str:
        return self("exec", pod, "--", *command).stdout

    def wait_ready(self, *what: str, timeout: int = 50) -> None:
        """``kubectl wait --for=condition=Ready``; on failure the assertion shows describe."""
        result = self("wait", "--for=condition=Ready", f"--timeout={timeout}s", *what, check=False)
        if result.returncode != 0:
            described = self("describe", *what, check=False).stdout
            raise AssertionError(f"{' '.join(what)} not Ready: {result.stderr}\n{described}")


@pytest.fixture(scope="module")
def note_secrets(
    kubectl: Kubectl,
    private_registry: test_registry.Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Object:
    """The note's ``kubectl create secret`` commands, the docker-registry one for our registry."""
    kubectl("create", "secret", "generic", "my-secret", "--from-literal=password=p4ss")
    pair = pki.issue_serving_cert(pki.generate_ca(), dns_names=["fortune"], ip_addresses=[])
    certs = tmp_path_factory.mktemp("certs")
    (certs / "https.cert").write_bytes(pair.cert_pem)
    (certs / "https.key").write_bytes(pair.key_pem)
    kubectl(
        "create",
        "secret",
        "tls",
        "fortune-https",
        f"--cert={certs / 'https.cert'}",
        f"--key={certs / 'https.key'}",
    )
    for name in ("mydockerhubsecret", PULL_SECRET):
        kubectl(
            "create",
            "secret",
            "docker-registry",
            name,
            f"--docker-server={private_registry.host}",
            f"--docker-username={private_registry.username}",
            f"--docker-password={private_registry.password}",
            "--docker-email=my.email@provider.com",
        )
    return {"tls.crt": pair.cert_pem.decode(), "tls.key": pair.key_pem.decode()}


def on_cluster(
    manifest: str,
    image: str,
    *,
    command: list[str] | None = SERVE,
    pull_secret: str | None = PULL_SECRET,
    name: str | None = None,
) -> str:
    """The note's ``manifest`` with our ``image`` (and a command for it) and a pull Secret.

    Everything else stays as the note wrote it; a manifest that already names
    ``imagePullSecrets`` keeps them, ``pull_secret=None`` removes them.
    """
    document = yaml.safe_load(manifest)
    if name is not None:
        document["metadata"]["name"] = name
    spec = document["spec"]
    pod_spec = spec["template"]["spec"] if "template" in spec else spec
    for container in pod_spec["containers"]:
        container["image"] = image
        if command is not None:
            container["command"] = command
    if pull_secret is None:
        pod_spec.pop("imagePullSecrets", None)
    else:
        pod_spec.setdefault("imagePullSecrets", [{"name": pull_secret}])
    return yaml.safe_dump(document, sort_keys=False)


def image(registry: test_registry.Registry, repository: str, tag: str = "1.0") -> str:
    return f"{registry.host}/{repository}:{tag}"


def events_of(kubectl: Kubectl, name: str) -> list[tuple[str, str]]:
    found = kubectl.get_json("events", "--field-selector", f"involvedObject.name={name}")
    return [(e["reason"], e["message"]) for e in found["items"]]


# Secrets in the environment and under a mountPath -----------------------------------


@pytest.fixture(scope="module")
def fortune_env(
    kubectl: Kubectl, note_secrets: Object, private_registry: test_registry.Registry
) -> str:
    """The note's fortune-env Pod, running busybox from the private registry."""
    kubectl(
        "apply", "-f", "-", stdin=on_cluster(FORTUNE_ENV, image(private_registry, "study/busybox"))
    )
    kubectl.wait_ready("pod/fortune-env")
    return "fortune-env"


def test_a_secret_key_ref_reaches_the_container_environment(
    kubectl: Kubectl, fortune_env: str
) -> None:
    """MY_PASSWORD_SECRET holds the Secret's value inside the running container."""
    assert kubectl.exec(fortune_env, "sh", "-c", "echo $MY_PASSWORD_SECRET") == "p4ss\n"


def test_a_secret_volume_is_under_its_mount_path(
    kubectl: Kubectl, note_secrets: Object, private_registry: test_registry.Registry
) -> None:
    """fortune-https sees the TLS Secret's two keys under /etc/nginx/certs/, read-only."""
    manifest = on_cluster(FORTUNE_HTTPS, image(private_registry, "study/busybox"))
    kubectl("apply", "-f", "-", stdin=manifest)
    kubectl.wait_ready("pod/fortune-https")
    assert kubectl.exec("fortune-https", "ls", "/etc/nginx/certs/").split() == [
        "tls.crt",
        "tls.key",
    ]
    for key, value in note_secrets.items():
        assert kubectl.exec("fortune-https", "cat", f"/etc/nginx/certs/{key}") == value
    refused = kubectl(
        "exec", "fortune-https", "--", "sh", "-c", "echo x > /etc/nginx/certs/tls.crt", check=False
    )
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr


def test_the_service_account_directory_holds_ca_namespace_and_token(
    kubectl: Kubectl, fortune_env: str
) -> None:
    """``ls /var/run/secrets/kubernetes.io/serviceaccount/`` prints the note's three names."""
    assert kubectl.exec(fortune_env, "ls", f"{SA_DIR}/") == "ca.crt\nnamespace\ntoken\n"
    assert kubectl.exec(fortune_env, "cat", f"{SA_DIR}/namespace") == "default"
    root_ca = kubectl.get_json("configmap", "kube-root-ca.crt")["data"]["ca.crt"]
    assert kubectl.exec(fortune_env, "cat", f"{SA_DIR}/ca.crt") == root_ca
    token = kubectl.exec(fortune_env, "cat", f"{SA_DIR}/token")
    assert token.count(".") == 2  # a JWT


def test_env_grep_kubernetes_service(kubectl: Kubectl, fortune_env: str) -> None:
    """``env | grep KUBERNETES_SERVICE``: the kubernetes Service's address, as upstream injects."""
    found = kubectl.exec(fortune_env, "sh", "-c", "env | grep KUBERNETES_SERVICE")
    assert sorted(found.split()) == [
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
        "KUBERNETES_SERVICE_PORT=443",
        "KUBERNETES_SERVICE_PORT_HTTPS=443",
    ]


# A private image ---------------------------------------------------------------------


def test_a_private_image_needs_its_image_pull_secrets(
    kubectl: Kubectl, note_secrets: Object, private_registry: test_registry.Registry
) -> None:
    """Without imagePullSecrets: ErrImagePull with upstream's events; with them: Running."""
    private = image(private_registry, "study/private", "tag")
    refused = on_cluster(PRIVATE_POD, private, pull_secret=None, name="no-pull-secret")
    kubectl("apply", "-f", "-", stdin=refused)
    why = (
        f'failed to pull and unpack image "{private}": failed to resolve reference "{private}": '
        "pull access denied, repository does not exist or may require authorization: "
        "authorization failed: no basic auth credentials"
    )

    def failed() -> bool:
        return ("Failed", "Error: ErrImagePull") in events_of(kubectl, "no-pull-secret")

    wait_until(failed, timeout=60, what="ErrImagePull event")
    events = events_of(kubectl, "no-pull-secret")
    assert ("Pulling", f'Pulling image "{private}"') in events
    assert ("Failed", f'Failed to pull image "{private}": {why}') in events
    (status,) = kubectl.get_json("pod", "no-pull-secret")["status"]["containerStatuses"]
    waiting = status["state"]["waiting"]
    assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert waiting["message"].endswith(why)
    listed = kubectl("get", "pod", "no-pull-secret", "--no-headers").stdout.split()
    assert listed[2] in ("ErrImagePull", "ImagePullBackOff")

    # The note's private-pod, its imagePullSecrets kept: the same image pulls and runs.
    kubectl("apply", "-f", "-", stdin=on_cluster(PRIVATE_POD, private))
    kubectl.wait_ready("pod/private-pod")
    assert kubectl.exec("private-pod", "sh", "-c", "echo $PRIVATE") == "1\n"
    pulled = events_of(kubectl, "private-pod")
    assert [reason for reason, _ in pulled[:3]] == ["Scheduled", "Pulling", "Pulled"]
    assert pulled[2][1].startswith(f'Successfully pulled image "{private}" in ')
    kubectl("delete", "pod", "no-pull-secret", "private-pod", "--wait=false")


# The StatefulSet and the DaemonSet ------------------------------------------------------


def test_the_statefulset_keeps_its_data_across_pod_deletion(
    kubectl: Kubectl, note_secrets: Object, private_registry: test_registry.Registry
) -> None:
    """kubia-0 writes to its claim; deleted, it comes back with the same claim and file."""
    manifest = on_cluster(KUBIA_STATEFULSET, image(private_registry, "study/busybox"))
    kubectl("apply", "-f", "-", stdin=manifest)
    wait_until(lambda: _exists(kubectl, "pod/kubia-1"), timeout=60, what="kubia-1")
    kubectl.wait_ready("pod/kubia-0", "pod/kubia-1")
    first = kubectl.get_json("pod", "kubia-0")
    claim = kubectl.get_json("pvc", "data-kubia-0")
    assert claim["status"]["phase"] == "Bound"
    kubectl.exec("kubia-0", "sh", "-c", "echo written by $(hostname) > /var/data/kubia.txt")

    kubectl("delete", "pod", "kubia-0")

    def recreated() -> bool:
        pod = _get(kubectl, "pod/kubia-0")
        return pod is not None and pod["metadata"]["uid"] != first["metadata"]["uid"]

    wait_until(recreated, timeout=60, what="kubia-0 recreated")
    kubectl.wait_ready("pod/kubia-0")
    again = kubectl.get_json("pod", "kubia-0")
    # The local-path volume lives on one node: the new pod is scheduled there too.
    assert again["spec"]["nodeName"] == first["spec"]["nodeName"]
    assert kubectl.get_json("pvc", "data-kubia-0")["metadata"]["uid"] == claim["metadata"]["uid"]
    assert kubectl.exec("kubia-0", "cat", "/var/data/kubia.txt") == "written by kubia-0\n"
    assert kubectl.exec("kubia-1", "ls", "/var/data/") == ""  # each pod its own claim


def test_the_daemonset_runs_on_each_labelled_node(
    kubectl: Kubectl, note_secrets: Object, private_registry: test_registry.Registry
) -> None:
    """ssd-monitor runs only where disk=ssd, one pod per labelled node, as nodes get the label."""
    manifest = on_cluster(SSD_MONITOR_DAEMONSET, image(private_registry, "study/busybox"))
    kubectl("apply", "-f", "-", stdin=manifest)
    assert _monitor_nodes(kubectl) == []
    for labelled in range(1, len(NODES) + 1):
        kubectl("label", "node", NODES[labelled - 1], "disk=ssd")
        expected = sorted(NODES[:labelled])
        wait_until(
            lambda expected=expected: _monitor_nodes(kubectl) == expected,  # type: ignore[misc]
            timeout=60,
            what=f"ssd-monitor on {expected}",
        )
        kubectl.wait_ready("pod", "-l", "app=ssd-monitor")
    kubectl("label", "node", NODES[0], "disk-")
    wait_until(lambda: _monitor_nodes(kubectl) == [NODES[1]], timeout=60, what="unlabelled")


def _monitor_nodes(kubectl: Kubectl) -> list[str]:
    pods = kubectl.get_json("pods", "-l", "app=ssd-monitor")["items"]
    live = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
    return sorted(p["spec"]["nodeName"] for p in live)


def _get(kubectl: Kubectl, what: str) -> Object | None:
    result = kubectl("get", what, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _exists(kubectl: Kubectl, what: str) -> bool:
    return _get(kubectl, what) is not None


# From inside a pod: the API with the mounted token and CA --------------------------------

# The note's commands, as typed in the pod's shell; curl adds the status code on a last line.
NOTE_CURL = """\
export CURL_CA_BUNDLE=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt
export TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)
curl -sS -w '\\n%{{http_code}}' -H "Authorization: Bearer $TOKEN" {url}/api/v1/namespaces/default/pods
"""
API_URLS = ("https://10.96.0.1:443", "https://kubernetes")
FORBIDDEN = (
    'pods is forbidden: User "system:serviceaccount:default:default" cannot list resource '
    '"pods" in API group "" in the namespace "default"'
)


def curl_from(kubectl: Kubectl, pod: str, url: str) -> tuple[int, Object]:
    output = kubectl.exec(pod, "sh", "-c", NOTE_CURL.format(url=url))
    body, _, code = output.rpartition("\n")
    return int(code), json.loads(body)


def test_the_api_answers_a_pod_403_then_200_after_a_role_binding(
    kubectl: Kubectl, note_secrets: Object, private_registry: test_registry.Registry
) -> None:
    """The default ServiceAccount may not list pods until ``view`` is bound to it."""
    manifest = on_cluster(FORTUNE_ENV, image(private_registry, "study/curl"), name="curl")
    kubectl("apply", "-f", "-", stdin=manifest)
    kubectl.wait_ready("pod/curl")
    for url in API_URLS:
        code, status = curl_from(kubectl, "curl", url)
        assert (code, status["kind"], status["reason"]) == (403, "Status", "Forbidden"), url
        assert status["message"] == FORBIDDEN
        assert status["details"] == {"kind": "pods"}

    kubectl(
        "create",
        "rolebinding",
        "default-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    )
    for url in API_URLS:
        # RBAC answers from a watch cache: the binding counts once the authorizer saw it.
        wait_until(lambda url=url: curl_from(kubectl, "curl", url)[0] == 200, what=url)  # type: ignore[misc]
        code, pods = curl_from(kubectl, "curl", url)
        assert (code, pods["kind"]) == (200, "PodList")
        assert "curl" in {p["metadata"]["name"] for p in pods["items"]}
