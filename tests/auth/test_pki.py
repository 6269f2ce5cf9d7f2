"""Cluster PKI: certificate contents, identity round trip, and the on-disk layout."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import oid

from kajitori.auth import pki
from kajitori.client import kubeconfig


@pytest.fixture(scope="module")
def ca() -> pki.CertAndKey:
    return pki.generate_ca()


def sans(pair: pki.CertAndKey) -> tuple[set[str], set[str]]:
    ext = pair.certificate().extensions.get_extension_for_class(x509.SubjectAlternativeName)
    dns = set(ext.value.get_values_for_type(x509.DNSName))
    ips = {str(a) for a in ext.value.get_values_for_type(x509.IPAddress)}
    return dns, ips


def usages(pair: pki.CertAndKey) -> list[x509.ObjectIdentifier]:
    return list(pair.certificate().extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_self_signed_ca_valid_for_ten_years(ca: pki.CertAndKey) -> None:
    """The CA has CA basic constraints, signs certificates, and lives about 3650 days."""
    cert = ca.certificate()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3650


def test_ensure_cluster_pki_serving_cert_carries_every_apiserver_name(tmp_path: Path) -> None:
    """The apiserver certificate covers localhost, the host, the in-cluster names and ClusterIP, plus extras."""
    cluster = pki.ensure_cluster_pki(
        tmp_path,
        hostname="node-1",
        extra_dns_names=["api.example"],
        extra_ip_addresses=["192.0.2.7"],
    )
    dns, ips = sans(cluster.apiserver)
    assert dns == {
        "localhost",
        "node-1",
        "api.example",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    assert ips == {"127.0.0.1", "10.96.0.1", "192.0.2.7"}
    assert usages(cluster.apiserver) == [oid.ExtendedKeyUsageOID.SERVER_AUTH]
    cluster.apiserver.certificate().verify_directly_issued_by(cluster.ca.certificate())


@pytest.mark.parametrize(
    ("user", "groups"),
    [
        pytest.param("kubernetes-admin", ["system:masters"], id="admin"),
        pytest.param("system:node:worker-1", ["system:nodes"], id="node"),
        pytest.param("alice", ["dev", "ops", "system:authenticated"], id="many-groups"),
        pytest.param("bob", [], id="no-groups"),
    ],
)
def test_client_cert_identity_round_trips_cn_and_organizations(
    ca: pki.CertAndKey, user: str, groups: list[str]
) -> None:
    """issue_client_cert puts the user in CN and each group in an O; identity_from_cert reads them back in order."""
    pair = pki.issue_client_cert(ca, user=user, groups=groups)
    cert = pair.certificate()
    der = cert.public_bytes(serialization.Encoding.DER)
    for encoded in (pair.cert_pem, pair.cert_pem.decode(), der):
        assert pki.identity_from_cert(encoded) == (user, groups)
    assert usages(pair) == [oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(ca.certificate())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 365


def test_ensure_cluster_pki_reuses_files_on_second_call(tmp_path: Path) -> None:
    """A second run finds the files and returns the very same certificates and keys."""
    first = pki.ensure_cluster_pki(tmp_path, hostname="node-1")
    second = pki.ensure_cluster_pki(tmp_path, hostname="node-1")
    assert second == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "admin.crt",
        "admin.key",
        "apiserver.crt",
        "apiserver.key",
        "ca.crt",
        "ca.key",
    ]
    assert pki.identity_from_cert(first.admin.cert_pem) == ("kubernetes-admin", ["system:masters"])


def test_ensure_cluster_pki_reissues_serving_cert_when_a_name_is_added(tmp_path: Path) -> None:
    """Asking for a new SAN re-issues only the serving certificate, from the same CA."""
    first = pki.ensure_cluster_pki(tmp_path, hostname="node-1")
    second = pki.ensure_cluster_pki(tmp_path, hostname="node-1", extra_ip_addresses=["192.0.2.9"])
    assert (second.ca, second.admin) == (first.ca, first.admin)
    assert second.apiserver != first.apiserver
    assert "192.0.2.9" in sans(second.apiserver)[1]


def test_ensure_cluster_pki_writes_keys_readable_only_by_owner(tmp_path: Path) -> None:
    """Private keys are mode 0600; certificates are world-readable."""
    pki.ensure_cluster_pki(tmp_path, hostname="node-1")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert {n: m for n, m in modes.items() if n.endswith(".key")} == {
        "ca.key": 0o600,
        "apiserver.key": 0o600,
        "admin.key": 0o600,
    }
    assert modes["ca.crt"] == 0o644


def test_load_cert_and_key_rejects_a_key_from_another_pair(
    ca: pki.CertAndKey, tmp_path: Path
) -> None:
    """A certificate paired with someone else's key is refused."""
    one = pki.issue_client_cert(ca, user="a", groups=[])
    other = pki.issue_client_cert(ca, user="b", groups=[])
    (tmp_path / "a.crt").write_bytes(one.cert_pem)
    (tmp_path / "b.key").write_bytes(other.key_pem)
    (tmp_path / "a.key").write_bytes(one.key_pem)
    assert pki.load_cert_and_key(tmp_path / "a.crt", tmp_path / "a.key") == one
    with pytest.raises(ValueError, match="does not hold the private key"):
        pki.load_cert_and_key(tmp_path / "a.crt", tmp_path / "b.key")


def test_serving_cert_accepts_ipv6_and_deduplicates_names(ca: pki.CertAndKey) -> None:
    """Duplicate names collapse and IPv6 addresses are encoded as IP SANs."""
    pair = pki.issue_serving_cert(ca, dns_names=["a", "a", "b"], ip_addresses=["::1", "::1"])
    assert sans(pair) == ({"a", "b"}, {str(ipaddress.ip_address("::1"))})


def test_write_then_load_kubeconfig_round_trips_credentials(tmp_path: Path) -> None:
    """write_kubeconfig embeds base64 credentials in a 0600 file that load_kubeconfig resolves back."""
    cluster = pki.ensure_cluster_pki(tmp_path / "pki", hostname="node-1")
    path = tmp_path / "admin.conf"
    kubeconfig.write_kubeconfig(
        path,
        server_url="https://127.0.0.1:6443",
        ca_pem=cluster.ca.cert_pem,
        client_cert_pem=cluster.admin.cert_pem,
        client_key_pem=cluster.admin.key_pem,
    )
    loaded = kubeconfig.load_kubeconfig(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "client-key-data:" in path.read_text()
    assert loaded == kubeconfig.KubeConfig(
        context="kubernetes-admin@kajitori",
        server="https://127.0.0.1:6443",
        ca_pem=cluster.ca.cert_pem,
        client_cert_pem=cluster.admin.cert_pem,
        client_key_pem=cluster.admin.key_pem,
    )
    loaded.ssl_context()  # the embedded pair loads into Python's ssl


def test_load_kubeconfig_resolves_token_files_and_namespace(tmp_path: Path) -> None:
    """File references resolve relative to the kubeconfig; a named context picks its namespace and token."""
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "config").write_text(
        """
apiVersion: v1
kind: Config
current-context: other
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
users:
- name: u
  user: {tokenFile: token}
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: team-a}
- name: other
  context: {cluster: c, user: u}
"""
    )
    dev = kubeconfig.load_kubeconfig(tmp_path / "config", context="dev")
    assert (dev.server, dev.ca_pem, dev.token, dev.namespace) == (
        "https://10.0.0.1:6443",
        b"CA",
        "s3cret",
        "team-a",
    )
    assert kubeconfig.load_kubeconfig(tmp_path / "config").namespace == "default"
    with pytest.raises(ValueError, match="no context named 'missing'"):
        kubeconfig.load_kubeconfig(tmp_path / "config", context="missing")


def test_service_account_names_longer_than_rfc5280_cn_bound_round_trip(
    ca: pki.CertAndKey,
) -> None:
    issued = pki.issue_service_account_cert(
        ca, namespace="local-path-storage", name="local-path-provisioner-service-account"
    )
    user, groups = pki.identity_from_cert(issued.cert_pem)
    assert user == "system:serviceaccount:local-path-storage:local-path-provisioner-service-account"
    assert len(user) > 64
    assert groups == ["system:serviceaccounts", "system:serviceaccounts:local-path-storage"]
