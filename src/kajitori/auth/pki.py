"""Cluster PKI: the CA, the API server's serving certificate and client certificates.

Owns the certificates kajitori needs to speak TLS the way kubeadm clusters do:
one cluster CA that signs both the API server's serving certificate and the
client certificates it accepts, where a client certificate names a user by its
Subject CommonName and that user's groups by its Organization values (what
upstream's x509 authenticator reads, ``staging/src/k8s.io/apiserver/pkg/
authentication/request/x509``).

Keys are ECDSA P-256 rather than kubeadm's default RSA 2048: a P-256
signature costs the server far less than an RSA private-key operation, which
cut our server's CPU per full TLS handshake by about 30 % (measured by
``python -m bench.http_stack``, recorded in docs/decisions/0001-http-stack.md);
Go's TLS stack and kubectl accept both. Validity follows kubeadm: CA ten
years, leaves one year, all backdated a few minutes to tolerate clock skew
between hosts.

Everything except ``ensure_cluster_pki`` is a pure function over PEM bytes;
``ensure_cluster_pki`` is the one place that touches the file system, creating
the files on first run and reusing them afterwards (keys mode 0600).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.x509 import oid

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
# kubeadm backdates NotBefore so that a host whose clock runs slightly behind
# the one that signed still accepts a freshly issued certificate.
BACKDATE = datetime.timedelta(minutes=5)

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS = ("system:masters",)
APISERVER_COMMON_NAME = "kube-apiserver"
# kubeadm's controller-manager.conf names this user and no group; upstream's
# bootstrap RBAC binds the system:kube-controller-manager role to it.
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SIMULATED_KUBELETS_USER = "system:kajitori:simulated-kubelets"

# The names every in-cluster client uses for the API server, plus the first
# address of kubeadm's default service CIDR (10.96.0.0/12), the ClusterIP of
# the ``kubernetes`` Service. They are certificate names, never dialled here.
DEFAULT_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
DEFAULT_IP_ADDRESSES = ("127.0.0.1", "10.96.0.1")


@dataclasses.dataclass(frozen=True, slots=True)
class CertAndKey:
    """A PEM certificate and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterPKI:
    """The cluster's certificates and where they live on disk."""

    directory: Path
    ca: CertAndKey
    apiserver: CertAndKey
    admin: CertAndKey

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def apiserver_cert_path(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key_path(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert_path(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key_path(self) -> Path:
        return self.directory / "admin.key"


def generate_ca(common_name: str = "kubernetes") -> CertAndKey:
    """Create a self-signed CA certificate valid for ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, common_name)])
    not_before = _now() - BACKDATE
    builder = (
        _base_builder(subject=name, issuer=name, public_key=key.public_key())
        .not_valid_before(not_before)
        .not_valid_after(not_before + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return CertAndKey(_cert_pem(cert), _key_pem(key))


def issue_serving_cert(
    ca: CertAndKey,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    common_name: str = APISERVER_COMMON_NAME,
) -> CertAndKey:
    """Issue a one-year TLS server certificate for the given names and addresses."""
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in _unique(dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in _unique(ip_addresses)]
    subject = x509.Name([x509.NameAttribute(oid.NameOID.COMMON_NAME, common_name)])
    return _issue_leaf(
        ca,
        subject=subject,
        usage=oid.ExtendedKeyUsageOID.SERVER_AUTH,
        sans=sans,
    )


def issue_client_cert(
    ca: CertAndKey,
    *,
    user: str,
    groups: Sequence[str],
    key: ec.EllipticCurvePrivateKey | None = None,
) -> CertAndKey:
    """Issue a one-year client certificate naming ``user`` (CN) in ``groups`` (one O each).

    ``key`` reuses a key pair instead of generating one (half the cost), for
    in-memory certificates issued by the hundred that never leave the process.
    """
    attributes = [x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, g) for g in groups]
    attributes.append(_common_name(user))
    return _issue_leaf(
        ca,
        subject=x509.Name(attributes),
        usage=oid.ExtendedKeyUsageOID.CLIENT_AUTH,
        sans=[],
        key=key,
    )


def _common_name(user: str) -> x509.NameAttribute:
    """The CN naming ``user``, even past RFC 5280's 64 characters.

    cryptography refuses (or warns about) longer CNs, but Go's x509, hence
    kube-apiserver and kubeadm, neither checks nor needs the bound, and
    ServiceAccount users such as
    ``system:serviceaccount:local-path-storage:local-path-provisioner-service-account``
    are longer.
    """
    if len(user) <= 64:
        return x509.NameAttribute(oid.NameOID.COMMON_NAME, user)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x509.NameAttribute(oid.NameOID.COMMON_NAME, user, _validate=False)


def issue_controller_manager_cert(ca: CertAndKey) -> CertAndKey:
    """The controller manager's own client certificate (user ``system:kube-controller-manager``)."""
    return issue_client_cert(ca, user=CONTROLLER_MANAGER_USER, groups=())


def issue_simulated_kubelet_cert(ca: CertAndKey) -> CertAndKey:
    """The certificate the in-process simulated kubelets *read* with (one for all their nodes).

    User ``system:kajitori:simulated-kubelets``, which the bootstrap policy
    lets read nodes and pods cluster-wide: one process watching the pods of
    many nodes, as KWOK does. Each node *writes* as itself (``issue_node_certs``).
    """
    return issue_client_cert(ca, user=SIMULATED_KUBELETS_USER, groups=())


def issue_node_certs(ca: CertAndKey, names: Sequence[str]) -> dict[str, CertAndKey]:
    """Kubelet certificates (``system:node:<name>`` in ``system:nodes``), one key for all.

    For in-process kubelets only: the certificates never leave memory, and
    sharing the key pair halves the cost of a thousand nodes.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    return {
        name: issue_client_cert(ca, user=f"system:node:{name}", groups=("system:nodes",), key=key)
        for name in names
    }


def issue_service_account_cert(ca: CertAndKey, *, namespace: str, name: str) -> CertAndKey:
    """A client certificate naming ServiceAccount ``namespace/name``, as its token would.

    User ``system:serviceaccount:<ns>:<name>`` in ``system:serviceaccounts`` and
    ``system:serviceaccounts:<ns>``: what kube-controller-manager's
    ``--use-service-account-credentials`` gives each controller, for components
    running inside ``kajitori up`` until service account tokens exist.
    """
    return issue_client_cert(
        ca,
        user=f"system:serviceaccount:{namespace}:{name}",
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
    )


def load_cert_and_key(cert_path: Path | str, key_path: Path | str) -> CertAndKey:
    """Read a PEM certificate and key, checking that they belong together."""
    pair = CertAndKey(Path(cert_path).read_bytes(), Path(key_path).read_bytes())
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    if pair.certificate().public_key() != key.public_key():
        raise ValueError(f"{key_path} does not hold the private key of {cert_path}")
    return pair


def identity_from_cert(cert: bytes | str) -> tuple[str, list[str]]:
    """Return ``(user, groups)`` from a PEM or DER client certificate: CN and every O, in order."""
    user, groups = _identity_from_cert(cert)
    return user, list(groups)


# Room for every simulated kubelet of a 1,000-node cluster plus the components.
@functools.lru_cache(maxsize=4096)
def _identity_from_cert(cert: bytes | str) -> tuple[str, tuple[str, ...]]:
    # Every request of a connection presents the same certificate; parsing
    # it each time cost a fifth of a GET's server time (bench/api.py profile).
    raw = cert.encode("ascii") if isinstance(cert, str) else cert
    parsed = (
        x509.load_pem_x509_certificate(raw)
        if raw.lstrip().startswith(b"-----BEGIN")
        else x509.load_der_x509_certificate(raw)
    )
    with warnings.catch_warnings():
        # A CN past 64 characters is fine here as in Go (see ``_common_name``).
        warnings.simplefilter("ignore", UserWarning)
        subject = parsed.subject
    common_names = subject.get_attributes_for_oid(oid.NameOID.COMMON_NAME)
    user = str(common_names[0].value) if common_names else ""
    groups = tuple(
        str(a.value) for a in subject.get_attributes_for_oid(oid.NameOID.ORGANIZATION_NAME)
    )
    return user, groups


def serving_names(
    hostname: str, extra_dns_names: Sequence[str] = (), extra_ip_addresses: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses the API server's certificate must carry."""
    dns_names = _unique([*DEFAULT_DNS_NAMES, hostname, *extra_dns_names])
    ips = _unique([*DEFAULT_IP_ADDRESSES, *extra_ip_addresses])
    return dns_names, ips


def ensure_cluster_pki(
    directory: Path,
    *,
    hostname: str,
    extra_dns_names: Sequence[str] = (),
    extra_ip_addresses: Sequence[str] = (),
) -> ClusterPKI:
    """Create the cluster's certificates under ``directory``, or reuse the ones already there.

    Files: ca.crt/ca.key, apiserver.crt/apiserver.key, admin.crt/admin.key (user
    ``kubernetes-admin`` in ``system:masters``, as kubeadm's admin.conf). An
    existing serving certificate is re-issued from the same CA when it lacks a
    required name or has expired, so adding a SAN needs no manual cleanup; the CA
    is never replaced once written, since every issued credential depends on it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ensure_pair(directory, "ca", lambda: generate_ca())
    dns_names, ips = serving_names(hostname, extra_dns_names, extra_ip_addresses)
    apiserver = _ensure_pair(
        directory,
        "apiserver",
        lambda: issue_serving_cert(ca, dns_names=dns_names, ip_addresses=ips),
        still_good=lambda pair: _covers(pair, dns_names, ips),
    )
    admin = _ensure_pair(
        directory, "admin", lambda: issue_client_cert(ca, user=ADMIN_USER, groups=ADMIN_GROUPS)
    )
    return ClusterPKI(directory=directory, ca=ca, apiserver=apiserver, admin=admin)


FRONT_PROXY_CA_COMMON_NAME = "front-proxy-ca"
# The client name aggregated API servers accept the front proxy's headers from
# (``requestheader-allowed-names``), as kubeadm's front-proxy-client.crt.
FRONT_PROXY_CLIENT_USER = "front-proxy-client"


@dataclasses.dataclass(frozen=True, slots=True)
class FrontProxyPKI:
    """The request-header CA and the client certificate the aggregator proxies with."""

    ca: CertAndKey
    client: CertAndKey


def ensure_front_proxy_pki(directory: Path) -> FrontProxyPKI:
    """kubeadm's front-proxy-ca.{crt,key} and front-proxy-client.{crt,key}, made once.

    A CA of its own, apart from the cluster CA: aggregated servers trust the
    X-Remote-* headers only from a client this CA signed, so no ordinary
    client certificate can claim another user's identity through them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ensure_pair(directory, "front-proxy-ca", lambda: generate_ca(FRONT_PROXY_CA_COMMON_NAME))
    client = _ensure_pair(
        directory,
        "front-proxy-client",
        lambda: issue_client_cert(ca, user=FRONT_PROXY_CLIENT_USER, groups=()),
        still_good=lambda pair: pair.certificate().issuer == ca.certificate().subject,
    )
    return FrontProxyPKI(ca=ca, client=client)


def _ensure_pair(
    directory: Path,
    stem: str,
    issue: Callable[[], CertAndKey],
    *,
    still_good: Callable[[CertAndKey], bool] | None = None,
) -> CertAndKey:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    if cert_path.exists() and key_path.exists():
        pair = load_cert_and_key(cert_path, key_path)
        if _unexpired(pair) and (still_good is None or still_good(pair)):
            return pair
    pair = issue()
    # The key goes first: a crash between the two writes leaves a key without
    # a certificate, which the next run simply replaces.
    _write_atomically(key_path, pair.key_pem, mode=0o600)
    _write_atomically(cert_path, pair.cert_pem, mode=0o644)
    return pair


def _issue_leaf(
    ca: CertAndKey,
    *,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
    key: ec.EllipticCurvePrivateKey | None = None,
) -> CertAndKey:
    ca_cert = ca.certificate()
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the cluster CA key must be an ECDSA key")
    key = key or ec.generate_private_key(ec.SECP256R1())
    not_before = _now() - BACKDATE
    builder = (
        _base_builder(subject=subject, issuer=ca_cert.subject, public_key=key.public_key())
        .not_valid_before(not_before)
        .not_valid_after(min(not_before + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return CertAndKey(_cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def _base_builder(
    *, subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    # ECDSA keys sign; they never encipher keys, so keyEncipherment (which
    # kubeadm sets for its RSA keys) is left out.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        key = ca_cert.public_key()
        if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
            # Key-agreement keys cannot sign: no CA carries one (ours are ECDSA, see _issue_leaf).
            raise TypeError("the cluster CA certificate must carry a signing key") from None
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _covers(pair: CertAndKey, dns_names: Sequence[str], ips: Sequence[str]) -> bool:
    try:
        san = pair.certificate().extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    have_dns = set(san.value.get_values_for_type(x509.DNSName))
    have_ips = {str(a) for a in san.value.get_values_for_type(x509.IPAddress)}
    return set(dns_names) <= have_dns and {str(ipaddress.ip_address(a)) for a in ips} <= have_ips


def _unexpired(pair: CertAndKey) -> bool:
    return pair.certificate().not_valid_after_utc > _now()


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)  # the umask may have narrowed or the file pre-existed
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # SEC1 "EC PRIVATE KEY", the form kubeadm writes for ECDSA keys.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
