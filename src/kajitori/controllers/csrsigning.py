"""The CSR signing controller: approved CertificateSigningRequests get a certificate.

Upstream: pkg/controller/certificates/signer (kube-controller-manager's
``csrsigning``). Signs, with the cluster CA, approved requests for the
``kubernetes.io/kube-apiserver-client``, ``kube-apiserver-client-kubelet``
and ``kubelet-serving`` signers, and writes the PEM certificate to
``status.certificate`` through ``/status``. Requests that are pending,
denied, failed, already issued or for another signer are left alone; a
request the signer refuses (wrong usages, a kubelet request not naming a
node) gets a ``Failed`` condition (reason ``SignerValidationFailure``)
instead. The certificate lives for ``spec.expirationSeconds`` when that is
shorter than the controller's ``duration`` (upstream's
``--cluster-signing-duration``, one year), never less than ten minutes, and
never past the CA's own expiry; it is backdated five minutes unless shorter
than eight hours, as upstream's PermissiveSigningPolicy.

The CA key is injected (``ca``): ``kajitori up`` passes the cluster CA it
holds; without one the controller does nothing, as upstream's without
``--cluster-signing-{cert,key}-file`` (decision 0080). Reads come from the
informer; the one write is the status update, as the
``certificate-controller`` ServiceAccount.
"""

from __future__ import annotations

import copy
import datetime
import logging
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509 import oid

from kajitori.api.certificates_v1 import validation
from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]
CSRS = rest.Resource(
    "certificates.k8s.io", "v1", "certificatesigningrequests", False, "CertificateSigningRequest"
)
# Upstream's --cluster-signing-duration default (8760h).
DEFAULT_DURATION = datetime.timedelta(days=365)
MIN_DURATION = datetime.timedelta(minutes=10)
BACKDATE = datetime.timedelta(minutes=5)
SHORT = datetime.timedelta(hours=8)
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"

# Usage names -> x509 KeyUsage flags (cryptography's argument names).
_KEY_USAGES = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_EXT_KEY_USAGES = {
    "any": oid.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": oid.ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": oid.ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": oid.ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": oid.ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": oid.ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": oid.ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": oid.ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


class SignerValidationError(Exception):
    """The signer refuses this request (a Failed condition, not a retry)."""


# ----- which requests each signer accepts ------------------------------------------


def _check_apiserver_client(csr: x509.CertificateSigningRequest, usages: set[str]) -> None:
    for usage in usages:
        if usage not in ("digital signature", "key encipherment", "client auth"):
            raise SignerValidationError(f"invalid usage for client certificate: {usage}")
    if "client auth" not in usages:
        raise SignerValidationError("missing required usage for client certificate: client auth")


def _organizations(csr: x509.CertificateSigningRequest) -> list[str]:
    return [str(a.value) for a in csr.subject.get_attributes_for_oid(oid.NameOID.ORGANIZATION_NAME)]


def _common_name(csr: x509.CertificateSigningRequest) -> str:
    names = csr.subject.get_attributes_for_oid(oid.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _sans(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _usages_match(usages: set[str], required: tuple[str, ...]) -> None:
    with_rsa = set(required) | {"key encipherment"}
    if usages != set(required) and usages != with_rsa:
        raise SignerValidationError(f"usages did not match {sorted(with_rsa)}")


def _check_kubelet_client(csr: x509.CertificateSigningRequest, usages: set[str]) -> None:
    """Upstream's ValidateKubeletClientCSR."""
    if _organizations(csr) != [NODES_GROUP]:
        raise SignerValidationError("subject organization is not system:nodes")
    sans = _sans(csr)
    if sans is not None:
        for kind, label in (
            (x509.DNSName, "DNS"),
            (x509.RFC822Name, "Email"),
            (x509.IPAddress, "IP"),
            (x509.UniformResourceIdentifier, "URI"),
        ):
            if sans.get_values_for_type(kind):
                raise SignerValidationError(f"{label} subjectAltNames are not allowed")
    if not _common_name(csr).startswith(NODE_PREFIX):
        raise SignerValidationError("subject common name does not begin with system:node:")
    _usages_match(usages, ("digital signature", "client auth"))


def _check_kubelet_serving(csr: x509.CertificateSigningRequest, usages: set[str]) -> None:
    """Upstream's ValidateKubeletServingCSR."""
    if _organizations(csr) != [NODES_GROUP]:
        raise SignerValidationError("subject organization is not system:nodes")
    sans = _sans(csr)
    dns = sans.get_values_for_type(x509.DNSName) if sans else []
    ips = sans.get_values_for_type(x509.IPAddress) if sans else []
    if not dns and not ips:
        raise SignerValidationError("DNS or IP subjectAltName is required")
    if sans is not None and sans.get_values_for_type(x509.RFC822Name):
        raise SignerValidationError("Email subjectAltNames are not allowed")
    if sans is not None and sans.get_values_for_type(x509.UniformResourceIdentifier):
        raise SignerValidationError("URI subjectAltNames are not allowed")
    _usages_match(usages, ("digital signature", "server auth"))
    if not _common_name(csr).startswith(NODE_PREFIX):
        raise SignerValidationError("subject common name does not begin with system:node:")


SIGNERS = {
    validation.KUBE_APISERVER_CLIENT_SIGNER: _check_apiserver_client,
    validation.KUBE_APISERVER_CLIENT_KUBELET_SIGNER: _check_kubelet_client,
    validation.KUBELET_SERVING_SIGNER: _check_kubelet_serving,
}


# ----- signing ---------------------------------------------------------------------


def certificate_duration(
    expiration_seconds: Any, maximum: datetime.timedelta = DEFAULT_DURATION
) -> datetime.timedelta:
    """The certificate's life: the requested one within [10 minutes, ``maximum``]."""
    if not isinstance(expiration_seconds, int):
        return maximum
    requested = datetime.timedelta(seconds=expiration_seconds)
    return max(MIN_DURATION, min(requested, maximum))


def _key_usage(usages: list[str]) -> x509.KeyUsage | None:
    flags = {name: False for name in set(_KEY_USAGES.values())}
    for usage in usages:
        if usage in _KEY_USAGES:
            flags[_KEY_USAGES[usage]] = True
    if not any(flags.values()):
        return None
    if not flags["key_agreement"]:
        # x509 ties encipher/decipher-only to key agreement (cryptography enforces it).
        flags["encipher_only"] = flags["decipher_only"] = False
    return x509.KeyUsage(**flags)


class SigningCA(Protocol):
    """The CA pair the controller signs with (``auth.pki.CertAndKey`` is one); passed in,
    not imported, as controllers reach nothing of the API server's but the API."""

    @property
    def cert_pem(self) -> bytes: ...

    @property
    def key_pem(self) -> bytes: ...


def sign(
    ca: SigningCA,
    request: x509.CertificateSigningRequest,
    usages: list[str],
    duration: datetime.timedelta,
    *,
    now: datetime.datetime | None = None,
) -> bytes:
    """A PEM certificate for ``request``'s subject, names and key, issued by ``ca``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError("the signing CA key must be an ECDSA or RSA key")
    public_key = request.public_key()
    if not isinstance(
        public_key,
        ec.EllipticCurvePublicKey
        | rsa.RSAPublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        raise SignerValidationError("unsupported public key type")
    now = now or datetime.datetime.now(datetime.UTC)
    not_before = now - BACKDATE
    # Short-lived certificates are not backdated at their end (upstream's policy).
    not_after = now + duration if duration < SHORT else not_before + duration
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    key_usage = _key_usage(usages)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    extended = list(dict.fromkeys(_EXT_KEY_USAGES[u] for u in usages if u in _EXT_KEY_USAGES))
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    builder = builder.add_extension(_authority_key_id(ca_cert), critical=False)
    sans = _sans(request)
    if sans is not None and len(sans) > 0:
        builder = builder.add_extension(sans, critical=len(request.subject) == 0)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        key = ca_cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


# ----- the controller --------------------------------------------------------------


def _conditions(csr: Object) -> list[Object]:
    status = csr.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return [c for c in conditions or () if isinstance(c, dict)]


def _has(csr: Object, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in _conditions(csr))


def ready_to_sign(csr: Object) -> bool:
    """Approved, not denied, not failed and not yet issued (upstream's handle preconditions)."""
    if validation.certificate_bytes(csr):
        return False
    if not _has(csr, validation.APPROVED) or _has(csr, validation.DENIED):
        return False
    return not _has(csr, validation.FAILED)


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CSRSigningController(base.QueueController[str]):
    """Signs approved CSRs of the kubernetes.io signers; ``run(workers)`` until ``shut_down``."""

    name = "csrsigning"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        ca: SigningCA | None = None,
        duration: datetime.timedelta = DEFAULT_DURATION,
    ) -> None:
        super().__init__()
        self.client = client
        self.ca = ca
        self.duration = duration
        self.csrs: informer.Informer | None = None
        if ca is not None:
            self.csrs = self.watch(
                informers.informer(CSRS),
                on_add=self.enqueue,
                on_update=lambda _, new: self.enqueue(new),
            )

    async def run(self, workers: int = 1) -> None:
        if self.ca is None:
            # Upstream skips its signer without --cluster-signing-{cert,key}-file.
            log.warning("%s: no CA key given; not signing", self.name)
            return
        await super().run(workers)

    async def sync(self, key: str) -> None:
        assert self.csrs is not None and self.ca is not None
        cached = self.csrs.indexer.get(key)
        if cached is None or not ready_to_sign(cached):
            return
        spec = cached.get("spec") or {}
        check = SIGNERS.get(spec.get("signerName") or "")
        if check is None:
            return  # another signer's request
        request = validation.parse_csr(validation.request_bytes(cached) or b"")
        usages = [u for u in spec.get("usages") or () if isinstance(u, str)]
        csr = copy.deepcopy(cached)
        try:
            check(request, set(usages))
            duration = certificate_duration(spec.get("expirationSeconds"), self.duration)
            pem = sign(self.ca, request, usages, duration)
        except SignerValidationError as exc:
            csr.setdefault("status", {}).setdefault("conditions", []).append(
                {
                    "type": validation.FAILED,
                    "status": "True",
                    "reason": "SignerValidationFailure",
                    "message": str(exc),
                    "lastUpdateTime": _now_rfc3339(),
                }
            )
        else:
            csr.setdefault("status", {})["certificate"] = validation.encode_bytes(pem)
        try:
            await self.client.update_status(CSRS, csr)
        except rest.ApiError as exc:
            if exc.not_found:
                return
            raise  # a conflict: the cache lags; the next event or retry sees the new object
