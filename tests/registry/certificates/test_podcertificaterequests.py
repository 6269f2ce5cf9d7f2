"""certificates.k8s.io/v1 PodCertificateRequests (GA in 1.37) as upstream serves them.

In-process cluster over HTTPS, the official client and the real kubectl:
discovery, create (status cleared, ``maxExpirationSeconds`` defaulted),
upstream's 422s for the spec, an immutable spec, and ``/status``: issuing a
certificate for the requested key (then the status is frozen), denying
(conditions only), and the ``sign`` permission on the signer that any status
change needs.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from kubernetes import client
from tests.registry.certificates import pki
from tests.registry.kind_checks import api_resource_row, causes, columns, refused

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
NS = "default"
SIGNER = "example.com/mesh"
KEY = ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    api_client = cluster.api_client()
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def certs(api: client.ApiClient) -> client.CertificatesV1Api:
    return client.CertificatesV1Api(api)


def pcr(name: str, key: pki.PrivateKey = KEY, **spec: Any) -> Object:
    body: Object = {
        "signerName": SIGNER,
        "podName": "web-0",
        "podUID": "11111111-1111-1111-1111-111111111111",
        "serviceAccountName": "default",
        "serviceAccountUID": "22222222-2222-2222-2222-222222222222",
        "nodeName": "node-1",
        "nodeUID": "33333333-3333-3333-3333-333333333333",
        "stubPKCS10Request": base64.b64encode(pki.stub_request(key)).decode(),
    }
    body.update(spec)
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {"name": name, "namespace": NS},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def as_dict(api: client.ApiClient, obj: Any) -> Object:
    result: Object = api.sanitize_for_serialization(obj)
    return result


def test_discovery_row_and_columns(cluster: InProcessCluster) -> None:
    row = api_resource_row(cluster, "certificates.k8s.io", "podcertificaterequests")
    assert row[:4] == [
        "podcertificaterequests",
        "certificates.k8s.io/v1",
        "true",
        "PodCertificateRequest",
    ]
    assert columns(
        cluster, f"/apis/certificates.k8s.io/v1/namespaces/{NS}/podcertificaterequests"
    ) == [
        ("Name", "string"),
        ("Created At", "date"),
    ]


def test_create_defaults_and_clears_status(
    cluster: InProcessCluster, api: client.ApiClient, certs: client.CertificatesV1Api
) -> None:
    body = pcr("defaulted")
    body["status"] = {"certificateChain": "forged"}
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(body))
    got = as_dict(api, certs.read_namespaced_pod_certificate_request("defaulted", NS))
    assert got["spec"]["maxExpirationSeconds"] == 86400
    assert not got.get("status")
    selected = certs.list_namespaced_pod_certificate_request(
        NS, field_selector="spec.podName=web-0"
    )
    assert [r.metadata.name for r in selected.items] == ["defaulted"]
    names = cluster.kubectl("get", "podcertificaterequests", "-o", "name").stdout.split()
    assert names == ["podcertificaterequest.certificates.k8s.io/defaulted"]
    certs.delete_namespaced_pod_certificate_request("defaulted", NS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            pcr("no-uid", podUID=""),
            [("FieldValueInvalid", "spec.podUID", 'Invalid value: "": must not be empty')],
            id="pod-uid-empty",
        ),
        pytest.param(
            pcr("long-uid", nodeUID="u" * 129),
            [("FieldValueTooLong", "spec.nodeUID", "Too long: may not be more than 128 bytes")],
            id="node-uid-too-long",
        ),
        pytest.param(
            pcr("bad-pod", podName="Web_0"),
            [
                (
                    "FieldValueInvalid",
                    "spec.podName",
                    'Invalid value: "Web_0": a lowercase RFC 1123 subdomain must consist of lower '
                    "case alphanumeric characters, '-' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            ],
            id="pod-name",
        ),
        pytest.param(
            pcr("short", maxExpirationSeconds=600),
            [
                (
                    "FieldValueInvalid",
                    "spec.maxExpirationSeconds",
                    "Invalid value: 600: must be in the range [3600, 7862400]",
                )
            ],
            id="expiration-too-short",
        ),
        pytest.param(
            pcr("k8s-long", signerName="kubernetes.io/foo", maxExpirationSeconds=86401),
            [
                (
                    "FieldValueInvalid",
                    "spec.maxExpirationSeconds",
                    "Invalid value: 86401: must be in the range [3600, 86400]",
                )
            ],
            id="kubernetes-signer-max-a-day",
        ),
        pytest.param(
            pcr("no-signer", signerName="nodomain"),
            [
                (
                    "FieldValueInvalid",
                    "spec.signerName",
                    'Invalid value: "nodomain": must be a fully qualified domain and path of the '
                    "form 'example.com/signer-name'",
                )
            ],
            id="signer-name",
        ),
        pytest.param(
            pcr("weak-rsa", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            [
                (
                    "FieldValueInvalid",
                    "spec.stubPKCS10Request",
                    'Invalid value: "2048-bit modulus": RSA keys must have modulus size 3072 or 4096',
                )
            ],
            id="rsa-2048",
        ),
        pytest.param(
            pcr("k1-curve", key=ec.generate_private_key(ec.SECP256K1())),
            [
                (
                    "FieldValueInvalid",
                    "spec.stubPKCS10Request",
                    'Invalid value: "curve secp256k1": elliptic public keys must use curve P256, '
                    "P384, or P521",
                )
            ],
            id="unsupported-curve",
        ),
    ],
)
def test_invalid_requests_are_refused(
    certs: client.CertificatesV1Api, body: Object, expected: list[tuple[str, str, str]]
) -> None:
    status = refused(certs.create_namespaced_pod_certificate_request, NS, body)
    assert causes(status) == expected


def test_a_stub_that_is_no_pkcs10_request_is_refused(certs: client.CertificatesV1Api) -> None:
    body = pcr("junk", stubPKCS10Request=base64.b64encode(b"junk").decode())
    ((reason, path, message),) = causes(
        refused(certs.create_namespaced_pod_certificate_request, NS, body)
    )
    assert (reason, path) == ("FieldValueInvalid", "spec.stubPKCS10Request")
    assert message.endswith("must be a valid PKCS#10 request")


def test_spec_is_immutable(certs: client.CertificatesV1Api) -> None:
    certs.create_namespaced_pod_certificate_request(NS, pcr("frozen"))
    status = refused(
        certs.patch_namespaced_pod_certificate_request, "frozen", NS, {"spec": {"podName": "web-1"}}
    )
    ((reason, path, message),) = causes(status)
    assert (reason, path) == ("FieldValueInvalid", "spec")
    assert message.endswith("field is immutable")
    labelled = certs.patch_namespaced_pod_certificate_request(
        "frozen", NS, {"metadata": {"labels": {"app": "web"}}}
    )
    assert labelled.metadata.labels == {"app": "web"}
    certs.delete_namespaced_pod_certificate_request("frozen", NS)


def _issued_status(key: pki.PrivateKey, **overrides: Any) -> Object:
    ca = pki.certificate("mesh ca")
    start = pki.now() - datetime.timedelta(minutes=1)
    leaf, _ = pki.certificate(
        "web-0",
        ca=False,
        issuer=ca,
        public_key=key.public_key(),
        not_before=start,
        lifetime=datetime.timedelta(hours=12),
    )

    def stamp(moment: datetime.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    status: Object = {
        "conditions": [
            {
                "type": "Issued",
                "status": "True",
                "reason": "Issued",
                "message": "issued by the mesh CA",
                "lastTransitionTime": stamp(pki.now()),
            }
        ],
        "certificateChain": pki.pem(leaf) + pki.pem(ca[0]),
        "notBefore": stamp(start),
        "notAfter": stamp(start + datetime.timedelta(hours=12)),
        "beginRefreshAt": stamp(start + datetime.timedelta(hours=8)),
    }
    status.update(overrides)
    return status


def test_issuing_through_status_then_it_is_frozen(
    api: client.ApiClient, certs: client.CertificatesV1Api
) -> None:
    created = certs.create_namespaced_pod_certificate_request(NS, pcr("issue-me"))
    # The main endpoint keeps the stored (empty) status.
    ignored = certs.patch_namespaced_pod_certificate_request(
        "issue-me", NS, {"status": _issued_status(KEY)}
    )
    assert not as_dict(api, ignored).get("status")
    issued = certs.patch_namespaced_pod_certificate_request_status(
        "issue-me", NS, {"status": _issued_status(KEY)}
    )
    body = as_dict(api, issued)
    assert body["status"]["conditions"][0]["type"] == "Issued"
    assert body["spec"] == as_dict(api, created)["spec"]
    status = refused(
        certs.patch_namespaced_pod_certificate_request_status,
        "issue-me",
        NS,
        {"status": {"beginRefreshAt": body["status"]["notAfter"]}},
    )
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "status",
            "Invalid value: immutable after PodCertificateRequest is issued, denied, or failed",
        )
    ]
    certs.delete_namespaced_pod_certificate_request("issue-me", NS)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"notBefore": None},
            [
                (
                    "FieldValueRequired",
                    "status.notBefore",
                    "Required value: must be present and consistent with the issued certificate",
                )
            ],
            id="timestamps-required",
        ),
        pytest.param(
            {"certificateChain": pki.pem(pki.certificate("someone else", ca=False)[0])},
            None,
            id="wrong-key",
        ),
        pytest.param({"beginRefreshAt": None}, None, id="refresh-required"),
    ],
)
def test_bad_issuance_is_refused(
    certs: client.CertificatesV1Api, overrides: Object, expected: list[tuple[str, str, str]] | None
) -> None:
    certs.create_namespaced_pod_certificate_request(NS, pcr("bad-issue"))
    try:
        status = refused(
            certs.patch_namespaced_pod_certificate_request_status,
            "bad-issue",
            NS,
            {"status": _issued_status(KEY, **overrides)},
        )
        found = causes(status)
        if expected is not None:
            assert found == expected
        elif "certificateChain" in overrides:
            assert found == [
                (
                    "FieldValueInvalid",
                    "status.certificateChain",
                    f"Invalid value: {json.dumps(overrides['certificateChain'])}: "
                    "leaf certificate was not issued to the requested public key",
                )
            ]
        else:
            assert found == [
                (
                    "FieldValueRequired",
                    "status.beginRefreshAt",
                    "Required value: must be present and in the range "
                    "[notbefore+10min, notafter-10min]",
                )
            ]
    finally:
        certs.delete_namespaced_pod_certificate_request("bad-issue", NS)


def test_denial_carries_conditions_only(certs: client.CertificatesV1Api) -> None:
    certs.create_namespaced_pod_certificate_request(NS, pcr("deny-me"))
    denied = {
        "type": "Denied",
        "status": "True",
        "reason": "UnsupportedKeyType",
        "message": "use ECDSA P256",
        "lastTransitionTime": pki.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    status = refused(
        certs.patch_namespaced_pod_certificate_request_status,
        "deny-me",
        NS,
        {"status": {"conditions": [denied], "certificateChain": "x"}},
    )
    assert causes(status) == [
        (
            "FieldValueInvalid",
            "status",
            "Invalid value: non-condition status fields must be empty when denying or failing "
            "the PodCertificateRequest",
        )
    ]
    unknown = {**denied, "type": "Approved"}
    status = refused(
        certs.patch_namespaced_pod_certificate_request_status,
        "deny-me",
        NS,
        {"status": {"conditions": [unknown]}},
    )
    assert causes(status) == [
        (
            "FieldValueNotSupported",
            "status.conditions[0].type",
            'Unsupported value: "Approved": supported values: "Issued", "Denied", "Failed"',
        )
    ]
    done = certs.patch_namespaced_pod_certificate_request_status(
        "deny-me", NS, {"status": {"conditions": [denied]}}
    )
    assert done.status.conditions[0].reason == "UnsupportedKeyType"
    certs.delete_namespaced_pod_certificate_request("deny-me", NS)


def test_status_changes_need_sign_on_the_signer(cluster: InProcessCluster) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "pcr-status-writer"},
        "rules": [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["podcertificaterequests", "podcertificaterequests/status"],
                "verbs": ["get", "update", "patch"],
            }
        ],
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(role))
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "pcr-status-writer",
        "--clusterrole=pcr-status-writer",
        "--user=bob",
    )
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(pcr("needs-sign")))
    failed = {
        "type": "Failed",
        "status": "True",
        "reason": "Backend",
        "lastTransitionTime": pki.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    patch = json.dumps({"status": {"conditions": [failed]}})
    args = (
        "patch",
        "--as=bob",
        "podcertificaterequest",
        "needs-sign",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )
    refused_write = cluster.kubectl(*args, check=False)
    assert refused_write.returncode != 0
    assert (
        'The PodCertificateRequest "needs-sign" is invalid: spec.signerName: Forbidden: '
        'User "bob" is not permitted to "sign" for signer "example.com/mesh"'
    ) in refused_write.stderr
    signer = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "mesh-signer"},
        "rules": [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["signers"],
                "resourceNames": ["example.com/mesh"],
                "verbs": ["sign"],
            }
        ],
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(signer))
    cluster.kubectl(
        "create", "clusterrolebinding", "mesh-signer", "--clusterrole=mesh-signer", "--user=bob"
    )
    cluster.kubectl(*args)
    cluster.kubectl("delete", "podcertificaterequest", "needs-sign")


def test_a_kubelet_asks_only_for_its_own_pods(cluster: InProcessCluster) -> None:
    """NodeRestriction: names and UIDs must be those of a pod bound to the requesting node."""

    def create(obj: Object) -> Object:
        out = cluster.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(obj)).stdout
        created: Object = json.loads(out)
        return created

    nodes = {
        n: create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})
        for n in ("pcr-node-1", "pcr-node-2")
    }
    account = create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "pcr-sa", "namespace": NS},
        }
    )
    pod = create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pcr-pod", "namespace": NS},
            "spec": {
                "nodeName": "pcr-node-1",
                "serviceAccountName": "pcr-sa",
                "automountServiceAccountToken": False,
                "containers": [{"name": "c", "image": "busybox"}],
            },
        }
    )

    def request(name: str, node: str = "pcr-node-1", **spec: Any) -> Object:
        fields = {
            "podName": "pcr-pod",
            "podUID": pod["metadata"]["uid"],
            "serviceAccountName": "pcr-sa",
            "serviceAccountUID": account["metadata"]["uid"],
            "nodeName": node,
            "nodeUID": nodes[node]["metadata"]["uid"],
        }
        fields.update(spec)
        return pcr(name, **fields)

    def as_node(node: str, body: Object) -> str:
        done = cluster.kubectl(
            "create",
            f"--as=system:node:{node}",
            "--as-group=system:nodes",
            "-f",
            "-",
            stdin=json.dumps(body),
            check=False,
        )
        return done.stderr if done.returncode else ""

    assert as_node("pcr-node-1", request("by-kubelet")) == ""
    prefix = 'podcertificaterequests.certificates.k8s.io "{}" is forbidden: '
    cases = [
        (
            "pcr-node-2",
            request("other-node"),
            'PodCertificateRequest.Spec.NodeName="pcr-node-1", which is not the requesting '
            'node "pcr-node-2"',
        ),
        (
            "pcr-node-2",
            request("not-bound", node="pcr-node-2"),
            'pod "default/pcr-pod" is not running on node "pcr-node-2" named in the '
            "PodCertificateRequest",
        ),
        (
            "pcr-node-1",
            request("wrong-pod-uid", podUID="not-the-pod"),
            'PodCertificateRequest for pod "default/pcr-pod" names pod UID "not-the-pod", '
            f'inconsistent with the running pod ("{pod["metadata"]["uid"]}")',
        ),
        (
            "pcr-node-1",
            request("wrong-account", serviceAccountName="default"),
            'PodCertificateRequest for pod "default/pcr-pod" contains serviceAccountName '
            '("default") that differs from running pod ("pcr-sa")',
        ),
    ]
    for node, body, reason in cases:
        assert (prefix.format(body["metadata"]["name"]) + reason) in as_node(node, body)
    cluster.kubectl("delete", "podcertificaterequest", "by-kubelet")
    cluster.kubectl("delete", "pod", "pcr-pod", "--grace-period=0", "--force")
