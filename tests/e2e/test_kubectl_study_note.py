"""The Pod manifests of a Japanese "Kubernetes in Action" study note, applied unchanged.

The note shows three Pods that use Secrets three ways: an env var from a
``secretKeyRef``, a ``secret`` volume, and ``imagePullSecrets``, together
with the ``kubectl create secret generic|tls|docker-registry`` commands that
make those secrets. The manifests are kept here byte for byte as printed
(comment included); when the note itself is on disk
(``/work/shared/seed/*.txt``) a test checks that they still match it. Its
StatefulSet (apps/v1beta1) and DaemonSet (apps/v1beta2) are later work.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kajitori.auth import pki
from kajitori.testing.cluster import KajitoriCluster

SEED_DIR = Path("/work/shared/seed")

FORTUNE_ENV = """\
apiVersion: v1
kind: Pod
metadata:
  name: fortune-env
spec:
  containers:
  - image: luksa/fortune:env
    name: html-generator
    env:
    - name: MY_PASSWORD_SECRET
      valueFrom:
        secretKeyRef: # configMapを環境変数に使う場合はここが`configMapKeyRef`になる
          name: my-secret
          key: password
"""

FORTUNE_HTTPS = """\
apiVersion: v1
kind: Pod
metadata:
  name: fortune-https
spec:
  containers:
  - image: nginx:alpine
    name: web-server
    volumeMounts:
    - name: certs
      mountPath: /etc/nginx/certs/
  volumes:
  - name: certs
    secret:
      secretName: fortune-https
"""

PRIVATE_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: private-pod
spec:
  imagePullSecrets:
  - name: mydockerhubsecret
  containers:
  - image: username/private:tag
    name: main
"""

NOTE_PODS = {
    "fortune-env": FORTUNE_ENV,
    "fortune-https": FORTUNE_HTTPS,
    "private-pod": PRIVATE_POD,
}

_TOP_LEVEL_KEY = re.compile(r"^[A-Za-z]+:( |$)")


def manifests_in(text: str) -> list[str]:
    """YAML documents in prose: from an ``apiVersion:`` line to the first line of prose."""
    found: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("apiVersion:"):
            if current:
                found.append("\n".join(current).rstrip() + "\n")
            current = [line]
        elif current is not None:
            if not line.strip() or line[0] in " \t-" or _TOP_LEVEL_KEY.match(line):
                current.append(line)
            else:
                found.append("\n".join(current).rstrip() + "\n")
                current = None
    if current:
        found.append("\n".join(current).rstrip() + "\n")
    return found


@pytest.fixture(scope="module")
def note_secrets(cluster: KajitoriCluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The secrets the note's Pods refer to, made with the note's kubectl commands."""
    cluster.kubectl("create", "secret", "generic", "my-secret", "--from-literal=password=p4ss")
    pair = pki.issue_serving_cert(pki.generate_ca(), dns_names=["fortune"], ip_addresses=[])
    certs = tmp_path_factory.mktemp("certs")
    (certs / "https.cert").write_bytes(pair.cert_pem)
    (certs / "https.key").write_bytes(pair.key_pem)
    cluster.kubectl(
        "create",
        "secret",
        "tls",
        "fortune-https",
        f"--cert={certs / 'https.cert'}",
        f"--key={certs / 'https.key'}",
    )
    cluster.kubectl(
        "create",
        "secret",
        "docker-registry",
        "mydockerhubsecret",
        "--docker-username=myusername",
        "--docker-password=mypassword",
        "--docker-email=my.email@provider.com",
    )


@pytest.mark.skipif(not SEED_DIR.is_dir(), reason="the study note is not on this machine")
def test_embedded_manifests_match_the_note() -> None:
    """The three Pod manifests here are exactly the ones in the note."""
    (note,) = SEED_DIR.glob("*.txt")
    manifests = manifests_in(note.read_text())
    kinds = [re.findall(r"^kind: (\w+)$", m, flags=re.MULTILINE) for m in manifests]
    assert kinds == [["Pod"], ["Pod"], ["Pod"], ["StatefulSet"], ["DaemonSet"]]
    assert manifests[:3] == [FORTUNE_ENV, FORTUNE_HTTPS, PRIVATE_POD]


@pytest.mark.parametrize("name", list(NOTE_PODS))
def test_note_pod_applies_unchanged(
    cluster: KajitoriCluster, note_secrets: None, tmp_path: Path, name: str
) -> None:
    """kubectl apply -f creates the Pod; applying the same file again changes nothing.

    kubectl itself computes the re-apply patch. For a Pod with volumes it
    includes ordering directives for the lists the ServiceAccount admission
    extended (the kube-api-access volume and mounts), so it reports
    "configured", as against upstream; the stored spec stays the same.
    """
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(NOTE_PODS[name])
    assert cluster.kubectl("apply", "-f", str(manifest)).stdout.strip() == f"pod/{name} created"
    before = cluster.get_json("pod", name)
    again = cluster.kubectl("apply", "-f", str(manifest)).stdout.strip()
    expected = "configured" if name == "fortune-https" else "unchanged"
    assert again == f"pod/{name} {expected}"
    assert cluster.get_json("pod", name)["spec"] == before["spec"]
    pod = cluster.get_json("pod", name)
    assert pod["status"]["phase"] == "Pending"
    assert pod["spec"]["restartPolicy"] == "Always"


def test_secret_key_ref_env_is_stored_and_described(
    cluster: KajitoriCluster, note_secrets: None
) -> None:
    """fortune-env keeps its secretKeyRef; describe shows where the value comes from."""
    cluster.kubectl("apply", "-f", "-", stdin=FORTUNE_ENV)
    (container,) = cluster.get_json("pod", "fortune-env")["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "MY_PASSWORD_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "my-secret", "key": "password"}},
        }
    ]
    described = cluster.kubectl("describe", "pod", "fortune-env").stdout
    assert "MY_PASSWORD_SECRET:  <set to the key 'password' in secret 'my-secret'>" in described


def test_secret_volume_gets_default_mode(cluster: KajitoriCluster, note_secrets: None) -> None:
    """fortune-https's secret volume is stored with defaultMode 0644 (420), as upstream defaults."""
    cluster.kubectl("apply", "-f", "-", stdin=FORTUNE_HTTPS)
    pod = cluster.get_json("pod", "fortune-https")
    certs, token = pod["spec"]["volumes"]
    assert certs == {"name": "certs", "secret": {"secretName": "fortune-https", "defaultMode": 420}}
    # The ServiceAccount admission adds the API access volume, as upstream.
    assert token["name"].startswith("kube-api-access-")
    (container,) = pod["spec"]["containers"]
    assert container["volumeMounts"][0] == {"name": "certs", "mountPath": "/etc/nginx/certs/"}
    assert (
        container["volumeMounts"][1]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    )
    described = cluster.kubectl("describe", "pod", "fortune-https").stdout
    assert re.search(r"Type:\s+Secret \(a volume populated by a Secret\)", described)
    assert re.search(r"SecretName:\s+fortune-https", described)


def test_image_pull_secrets_are_stored(cluster: KajitoriCluster, note_secrets: None) -> None:
    """private-pod keeps imagePullSecrets, naming the docker-registry secret."""
    cluster.kubectl("apply", "-f", "-", stdin=PRIVATE_POD)
    pod = cluster.get_json("pod", "private-pod")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "mydockerhubsecret"}]
    secret = cluster.get_json("secret", "mydockerhubsecret")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
