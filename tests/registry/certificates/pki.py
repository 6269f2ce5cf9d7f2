"""Certificates and keys for the certificates.k8s.io tests, made with ``cryptography``."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def certificate(
    subject: str,
    *,
    ca: bool = True,
    key: PrivateKey | None = None,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    public_key: object | None = None,
    not_before: datetime.datetime | None = None,
    lifetime: datetime.timedelta = datetime.timedelta(days=1),
    constraints: bool = True,
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate for ``subject`` (self-signed unless ``issuer``) and its key."""
    own = key or ec.generate_private_key(ec.SECP256R1())
    start = not_before or now() - datetime.timedelta(minutes=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    signer_cert, signer_key = issuer if issuer else (None, own)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(signer_cert.subject if signer_cert else name)
        .public_key(public_key or own.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
    )
    if constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=None), critical=True
        )
    algorithm = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer_key, algorithm), own  # type: ignore[arg-type]


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def stub_request(key: PrivateKey) -> bytes:
    """An empty PKCS#10 request signed by ``key``, DER (what kubelet sends)."""
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return csr.sign(key, algorithm).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]
