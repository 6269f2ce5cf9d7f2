"""The ``clusterTrustBundle`` projected volume source, as upstream's kubelet projects it.

On the node's filesystem through the volume manager (a dict-backed source):
a bundle by name; a signer's bundles matching a label selector, their
certificates de-duplicated into one PEM list (no selector matches nothing);
``optional`` giving an empty file; upstream's FailedMount errors; resync
picking up a changed bundle. Then over HTTPS against a real API server, as
``system:node:n1``: the kubelet's ``ClientObjectSource`` reads bundles the
Node authorizer lets a node read, and the volume holds what the API holds.

Secret-like volumes are tmpfs mounts, so the volume tests need root.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.volumes.fakes import DictSource

from kajitori.auth import pki
from kajitori.client import kubeconfig, rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.kubelet.runtimes.oci import mounts
from kajitori.kubelet.volumes import manager, trust_bundles
from kajitori.kubelet.volumes.errors import VolumeError
from kajitori.kubelet.volumes.source import CLUSTER_TRUST_BUNDLES, ClientObjectSource

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs volumes need root")

Object = dict[str, Any]
SIGNER = "example.com/mesh"
CA_A, CA_B, CA_C = (pki.generate_ca(name).cert_pem.decode() for name in ("ca a", "ca b", "ca c"))


def bundle(name: str, *pems: str, signer: str = "", **labels: str) -> Object:
    spec: Object = {"trustBundle": "".join(pems)}
    if signer:
        spec["signerName"] = signer
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "ClusterTrustBundle",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def pod(*sources: Object) -> Object:
    projected = {"name": "ca", "projected": {"defaultMode": 0o640, "sources": list(sources)}}
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u-1"},
        "spec": {"containers": [{"name": "c"}], "volumes": [projected]},
    }


def certificates(pem: str) -> set[bytes]:
    """The DER certificates of a PEM list (what a TLS client would load)."""
    return set(trust_bundles.pem_blocks(pem))


def der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


@pytest.fixture
def pod_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "pod"
    directory.mkdir()
    yield directory
    mounts.unmount_all(directory)


def volume_files(pod_dir: Path) -> dict[str, str]:
    target = pod_dir / "volumes/kubernetes.io~projected/ca"
    return {p.name: p.read_text() for p in target.iterdir() if not p.name.startswith("..")}


async def test_by_name_and_by_signer_with_a_selector(pod_dir: Path) -> None:
    source = DictSource(
        {
            ("ClusterTrustBundle", "", "named"): bundle("named", CA_A),
            ("ClusterTrustBundle", "", "mesh-1"): bundle(
                "mesh-1", CA_A, CA_B, signer=SIGNER, mesh="yes"
            ),
            ("ClusterTrustBundle", "", "mesh-2"): bundle("mesh-2", CA_B, signer=SIGNER, mesh="yes"),
            ("ClusterTrustBundle", "", "mesh-off"): bundle("mesh-off", CA_C, signer=SIGNER),
            ("ClusterTrustBundle", "", "other"): bundle(
                "other", CA_C, signer="example.com/other", mesh="yes"
            ),
        }
    )
    volumes = manager.VolumeManager(source)
    wanted = pod(
        {"clusterTrustBundle": {"name": "named", "path": "named.pem"}},
        {
            "clusterTrustBundle": {
                "signerName": SIGNER,
                "labelSelector": {"matchLabels": {"mesh": "yes"}},
                "path": "mesh.pem",
            }
        },
        {"clusterTrustBundle": {"signerName": SIGNER, "labelSelector": {}, "path": "all.pem"}},
        # No selector selects nothing: with optional, an empty file.
        {"clusterTrustBundle": {"signerName": SIGNER, "optional": True, "path": "none.pem"}},
        {"clusterTrustBundle": {"name": "absent", "optional": True, "path": "absent.pem"}},
    )
    await volumes.setup(wanted, pod_dir)
    files = volume_files(pod_dir)
    assert files["named.pem"] == CA_A
    # Both bundles' certificates, CA_B once; not the unlabelled nor the other signer's.
    mesh = files["mesh.pem"]
    assert mesh.count("BEGIN CERTIFICATE") == 2
    assert certificates(mesh) == {der(CA_A), der(CA_B)}
    assert certificates(files["all.pem"]) == {der(CA_A), der(CA_B), der(CA_C)}
    assert (files["none.pem"], files["absent.pem"]) == ("", "")
    target = pod_dir / "volumes/kubernetes.io~projected/ca/mesh.pem"
    assert target.stat().st_mode & 0o777 == 0o640
    # The order is this kubelet's own, the same on every write.
    await volumes.resync()
    assert volume_files(pod_dir)["all.pem"] == files["all.pem"]
    # A changed bundle shows up on resync.
    source.objects[("ClusterTrustBundle", "", "named")] = bundle("named", CA_C)
    await volumes.resync()
    assert volume_files(pod_dir)["named.pem"] == CA_C
    await volumes.aclose()


@pytest.mark.parametrize(
    ("projection", "message"),
    [
        (
            {"name": "absent", "path": "x.pem"},
            'while getting ClusterTrustBundle: clustertrustbundle.certificates.k8s.io "absent" '
            "not found",
        ),
        (
            {"signerName": SIGNER, "labelSelector": {"matchLabels": {"no": "match"}}, "path": "x"},
            "combination of signerName and labelSelector matched zero ClusterTrustBundles",
        ),
        (
            {"path": "x"},
            "ClusterTrustBundle projection requires either name or signerName to be set",
        ),
    ],
)
async def test_a_missing_bundle_is_failed_mount(
    pod_dir: Path, projection: Object, message: str
) -> None:
    source = DictSource({})
    volumes = manager.VolumeManager(source)
    broken = pod({"clusterTrustBundle": projection})
    with pytest.raises(VolumeError) as caught:
        await volumes.container_config(broken, {}, pod_dir)
    full = f'MountVolume.SetUp failed for volume "ca" : {message}'
    assert str(caught.value) == full
    assert source.events == [("Warning", "FailedMount", full)]
    await volumes.aclose()


@pytest.fixture
async def node_client(apiserver: APIServerProcess) -> Any:
    """Admin and system:node:n1, both over HTTPS."""
    assert apiserver.pki is not None
    admin_config = kubeconfig.load_kubeconfig(apiserver.config.kubeconfig_path)
    node = pki.issue_client_cert(apiserver.pki.ca, user="system:node:n1", groups=("system:nodes",))
    node_config = kubeconfig.KubeConfig(
        context=admin_config.context,
        server=admin_config.server,
        ca_pem=admin_config.ca_pem,
        client_cert_pem=node.cert_pem,
        client_key_pem=node.key_pem,
    )
    admin = rest.Client.from_kubeconfig(admin_config)
    kubelet = rest.Client.from_kubeconfig(node_config)
    try:
        yield admin, kubelet
    finally:
        await admin.aclose()
        await kubelet.aclose()


async def test_the_kubelet_reads_bundles_through_the_api_as_the_node(
    node_client: Any, pod_dir: Path
) -> None:
    admin, kubelet = node_client
    await admin.create(CLUSTER_TRUST_BUNDLES, bundle("plain", CA_A))
    await admin.create(CLUSTER_TRUST_BUNDLES, bundle("example.com:mesh:one", CA_B, signer=SIGNER))
    source = ClientObjectSource(kubelet, host="n1")
    volumes = manager.VolumeManager(source)
    wanted = pod(
        {"clusterTrustBundle": {"name": "plain", "path": "plain.pem"}},
        {"clusterTrustBundle": {"signerName": SIGNER, "labelSelector": {}, "path": "mesh.pem"}},
    )
    await volumes.setup(wanted, pod_dir)
    assert volume_files(pod_dir) == {"plain.pem": CA_A, "mesh.pem": CA_B}
    assert await source.get_cluster_trust_bundle("absent") is None
    await volumes.aclose()
