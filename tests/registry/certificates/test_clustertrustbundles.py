"""certificates.k8s.io/v1 ClusterTrustBundles (GA in 1.37) as upstream serves them.

In-process cluster over HTTPS, the official client and the real kubectl:
discovery, CRUD, the NAME SIGNERNAME table and the ``spec.signerName``
field selector, each of upstream's trust-bundle and name rules as a 422
with its exact cause, signerName immutability, and the
ClusterTrustBundleAttest admission plugin (``attest`` on the signer).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from tests.registry.certificates import pki
from tests.registry.kind_checks import api_resource_row, causes, columns, refused, rows

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
CA_1 = pki.pem(pki.certificate("ca one")[0])
CA_2 = pki.pem(pki.certificate("ca two")[0])
LEAF = pki.pem(pki.certificate("leaf", ca=False)[0])
NO_CONSTRAINTS = pki.pem(pki.certificate("bare", constraints=False)[0])


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def certs(cluster: InProcessCluster) -> Iterator[client.CertificatesV1Api]:
    api = cluster.api_client()
    yield client.CertificatesV1Api(api)
    api.close()


def ctb(name: str, bundle: str = CA_1, signer: str = "") -> Object:
    spec: Object = {"trustBundle": bundle}
    if signer:
        spec["signerName"] = signer
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "ClusterTrustBundle",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_discovery_row(cluster: InProcessCluster) -> None:
    row = api_resource_row(cluster, "certificates.k8s.io", "clustertrustbundles")
    assert row[:4] == [
        "clustertrustbundles",
        "certificates.k8s.io/v1",
        "false",
        "ClusterTrustBundle",
    ]
    assert row[4] == "create,delete,deletecollection,get,list,patch,update,watch"


def test_crud_table_and_field_selector(
    cluster: InProcessCluster, certs: client.CertificatesV1Api
) -> None:
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(ctb("plain-roots", CA_1 + CA_2)))
    certs.create_cluster_trust_bundle(ctb("example.com:foo:v1", CA_1, "example.com/foo"))
    table = rows(cluster.kubectl("get", "clustertrustbundles").stdout)
    assert table == [
        ["NAME", "SIGNERNAME"],
        ["example.com:foo:v1", "example.com/foo"],
        ["plain-roots", "<none>"],
    ]
    assert columns(cluster, "/apis/certificates.k8s.io/v1/clustertrustbundles") == [
        ("Name", "string"),
        ("SignerName", "string"),
    ]
    selected = certs.list_cluster_trust_bundle(field_selector="spec.signerName=example.com/foo")
    assert [b.metadata.name for b in selected.items] == ["example.com:foo:v1"]
    # An update that leaves the signer alone, with a new bundle.
    certs.patch_cluster_trust_bundle("example.com:foo:v1", {"spec": {"trustBundle": CA_2}})
    assert certs.read_cluster_trust_bundle("example.com:foo:v1").spec.trust_bundle == CA_2
    certs.delete_cluster_trust_bundle("example.com:foo:v1")
    cluster.kubectl("delete", "clustertrustbundle", "plain-roots")
    assert certs.list_cluster_trust_bundle().items == []


SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
BUNDLE = "spec.trustBundle"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            ctb("no-prefix", signer="k8s.io/foo"),
            [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    'Invalid value: "no-prefix": ClusterTrustBundle for signerName k8s.io/foo '
                    "must be named with prefix k8s.io:foo:",
                )
            ],
            id="name-without-signer-prefix",
        ),
        pytest.param(
            ctb("k8s.io:foo:", signer="k8s.io/foo"),
            [("FieldValueInvalid", "metadata.name", f'Invalid value: "k8s.io:foo:": {SUBDOMAIN}')],
            id="empty-name-suffix",
        ),
        pytest.param(
            ctb("k8s.io:foo:bar"),
            [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    'Invalid value: "k8s.io:foo:bar": ClusterTrustBundle without signer name '
                    'must not have ":" in its name',
                )
            ],
            id="colon-without-signer",
        ),
        pytest.param(
            ctb("bad-signer:x", signer="bad-signer"),
            [
                (
                    "FieldValueInvalid",
                    "spec.signerName",
                    'Invalid value: "bad-signer": must be a fully qualified domain and path of '
                    "the form 'example.com/signer-name'",
                )
            ],
            id="signer-without-path",
        ),
        pytest.param(
            ctb("empty", bundle=""),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": at least one trust anchor must be provided',
                )
            ],
            id="no-anchor",
        ),
        pytest.param(
            ctb(
                "private-key",
                bundle="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": entry 0 has bad block type: PRIVATE KEY',
                )
            ],
            id="not-a-certificate-block",
        ),
        pytest.param(
            ctb("headers", bundle=CA_1.replace("-----\n", "-----\nKey: value\n\n", 1)),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": entry 0 has PEM block headers',
                )
            ],
            id="block-headers",
        ),
        pytest.param(
            ctb("garbage", bundle="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": entry 0 does not parse as X.509',
                )
            ],
            id="not-x509",
        ),
        pytest.param(
            ctb("leaf", bundle=CA_1 + LEAF),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": entry 1 does not have the CA bit set',
                )
            ],
            id="not-a-ca",
        ),
        pytest.param(
            ctb("bare", bundle=NO_CONSTRAINTS),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": entry 0 does not have the CA bit set',
                )
            ],
            id="no-basic-constraints",
        ),
        pytest.param(
            ctb("twice", bundle=CA_1 + CA_2 + CA_1),
            [
                (
                    "FieldValueInvalid",
                    BUNDLE,
                    'Invalid value: "<value omitted>": duplicate trust anchor (indices [0 2])',
                )
            ],
            id="duplicate-anchor",
        ),
    ],
)
def test_invalid_bundles_are_refused(
    certs: client.CertificatesV1Api, body: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused(certs.create_cluster_trust_bundle, body)
    assert causes(status) == expected


def test_signer_name_is_immutable(certs: client.CertificatesV1Api) -> None:
    certs.create_cluster_trust_bundle(ctb("k8s.io:foo:a", signer="k8s.io/foo"))
    status = refused(
        certs.patch_cluster_trust_bundle, "k8s.io:foo:a", {"spec": {"signerName": "k8s.io/bar"}}
    )
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "metadata.name",
            'Invalid value: "k8s.io:foo:a": ClusterTrustBundle for signerName k8s.io/bar must '
            "be named with prefix k8s.io:bar:",
        ),
        ("FieldValueInvalid", "spec.signerName", 'Invalid value: "k8s.io/bar": field is immutable'),
    ]
    certs.delete_cluster_trust_bundle("k8s.io:foo:a")


def test_naming_a_signer_needs_attest(cluster: InProcessCluster) -> None:
    """ClusterTrustBundleAttest: RBAC on the bundle is not enough to speak for a signer."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "bundle-writer"},
        "rules": [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["clustertrustbundles"],
                "verbs": ["create", "get", "update", "patch", "delete"],
            }
        ],
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(role))
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "bundle-writer",
        "--clusterrole=bundle-writer",
        "--user=alice",
    )
    # No signer: RBAC on the bundle suffices.
    cluster.kubectl("create", "--as=alice", "-f", "-", stdin=json.dumps(ctb("alice-roots")))
    denied = cluster.kubectl(
        "create",
        "--as=alice",
        "-f",
        "-",
        stdin=json.dumps(ctb("acme.io:ca:1", signer="acme.io/ca")),
        check=False,
    )
    assert denied.returncode != 0
    assert (
        'clustertrustbundles.certificates.k8s.io "acme.io:ca:1" is forbidden: user not '
        'permitted to attest for signerName "acme.io/ca"'
    ) in denied.stderr
    attest = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "acme-attester"},
        "rules": [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["signers"],
                "resourceNames": ["acme.io/*"],
                "verbs": ["attest"],
            }
        ],
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(attest))
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "acme-attester",
        "--clusterrole=acme-attester",
        "--user=alice",
    )
    cluster.kubectl(
        "create",
        "--as=alice",
        "-f",
        "-",
        stdin=json.dumps(ctb("acme.io:ca:1", signer="acme.io/ca")),
    )
    cluster.kubectl("delete", "clusterrolebinding", "acme-attester")
    # Without attest again, only ownerReferences/finalizers may change.
    finalizer = cluster.kubectl(
        "patch",
        "--as=alice",
        "clustertrustbundle",
        "acme.io:ca:1",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":["example.com/keep"]}}',
    )
    assert finalizer.returncode == 0
    relabel = cluster.kubectl(
        "label", "--as=alice", "clustertrustbundle", "acme.io:ca:1", "team=x", check=False
    )
    assert "user not permitted to attest for signerName" in relabel.stderr
    cluster.kubectl(
        "patch",
        "clustertrustbundle",
        "acme.io:ca:1",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    cluster.kubectl("delete", "clustertrustbundle", "acme.io:ca:1", "alice-roots")
