"""The kube-apiserver serving CA publisher, run as its own kube-system ServiceAccount.

It publishes the cluster CA (which signs the API server's serving
certificate) as the one ClusterTrustBundle of
``kubernetes.io/kube-apiserver-serving``, named after the bundle's hash,
removes any other bundle of that signer and puts back a changed bundle. The
ServiceAccount's role must allow all of it, ``attest`` on the signer
included (ClusterTrustBundleAttest).
"""

from __future__ import annotations

from tests.controllers.conftest import StartControllers, eventually
from tests.registry.certificates import pki

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import clustertrustbundle_publisher as publisher

NAME = "kube-apiserver-serving-clustertrustbundle-publisher-controller"
Object = dict[str, object]


def test_the_name_is_the_signer_and_twelve_bytes_of_the_hash() -> None:
    name = publisher.bundle_name(publisher.SIGNER, b"abc")
    # sha256("abc") starts ba7816bf8f01cfea414140de...
    assert name == "kubernetes.io:kube-apiserver-serving:ba7816bf8f01cfea414140de"


async def signer_bundles(admin: rest.Client) -> dict[str, str]:
    listed = await admin.list(publisher.BUNDLES)
    return {
        b["metadata"]["name"]: b["spec"]["trustBundle"]
        for b in listed["items"]
        if b["spec"].get("signerName") == publisher.SIGNER
    }


async def test_publishes_the_serving_ca_and_keeps_it_the_only_bundle(
    apiserver: APIServerProcess, admin: rest.Client, start_controllers: StartControllers
) -> None:
    assert apiserver.pki is not None
    ca_pem = apiserver.pki.ca.cert_pem
    expected = {publisher.bundle_name(publisher.SIGNER, ca_pem): ca_pem.decode()}
    stray = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "ClusterTrustBundle",
        "metadata": {"name": "kubernetes.io:kube-apiserver-serving:old"},
        "spec": {
            "signerName": publisher.SIGNER,
            "trustBundle": pki.pem(pki.certificate("old ca")[0]),
        },
    }
    await admin.create(publisher.BUNDLES, stray)
    await start_controllers(NAME)

    async def published() -> bool:
        return await signer_bundles(admin) == expected

    await eventually(published)
    (name,) = expected
    await admin.patch(
        publisher.BUNDLES, name, {"spec": {"trustBundle": pki.pem(pki.certificate("x")[0])}}
    )
    await eventually(published)
    await admin.create(publisher.BUNDLES, stray)
    await eventually(published)
