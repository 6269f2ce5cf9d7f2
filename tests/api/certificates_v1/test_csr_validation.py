"""Validation of certificates.k8s.io/v1 CertificateSigningRequests, and the signer's rules."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import oid

from kajitori.api.certificates_v1 import validation
from kajitori.auth import pki
from kajitori.controllers import csrsigning

Object = dict[str, Any]
_KEY = ec.generate_private_key(ec.SECP256R1())


def _request(cn: str = "jane", *orgs: str, sans: list[x509.GeneralName] | None = None) -> bytes:
    names = [x509.NameAttribute(oid.NameOID.COMMON_NAME, cn)]
    names += [x509.NameAttribute(oid.NameOID.ORGANIZATION_NAME, o) for o in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _csr(**spec: Any) -> Object:
    body = {
        "request": base64.b64encode(_request()).decode(),
        "signerName": "kubernetes.io/kube-apiserver-client",
        "usages": ["client auth"],
        **spec,
    }
    meta = {"name": "jane", "resourceVersion": "1"}
    return {"metadata": meta, "spec": {k: v for k, v in body.items() if v is not None}}


def _messages(errs: Any) -> list[str]:
    return [str(e) for e in errs]


def test_a_client_request_is_valid() -> None:
    assert _messages(validation.validate_csr(_csr(expirationSeconds=600))) == []


def test_missing_request_renders_as_go_nil_bytes() -> None:
    assert _messages(validation.validate_csr(_csr(request=None))) == [
        "spec.request: Invalid value: []byte(nil): PEM block type must be CERTIFICATE REQUEST"
    ]


def test_a_certificate_is_not_a_request() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    (message,) = _messages(validation.validate_csr(_csr(request=base64.b64encode(pem).decode())))
    assert message.startswith("spec.request: Invalid value: []byte{0x2d, 0x2d, 0x2d, 0x2d, 0x2d,")
    assert message.endswith(": PEM block type must be CERTIFICATE REQUEST")


@pytest.mark.parametrize(
    ("signer", "expected"),
    [
        ("example.com/my-signer", []),
        ("example.com/ns.name", []),
        ("", ["spec.signerName: Required value"]),
        (
            "example.com",
            [
                'spec.signerName: Invalid value: "example.com": must be a fully qualified domain '
                "and path of the form 'example.com/signer-name'"
            ],
        ),
        (
            "a/b/c",
            [
                'spec.signerName: Invalid value: "a/b/c": must be a fully qualified domain and '
                "path of the form 'example.com/signer-name'"
            ],
        ),
        (
            "Example.com/x",
            [
                'spec.signerName: Invalid value: "Example.com": validating label "Example": a '
                "lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
                "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
                "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
        (
            "kubernetes.io/legacy-unknown",
            [
                'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy '
                "signerName is not allowed via this API version"
            ],
        ),
    ],
)
def test_signer_names(signer: str, expected: list[str]) -> None:
    assert _messages(validation.validate_csr(_csr(signerName=signer or None))) == expected


def test_usages_are_required() -> None:
    assert _messages(validation.validate_csr(_csr(usages=[]))) == ["spec.usages: Required value"]


def test_conditions_true_only_and_exclusive() -> None:
    csr = _csr()
    csr["status"] = {
        "conditions": [
            {"type": "Approved", "status": "False"},
            {"type": "Denied", "status": "True"},
            {"type": "Custom", "status": "Maybe"},
            {"type": "Custom", "status": "True"},
        ]
    }
    assert _messages(validation.validate_csr(csr)) == [
        'status.conditions[0].status: Unsupported value: "False": supported values: "True"',
        'status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are '
        "mutually exclusive",
        'status.conditions[2].status: Unsupported value: "Maybe": supported values: "False", '
        '"True", "Unknown"',
        'status.conditions[3].type: Duplicate value: "Custom"',
    ]


def test_stored_problems_are_tolerated_on_update() -> None:
    """An old object with an unknown usage stays editable (upstream's compatibility options)."""
    old = _csr(usages=["client auth", "flying"])
    new = _csr(usages=["client auth", "flying"])
    new["metadata"]["labels"] = {"a": "b"}
    assert _messages(validation.validate_csr_update(new, old)) == []
    assert _messages(validation.validate_csr(new)) != []


def test_certificate_only_through_status_and_only_once() -> None:
    old = _csr()
    new = _csr()
    cert = pki.generate_ca().cert_pem
    new["status"] = {"certificate": base64.b64encode(cert).decode()}
    assert _messages(validation.validate_csr_update(new, old)) == [
        "status.certificate: Forbidden: updates may not set certificate content"
    ]
    assert _messages(validation.validate_csr_update(new, old, status=True)) == []
    again = _csr()
    again["status"] = {"certificate": base64.b64encode(pki.generate_ca().cert_pem).decode()}
    assert _messages(validation.validate_csr_update(again, new, status=True)) == [
        "status.certificate: Forbidden: updates may not modify existing certificate content"
    ]


def test_approval_conditions_only_through_approval() -> None:
    old = _csr()
    new = _csr()
    new["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    assert _messages(validation.validate_csr_update(new, old)) == [
        'status.conditions: Forbidden: updates may not add a condition of type "Approved"'
    ]
    assert _messages(validation.validate_csr_update(new, old, approval=True)) == []
    assert _messages(validation.validate_csr_update(old, new, approval=True)) == [
        'status.conditions: Forbidden: updates may not remove a condition of type "Approved"'
    ]


def test_bad_base64_is_a_decode_problem() -> None:
    assert validation.decode_problem(_csr(request="abc")) == "illegal base64 data at input byte 0"
    assert validation.decode_problem(_csr(request=5)) == (
        "json: cannot unmarshal number into Go struct field "
        "CertificateSigningRequestSpec.spec.request of type []uint8"
    )


# ----- the signer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, datetime.timedelta(days=365)),
        (600, datetime.timedelta(minutes=10)),
        (86400, datetime.timedelta(days=1)),
        (10 * 365 * 86400, datetime.timedelta(days=365)),
    ],
)
def test_duration_is_the_requested_one_capped(seconds: Any, expected: datetime.timedelta) -> None:
    assert csrsigning.certificate_duration(seconds) == expected


def test_short_certificates_end_exactly_after_the_duration() -> None:
    ca = pki.generate_ca()
    request = x509.load_pem_x509_csr(_request())
    # A moment well inside the CA's validity (sign takes "now" for determinism).
    now = ca.certificate().not_valid_before_utc + datetime.timedelta(days=1)
    cert = x509.load_pem_x509_certificate(
        csrsigning.sign(ca, request, ["client auth"], datetime.timedelta(hours=1), now=now)
    )
    assert cert.not_valid_before_utc == now - csrsigning.BACKDATE
    assert cert.not_valid_after_utc == now + datetime.timedelta(hours=1)
    assert cert.issuer == ca.certificate().subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca


def test_kubelet_requests_must_name_a_node() -> None:
    request = x509.load_pem_x509_csr(_request("system:node:a", "system:nodes"))
    csrsigning._check_kubelet_client(request, {"digital signature", "client auth"})
    wrong = x509.load_pem_x509_csr(_request("jane", "system:nodes"))
    with pytest.raises(csrsigning.SignerValidationError, match="does not begin with system:node:"):
        csrsigning._check_kubelet_client(wrong, {"digital signature", "client auth"})
    serving = x509.load_pem_x509_csr(_request("system:node:a", "system:nodes"))
    with pytest.raises(csrsigning.SignerValidationError, match="DNS or IP subjectAltName"):
        csrsigning._check_kubelet_serving(serving, {"digital signature", "server auth"})


def test_only_approved_unsigned_requests_are_signed() -> None:
    approved = {"status": {"conditions": [{"type": "Approved", "status": "True"}]}}
    assert csrsigning.ready_to_sign(approved)
    denied = {"status": {"conditions": [{"type": "Denied", "status": "True"}]}}
    assert not csrsigning.ready_to_sign(denied)
    failed = {
        "status": {
            "conditions": [
                {"type": "Approved", "status": "True"},
                {"type": "Failed", "status": "True"},
            ]
        }
    }
    assert not csrsigning.ready_to_sign(failed)
    signed = {
        "status": {
            "conditions": [{"type": "Approved", "status": "True"}],
            "certificate": base64.b64encode(b"x").decode(),
        }
    }
    assert not csrsigning.ready_to_sign(signed)
