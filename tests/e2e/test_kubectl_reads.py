"""The real kubectl reading the API: get, describe, output formats, discovery, ``--v=8``.

Also the generators that build objects client-side (``create secret``,
``create configmap``), because what they produce is best checked by reading
it back: base64 ``data``, ``binaryData`` for non-UTF-8 files, the secret types.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kajitori.auth import pki
from kajitori.testing.cluster import KajitoriCluster, wait_until

NAMESPACE = "reads"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: reads
  labels: {app: shop, tier: front}
  annotations: {owner: team-a}
spec:
  replicas: 3
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - {name: web, image: "nginx:1.25", ports: [{containerPort: 80}]}
      - {name: cache, image: "redis:7"}
"""


@pytest.fixture(scope="module")
def seeded(cluster: KajitoriCluster) -> KajitoriCluster:
    """A namespace holding one Deployment and two ConfigMaps, read by every test here."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.wait_for_namespace_defaults(NAMESPACE)
    cluster.kubectl("apply", "-f", "-", stdin=DEPLOYMENT)
    for name, tier in (("alpha", "front"), ("beta", "back")):
        cluster.kubectl("create", "configmap", name, "-n", NAMESPACE, f"--from-literal=name={name}")
        cluster.kubectl("label", "configmap", name, "-n", NAMESPACE, f"tier={tier}")
    return cluster


def kubectl_ns(cluster: KajitoriCluster, *args: str) -> str:
    return cluster.kubectl(*args, "-n", NAMESPACE).stdout


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines() if line.strip()]


def test_get_prints_the_servers_table(seeded: KajitoriCluster) -> None:
    """get deployments prints upstream's columns, computed by the server's Table."""
    # The deployment controller brings up 3 updated (not yet available) replicas.
    wait_until(
        lambda: rows(kubectl_ns(seeded, "get", "deployments"))[1][2] == "3",
        what="the deployment controller",
    )
    table = rows(kubectl_ns(seeded, "get", "deployments"))
    assert table[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1][:4] == ["shop", "0/3", "3", "0"]


def test_get_wide_adds_containers_images_selector(seeded: KajitoriCluster) -> None:
    """-o wide adds the priority>0 columns: containers, images, selector."""
    table = rows(kubectl_ns(seeded, "get", "deployment", "shop", "-o", "wide"))
    assert table[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert table[1][-3:] == ["web,cache", "nginx:1.25,redis:7", "app=shop"]


def test_get_with_label_selector_and_show_labels(seeded: KajitoriCluster) -> None:
    """-l filters on the server; --show-labels adds a LABELS column."""
    table = rows(kubectl_ns(seeded, "get", "configmaps", "-l", "tier=back", "--show-labels"))
    assert table[0][-1] == "LABELS"
    assert [r[0] for r in table[1:]] == ["beta"]
    assert table[1][-1] == "tier=back"
    names = kubectl_ns(seeded, "get", "configmaps", "-l", "tier in (front,back)", "-o", "name")
    assert names.split() == ["configmap/alpha", "configmap/beta"]


def test_get_several_kinds_and_all_namespaces(seeded: KajitoriCluster) -> None:
    """get cm,deploy lists both kinds; -A adds the NAMESPACE column across namespaces."""
    names = kubectl_ns(seeded, "get", "configmaps,deployments", "-o", "name").split()
    assert names == [
        "configmap/alpha",
        "configmap/beta",
        "configmap/kube-root-ca.crt",  # published into every namespace, as upstream
        "deployment.apps/shop",
    ]
    everywhere = rows(seeded.kubectl("get", "services", "-A").stdout)
    assert everywhere[0][0] == "NAMESPACE"
    assert ["default", "kubernetes"] == everywhere[1][:2]


def test_get_missing_object_is_not_found(seeded: KajitoriCluster) -> None:
    """get of an absent name exits non-zero with upstream's NotFound message."""
    result = seeded.kubectl("get", "deployment", "nope", "-n", NAMESPACE, check=False)
    assert result.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in result.stderr


@pytest.mark.parametrize(
    ("output", "check"),
    [
        pytest.param("yaml", lambda out: yaml.safe_load(out)["spec"]["replicas"] == 3, id="yaml"),
        pytest.param(
            "json",
            lambda out: json.loads(out)["metadata"]["annotations"]["owner"] == "team-a",
            id="json",
        ),
        pytest.param(
            "jsonpath={.spec.template.spec.containers[*].name}",
            lambda out: out == "web cache",
            id="jsonpath",
        ),
        pytest.param(
            "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,TIER:.metadata.labels.tier",
            lambda out: rows(out) == [["NAME", "REPLICAS", "TIER"], ["shop", "3", "front"]],
            id="custom-columns",
        ),
        pytest.param("name", lambda out: out.strip() == "deployment.apps/shop", id="name"),
    ],
)
def test_get_output_formats(seeded: KajitoriCluster, output: str, check: Any) -> None:
    """-o yaml|json|jsonpath|custom-columns|name render the stored object."""
    out = kubectl_ns(seeded, "get", "deployment", "shop", "-o", output)
    assert check(out), out


def test_get_yaml_shows_server_set_fields(seeded: KajitoriCluster) -> None:
    """The YAML has defaults and system metadata the server filled in."""
    obj = yaml.safe_load(kubectl_ns(seeded, "get", "deployment", "shop", "-o", "yaml"))
    assert obj["apiVersion"] == "apps/v1"
    assert obj["kind"] == "Deployment"
    assert obj["metadata"]["generation"] == 1
    assert obj["metadata"]["uid"]
    assert int(obj["metadata"]["resourceVersion"]) > 0
    assert obj["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_describe_deployment(seeded: KajitoriCluster) -> None:
    """describe shows labels, annotations, replicas and each container's image."""
    wait_until(
        lambda: (
            seeded.get_json("deployment", "shop", "-n", NAMESPACE).get("status", {}).get("replicas")
            == 3
        ),
        what="the deployment controller",
    )
    out = kubectl_ns(seeded, "describe", "deployment", "shop")
    lines = out.splitlines()
    assert lines[0].split() == ["Name:", "shop"]
    assert "Namespace:              reads" in out
    # The controller adds deployment.kubernetes.io/revision beside ours.
    assert re.search(r"^Annotations:\s+(.*\n\s+)*owner: team-a$", out, re.MULTILINE)
    assert "Replicas:               3 desired | 3 updated | 3 total" in out
    assert "StrategyType:           RollingUpdate" in out
    images = re.findall(r"^\s+Image:\s+(\S+)$", out, flags=re.MULTILINE)
    assert images == ["nginx:1.25", "redis:7"]


def test_describe_secret_shows_sizes_not_values(seeded: KajitoriCluster) -> None:
    """describe secret lists keys with byte counts and never prints the value."""
    seeded.kubectl(
        "create",
        "secret",
        "generic",
        "described",
        "-n",
        NAMESPACE,
        "--from-literal=password=s3cr3t!",
    )
    out = kubectl_ns(seeded, "describe", "secret", "described")
    assert "Type:  Opaque" in out
    assert "password:  7 bytes" in out
    assert "s3cr3t" not in out


def test_api_resources_table(seeded: KajitoriCluster) -> None:
    """api-resources lists kinds with group/version, scope and short names."""
    table = rows(seeded.kubectl("api-resources").stdout)
    assert table[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {r[0]: r for r in table[1:] if len(r) == 5}
    assert by_name["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert by_name["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    namespaced = seeded.kubectl("api-resources", "--namespaced=false", "-o", "name").stdout
    assert "namespaces" in namespaced.split()
    assert "pods" not in namespaced.split()


def test_api_resources_filters_by_group(seeded: KajitoriCluster) -> None:
    """api-resources --api-group=apps lists only the apps resources."""
    names = seeded.kubectl("api-resources", "--api-group=apps", "-o", "name").stdout.split()
    assert "deployments.apps" in names
    assert "statefulsets.apps" in names
    assert all(name.endswith(".apps") for name in names)


def test_api_versions(seeded: KajitoriCluster) -> None:
    """api-versions lists every served group/version, one per line, sorted."""
    versions = seeded.kubectl("api-versions").stdout.split()
    assert versions == sorted(versions)
    for gv in ("v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1", "policy/v1"):
        assert gv in versions


def test_verbose_8_shows_rest_requests_and_200(seeded: KajitoriCluster) -> None:
    """kubectl --v=8 logs each REST request with its URL and the 200 OK answer."""
    result = seeded.kubectl("--v=8", "get", "pods")
    log = result.stderr
    assert f'"Request" verb="GET" url="{seeded.url}/api/v1/namespaces/default/pods?limit=500"' in (
        log
    )
    assert '"Response" status="200 OK"' in log
    assert "Content-Type: application/json;as=Table;v=v1;g=meta.k8s.io" in log
    assert '"Response Body" body="{\\"kind\\":\\"Table\\"' in log


def test_create_secret_generic(seeded: KajitoriCluster, tmp_path: Path) -> None:
    """create secret generic from literal and file stores base64 data, type Opaque."""
    key_file = tmp_path / "ssh-key"
    key_file.write_bytes(b"\x00\x01binary\xff")
    seeded.kubectl(
        "create",
        "secret",
        "generic",
        "my-secret",
        "-n",
        NAMESPACE,
        "--from-literal=password=hunter2",
        f"--from-file={key_file}",
    )
    secret = seeded.get_json("secret", "my-secret", "-n", NAMESPACE)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
    assert base64.b64decode(secret["data"]["ssh-key"]) == b"\x00\x01binary\xff"


def test_create_secret_tls(seeded: KajitoriCluster, tmp_path: Path) -> None:
    """create secret tls stores the PEM pair as tls.crt and tls.key, type kubernetes.io/tls."""
    pair = pki.issue_serving_cert(pki.generate_ca(), dns_names=["fortune"], ip_addresses=[])
    (tmp_path / "tls.crt").write_bytes(pair.cert_pem)
    (tmp_path / "tls.key").write_bytes(pair.key_pem)
    seeded.kubectl(
        "create",
        "secret",
        "tls",
        "fortune-https",
        "-n",
        NAMESPACE,
        f"--cert={tmp_path / 'tls.crt'}",
        f"--key={tmp_path / 'tls.key'}",
    )
    secret = seeded.get_json("secret", "fortune-https", "-n", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == pair.cert_pem
    assert base64.b64decode(secret["data"]["tls.key"]) == pair.key_pem
    table = rows(kubectl_ns(seeded, "get", "secret", "fortune-https"))
    assert table[1][:3] == ["fortune-https", "kubernetes.io/tls", "2"]


def test_create_secret_docker_registry(seeded: KajitoriCluster) -> None:
    """create secret docker-registry stores a .dockerconfigjson with the credentials."""
    seeded.kubectl(
        "create",
        "secret",
        "docker-registry",
        "mydockerhubsecret",
        "-n",
        NAMESPACE,
        "--docker-username=myusername",
        "--docker-password=mypassword",
        "--docker-email=my.email@provider.com",
    )
    secret = seeded.get_json("secret", "mydockerhubsecret", "-n", NAMESPACE)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["https://index.docker.io/v1/"]
    assert entry["username"] == "myusername"
    assert entry["email"] == "my.email@provider.com"
    assert base64.b64decode(entry["auth"]) == b"myusername:mypassword"


def test_create_configmap_from_literal_file_and_binary(
    seeded: KajitoriCluster, tmp_path: Path
) -> None:
    """create configmap puts literals and text files in data, non-UTF-8 files in binaryData."""
    (tmp_path / "app.properties").write_text("color=blue\nsize=3\n")
    blob = bytes(range(256))
    (tmp_path / "logo.bin").write_bytes(blob)
    seeded.kubectl(
        "create",
        "configmap",
        "mixed",
        "-n",
        NAMESPACE,
        "--from-literal=mode=fast",
        f"--from-file={tmp_path / 'app.properties'}",
        f"--from-file=logo={tmp_path / 'logo.bin'}",
    )
    cm = seeded.get_json("configmap", "mixed", "-n", NAMESPACE)
    assert cm["data"] == {"mode": "fast", "app.properties": "color=blue\nsize=3\n"}
    assert base64.b64decode(cm["binaryData"]["logo"]) == blob
    table = rows(kubectl_ns(seeded, "get", "configmap", "mixed"))
    assert table[1][:2] == ["mixed", "3"]
