"""Onboarding a user with an x509 certificate through the CSR API, with the real kubectl.

The classic exercise: make a key and a CertificateSigningRequest for
CN=jane,O=dev, ``kubectl create`` it, see it Pending, ``kubectl certificate
approve`` it, read the certificate the csrsigning controller issued, and
use it in a kubeconfig: jane is authenticated, forbidden until a
RoleBinding lets her list pods. Also: deny, the signer's refusal (Failed),
upstream's 422 messages for bad requests, what each endpoint may change,
and the ``approve`` permission on signers that approving needs.
"""

from __future__ import annotations

import base64
import datetime
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import oid

from kajitori.testing.cluster import KajitoriCluster, wait_for, wait_until

NS = "csr-e2e"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
APPROVAL = "/apis/certificates.k8s.io/v1/certificatesigningrequests/{}/approval"


@pytest.fixture(scope="module")
def ready(cluster: KajitoriCluster) -> Iterator[KajitoriCluster]:
    cluster.kubectl("create", "namespace", NS)
    yield cluster


def make_request(common_name: str, *organizations: str) -> tuple[bytes, bytes]:
    """(key PEM, CSR PEM) for CN=common_name, one O per organization."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(oid.NameOID.COMMON_NAME, common_name)]
    names += [x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, o) for o in organizations]
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(names))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, request.public_bytes(serialization.Encoding.PEM)


def manifest(name: str, request_pem: bytes, **spec: Any) -> str:
    body: dict[str, Any] = {
        "request": base64.b64encode(request_pem).decode(),
        "signerName": CLIENT_SIGNER,
        "usages": ["client auth"],
    }
    body.update(spec)
    return json.dumps(
        {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {k: v for k, v in body.items() if v is not None},
        }
    )


def create(cluster: KajitoriCluster, name: str, *subject: str, **spec: Any) -> bytes:
    """Create a CSR for CN=subject[0], O=subject[1:]; returns the key PEM."""
    key_pem, request_pem = make_request(*subject)
    cluster.kubectl("create", "-f", "-", stdin=manifest(name, request_pem, **spec))
    return key_pem


def get_csr(cluster: KajitoriCluster, name: str) -> dict[str, Any]:
    csr: dict[str, Any] = cluster.get_json("csr", name)
    return csr


def issued(cluster: KajitoriCluster, name: str) -> x509.Certificate:
    """Wait for the signer's certificate and parse it."""
    encoded = wait_for(
        lambda: get_csr(cluster, name).get("status", {}).get("certificate"),
        what=f"a certificate for {name}",
    )
    return x509.load_pem_x509_certificate(base64.b64decode(encoded))


def conditions(cluster: KajitoriCluster, name: str) -> dict[str, dict[str, Any]]:
    found = get_csr(cluster, name).get("status", {}).get("conditions") or []
    return {c["type"]: c for c in found}


def csr_row(cluster: KajitoriCluster, name: str) -> list[str]:
    return cluster.kubectl("get", "csr", name, "--no-headers").stdout.split()


def user_kubeconfig(cluster: KajitoriCluster, tmp: Path, user: str, key_pem: bytes) -> Path:
    """A kubeconfig for ``user`` with its issued certificate, next to the admin's cluster."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    cert_b64 = get_csr(cluster, user)["status"]["certificate"]
    config["users"] = [
        {
            "name": user,
            "user": {
                "client-certificate-data": cert_b64,
                "client-key-data": base64.b64encode(key_pem).decode(),
            },
        }
    ]
    cluster_name = config["clusters"][0]["name"]
    config["contexts"] = [{"name": user, "context": {"cluster": cluster_name, "user": user}}]
    config["current-context"] = user
    path = tmp / f"{user}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def as_user(cluster: KajitoriCluster, kubeconfig: Path, *args: str) -> Any:
    return cluster.kubectl("--kubeconfig", str(kubeconfig), *args, check=False)


# ----- the onboarding flow -----------------------------------------------------------


def test_onboard_jane_with_a_certificate(
    ready: KajitoriCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster = ready
    # The client may not name the requestor: the server fills in who asked.
    key_pem = create(cluster, "jane", "jane", "dev", expirationSeconds=86400, username="mallory")
    csr = get_csr(cluster, "jane")
    assert csr["spec"]["username"] == "kubernetes-admin"
    assert "system:masters" in csr["spec"]["groups"]
    assert csr["status"] == {}

    table = cluster.kubectl("get", "csr", "jane").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "AGE",
        "SIGNERNAME",
        "REQUESTOR",
        "REQUESTEDDURATION",
        "CONDITION",
    ]
    row = table[1].split()
    assert row[0] == "jane"
    assert row[2:] == [CLIENT_SIGNER, "kubernetes-admin", "24h", "Pending"]

    out = cluster.kubectl("certificate", "approve", "jane").stdout
    assert "certificatesigningrequest.certificates.k8s.io/jane approved" in out
    cert = issued(cluster, "jane")
    subject = cert.subject
    assert subject.get_attributes_for_oid(oid.NameOID.COMMON_NAME)[0].value == "jane"
    assert [a.value for a in subject.get_attributes_for_oid(oid.NameOID.ORGANIZATION_NAME)] == [
        "dev"
    ]
    # expirationSeconds honoured: a day, counted from the backdated start.
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=1)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    approved = conditions(cluster, "jane")["Approved"]
    assert approved["status"] == "True"
    assert approved["reason"] == "KubectlApprove"
    assert approved["lastTransitionTime"]
    assert csr_row(cluster, "jane")[-1] == "Approved,Issued"

    kubeconfig = user_kubeconfig(cluster, tmp_path_factory.mktemp("jane"), "jane", key_pem)
    whoami = json.loads(as_user(cluster, kubeconfig, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == "jane"
    assert "dev" in whoami["status"]["userInfo"]["groups"]

    denied = as_user(cluster, kubeconfig, "get", "pods", "-n", NS)
    assert denied.returncode != 0
    assert 'User "jane" cannot list resource "pods"' in denied.stderr

    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", NS)
    cluster.kubectl(
        "create", "rolebinding", "jane-reads", "--role=pod-reader", "--user=jane", "-n", NS
    )
    wait_until(
        lambda: as_user(cluster, kubeconfig, "get", "pods", "-n", NS).returncode == 0,
        what="jane may list pods",
    )


def test_deny_leaves_the_request_unsigned(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "denied-one", "denied-one")
    out = cluster.kubectl("certificate", "deny", "denied-one").stdout
    assert "certificatesigningrequest.certificates.k8s.io/denied-one denied" in out
    assert conditions(cluster, "denied-one")["Denied"]["reason"] == "KubectlDeny"
    # A later request approved and signed shows the signer has seen the denial go by.
    create(cluster, "after-denied", "after-denied")
    cluster.kubectl("certificate", "approve", "after-denied")
    issued(cluster, "after-denied")
    assert "certificate" not in get_csr(cluster, "denied-one").get("status", {})
    assert csr_row(cluster, "denied-one")[-1] == "Denied"
    # Approved and Denied exclude each other (kubectl refuses itself; the server too).
    csr = get_csr(cluster, "denied-one")
    csr["status"]["conditions"].append({"type": "Approved", "status": "True", "reason": "Late"})
    result = cluster.kubectl(
        "replace",
        "--raw",
        APPROVAL.format("denied-one"),
        "-f",
        "-",
        stdin=json.dumps(csr),
        check=False,
    )
    assert result.returncode != 0
    assert "Approved and Denied conditions are mutually exclusive" in result.stderr


def test_signer_refuses_wrong_usages_with_failed_condition(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "server-usage", "server-usage", usages=["server auth"])
    cluster.kubectl("certificate", "approve", "server-usage")
    failed = wait_for(
        lambda: conditions(cluster, "server-usage").get("Failed"), what="the Failed condition"
    )
    assert failed["reason"] == "SignerValidationFailure"
    assert failed["message"] == "invalid usage for client certificate: server auth"
    assert "certificate" not in get_csr(cluster, "server-usage")["status"]
    assert csr_row(cluster, "server-usage")[-1] == "Approved,Failed"


def test_requested_duration_column_without_expiration(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "no-expiry", "no-expiry")
    assert csr_row(cluster, "no-expiry")[4:] == ["<none>", "Pending"]


# ----- validation --------------------------------------------------------------------


def _rejected(cluster: KajitoriCluster, body: str) -> str:
    result = cluster.kubectl("create", "-f", "-", stdin=body, check=False)
    assert result.returncode != 0
    return result.stderr


def test_bad_pem_is_invalid(ready: KajitoriCluster) -> None:
    body = manifest("bad-pem", b"hi")
    stderr = _rejected(ready, body)
    assert (
        'The CertificateSigningRequest "bad-pem" is invalid: spec.request: Invalid value: '
        "[]byte{0x68, 0x69}: PEM block type must be CERTIFICATE REQUEST"
    ) in stderr


def test_signature_mismatch_is_invalid(ready: KajitoriCluster) -> None:
    _, request_pem = make_request("forged")
    der = bytearray(x509.load_pem_x509_csr(request_pem).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the signature's last byte: still DER, no longer valid
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    stderr = _rejected(ready, manifest("forged", forged))
    assert 'The CertificateSigningRequest "forged" is invalid: spec.request: Invalid value: ' in (
        stderr
    )
    assert stderr.rstrip().endswith(": x509: ECDSA verification failure")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"usages": ["client auth", "flying"]},
            'spec.usages[1]: Unsupported value: "flying": supported values: "any", "cert sign",',
            id="unknown-usage",
        ),
        pytest.param(
            {"expirationSeconds": 599},
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than "
            "600 seconds (10 minutes)",
            id="short-expiration",
        ),
        pytest.param({"signerName": None}, "spec.signerName: Required value", id="no-signer"),
        pytest.param(
            {"signerName": "example/signer"},
            'spec.signerName: Invalid value: "example": should be a domain with at least two '
            "segments separated by dots",
            id="bad-signer",
        ),
        pytest.param(
            {"usages": ["client auth", "client auth"]},
            'spec.usages[1]: Duplicate value: "client auth"',
            id="duplicate-usage",
        ),
    ],
)
def test_bad_spec_is_invalid(ready: KajitoriCluster, spec: dict[str, Any], message: str) -> None:
    _, request_pem = make_request("bad-spec")
    stderr = _rejected(ready, manifest("bad-spec", request_pem, **spec))
    assert 'The CertificateSigningRequest "bad-spec" is invalid: ' in stderr
    assert message in stderr


def test_system_masters_client_certificate_is_forbidden(ready: KajitoriCluster) -> None:
    _, request_pem = make_request("root", "system:masters")
    stderr = _rejected(ready, manifest("root", request_pem))
    assert (
        'certificatesigningrequests.certificates.k8s.io "root" is forbidden: use of '
        "kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    ) in stderr


# ----- what each endpoint may change -----------------------------------------------


def test_spec_and_status_are_kept_on_the_main_endpoint(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "immutable", "immutable")
    patch = {"metadata": {"labels": {"team": "dev"}}, "spec": {"usages": ["server auth"]}}
    cluster.kubectl("patch", "csr", "immutable", "--type=merge", "-p", json.dumps(patch))
    csr = get_csr(cluster, "immutable")
    assert csr["spec"]["usages"] == ["client auth"]
    assert csr["metadata"]["labels"] == {"team": "dev"}
    # status.certificate is only settable through /status.
    fake = base64.b64encode(b"not a certificate").decode()
    status_patch = json.dumps({"status": {"certificate": fake}})
    cluster.kubectl("patch", "csr", "immutable", "--type=merge", "-p", status_patch)
    assert "certificate" not in get_csr(cluster, "immutable")["status"]


def test_status_sets_the_certificate_once(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "once", "once")
    cluster.kubectl("certificate", "approve", "once")
    issued(cluster, "once")
    other = get_csr(cluster, "jane")["status"]["certificate"]
    result = cluster.kubectl(
        "patch",
        "csr",
        "once",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"certificate": other}}),
        check=False,
    )
    assert result.returncode != 0
    assert "status.certificate: Forbidden: updates may not modify existing certificate content" in (
        result.stderr
    )
    garbage = base64.b64encode(b"junk").decode()
    create(cluster, "junk-cert", "junk-cert")
    result = cluster.kubectl(
        "patch",
        "csr",
        "junk-cert",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"certificate": garbage}}),
        check=False,
    )
    assert result.returncode != 0
    assert (
        'status.certificate: Invalid value: "<certificate data>": must contain at least one '
        "CERTIFICATE PEM block"
    ) in result.stderr


def test_approval_conditions_cannot_be_removed(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "keep-approval", "keep-approval")
    cluster.kubectl("certificate", "approve", "keep-approval")
    csr = get_csr(cluster, "keep-approval")
    csr["status"]["conditions"] = []
    result = cluster.kubectl(
        "replace",
        "--raw",
        APPROVAL.format("keep-approval"),
        "-f",
        "-",
        stdin=json.dumps(csr),
        check=False,
    )
    assert result.returncode != 0
    assert (
        'The CertificateSigningRequest "keep-approval" is invalid: status.conditions: '
        'Forbidden: updates may not remove a condition of type "Approved"'
    ) in result.stderr
    # Through /status the Approved condition cannot be added either: it is kept as stored.
    create(cluster, "status-approve", "status-approve")
    csr = get_csr(cluster, "status-approve")
    csr["status"]["conditions"] = [{"type": "Approved", "status": "True", "reason": "Sneaky"}]
    result = cluster.kubectl(
        "replace",
        "--raw",
        APPROVAL.format("status-approve").replace("/approval", "/status"),
        "-f",
        "-",
        stdin=json.dumps(csr),
        check=False,
    )
    assert result.returncode != 0
    assert (
        'status.conditions: Forbidden: updates may not add a condition of type "Approved"'
    ) in result.stderr


# ----- who may approve ---------------------------------------------------------------


def test_approving_needs_approve_on_the_signer(ready: KajitoriCluster) -> None:
    cluster = ready
    create(cluster, "for-bob", "for-bob")
    cluster.kubectl(
        "create",
        "clusterrole",
        "csr-approval",
        "--verb=get,list,update",
        "--resource=certificatesigningrequests,certificatesigningrequests/approval",
    )
    cluster.kubectl(
        "create", "clusterrolebinding", "bob-approval", "--clusterrole=csr-approval", "--user=bob"
    )
    wait_until(
        lambda: cluster.kubectl("get", "csr", "for-bob", "--as=bob", check=False).returncode == 0,
        what="bob may read CSRs",
    )
    refused = cluster.kubectl("certificate", "approve", "for-bob", "--as=bob", check=False)
    assert refused.returncode != 0
    assert (
        'certificatesigningrequests.certificates.k8s.io "for-bob" is forbidden: user not '
        'permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"'
    ) in refused.stderr
    assert "Approved" not in conditions(cluster, "for-bob")

    # approve on signers "kubernetes.io/*" covers every signer of the domain.
    # kubectl create clusterrole cannot name signers (not a served resource), so YAML.
    signer_approver = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "signer-approver"},
        "rules": [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["signers"],
                "resourceNames": ["kubernetes.io/*"],
                "verbs": ["approve"],
            }
        ],
    }
    cluster.kubectl("create", "-f", "-", stdin=json.dumps(signer_approver))
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "bob-signer",
        "--clusterrole=signer-approver",
        "--user=bob",
    )
    wait_until(
        lambda: (
            cluster.kubectl("certificate", "approve", "for-bob", "--as=bob", check=False).returncode
            == 0
        ),
        what="bob may approve",
    )
    issued(cluster, "for-bob")


def test_discovery_lists_the_subresources(ready: KajitoriCluster) -> None:
    listing = json.loads(ready.kubectl("get", "--raw", "/apis/certificates.k8s.io/v1").stdout)
    verbs = {r["name"]: r["verbs"] for r in listing["resources"]}
    assert verbs["certificatesigningrequests/approval"] == ["get", "patch", "update"]
    assert verbs["certificatesigningrequests/status"] == ["get", "patch", "update"]
    short = ready.kubectl("api-resources", "--api-group=certificates.k8s.io", "--no-headers")
    assert short.stdout.split()[:3] == [
        "certificatesigningrequests",
        "csr",
        "certificates.k8s.io/v1",
    ]


def test_a_standalone_controller_manager_signs_with_the_cluster_signing_flags(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``kajitori controller-manager --cluster-signing-cert-file/--cluster-signing-key-file``
    (upstream's flags) signs beside ``kajitori apiserver``, for at most the signing duration."""
    data_dir = tmp_path_factory.mktemp("csr-split")
    with KajitoriCluster(data_dir, command="apiserver") as split:
        pki_dir = split.data_dir / "pki"
        manager = subprocess.Popen(
            [sys.executable, "-m", "kajitori", "controller-manager",
             "--kubeconfig", str(split.kubeconfig), "--leader-elect=false",
             "--controllers=csrsigning", "--cluster-signing-duration=24h",
             "--cluster-signing-cert-file", str(pki_dir / "ca.crt"),
             "--cluster-signing-key-file", str(pki_dir / "ca.key")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            create(split, "sam", "sam")
            split.kubectl("certificate", "approve", "sam")
            certificate = issued(split, "sam")
        finally:
            manager.send_signal(signal.SIGTERM)
            _, stderr = manager.communicate(timeout=15)
        assert manager.returncode == 0, stderr[-2000:]
    ca = x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes())
    assert certificate.issuer == ca.subject
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime == datetime.timedelta(hours=24)


def test_the_signing_flags_go_together(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kajitori", "controller-manager",
         "--kubeconfig", str(tmp_path / "absent"), "--cluster-signing-cert-file", "ca.crt"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--cluster-signing-cert-file and --cluster-signing-key-file go together" in done.stderr
