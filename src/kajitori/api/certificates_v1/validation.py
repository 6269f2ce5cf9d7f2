"""Validation of CertificateSigningRequests (upstream: pkg/apis/certificates/validation).

Owns what a CSR must be on create (a PEM ``CERTIFICATE REQUEST`` whose
signature verifies, known and unique usages, a well-formed signerName,
``expirationSeconds`` of at least 600, sane conditions, a PEM certificate)
and what an update may change, per endpoint: only ``/approval`` adds or
changes Approved/Denied conditions, only ``/status`` sets the certificate
(once), and no endpoint removes an Approved, Denied or Failed condition.
Like upstream, problems already stored are tolerated on update, so old data
stays editable.

Byte fields arrive base64 encoded; upstream reports a bad ``spec.request``
with Go's ``%#v`` of the bytes (``[]byte{0x2d, ...}``), reproduced by
``GoBytes``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kajitori.api import typecheck
from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1.validation.secrets import go_base64_decode
from kajitori.machinery import field, names

Object = dict[str, Any]

APPROVED = "Approved"
DENIED = "Denied"
FAILED = "Failed"
LEGACY_UNKNOWN_SIGNER = "kubernetes.io/legacy-unknown"
KUBE_APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
KUBE_APISERVER_CLIENT_KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"
MIN_EXPIRATION_SECONDS = 600

# Upstream's allValidUsages, listed sorted in NotSupported messages.
VALID_USAGES = (
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
)
_VALID_USAGES = frozenset(VALID_USAGES)
# Condition types whose status may only be "True".
_TRUE_ONLY_TYPES = frozenset((APPROVED, DENIED, FAILED))
_ALL_STATUSES = ("False", "True", "Unknown")

_SPEC = field.Path("spec")
_CONDITIONS = field.Path("status", "conditions")
_CERTIFICATE = field.Path("status", "certificate")


class GoBytes(bytes):
    """Bytes that render as Go's ``%#v`` of a ``[]byte`` in field errors."""

    def __repr__(self) -> str:
        return "[]byte{" + ", ".join(f"0x{b:x}" for b in self) + "}"


class _NilBytes(GoBytes):
    def __repr__(self) -> str:
        return "[]byte(nil)"


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Upstream's certificateValidationOptions: what this write may do or is forgiven."""

    allow_setting_approval_conditions: bool = False
    allow_setting_certificate: bool = False
    allow_both_approved_and_denied: bool = False
    allow_legacy_signer_name: bool = False
    allow_duplicate_condition_types: bool = False
    allow_empty_condition_type: bool = False
    allow_arbitrary_certificate: bool = False
    allow_unknown_usages: bool = False
    allow_duplicate_usages: bool = False


# ----- byte fields -----------------------------------------------------------------


def decoded_bytes(value: Any) -> bytes | None:
    """A ``[]byte`` field's bytes (None when absent or not decodable)."""
    if not isinstance(value, str):
        return None
    raw, bad = go_base64_decode(value)
    return None if bad is not None else raw


def request_bytes(obj: Object) -> bytes | None:
    return decoded_bytes(common.dict_at(obj, "spec").get("request"))


def certificate_bytes(obj: Object) -> bytes:
    return decoded_bytes(common.dict_at(obj, "status").get("certificate")) or b""


def decode_problem(obj: Object) -> str | None:
    """Go's JSON decoding error for the CSR's byte fields, or None (a 400 upstream)."""
    for section, key, go_type in _BYTE_FIELDS:
        value = common.dict_at(obj, section).get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return (
                f"json: cannot unmarshal {typecheck.json_kind(value)} into Go struct field "
                f"{go_type}.{section}.{key} of type []uint8"
            )
        _, bad = go_base64_decode(value)
        if bad is not None:
            return f"illegal base64 data at input byte {bad}"
    return None


_BYTE_FIELDS = (
    ("spec", "request", "CertificateSigningRequestSpec"),
    ("status", "certificate", "CertificateSigningRequestStatus"),
)


def encode_bytes(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# ----- PEM -------------------------------------------------------------------------


def _pem_blocks(data: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """The PEM blocks in ``data`` as Go's ``pem.Decode`` finds them: (type, headers, DER)."""
    blocks: list[tuple[str, dict[str, str], bytes]] = []
    rest = data
    while True:
        begin = rest.find(b"-----BEGIN ")
        if begin < 0:
            return blocks
        head_end = rest.find(b"-----", begin + 11)
        if head_end < 0:
            return blocks
        block_type = rest[begin + 11 : head_end].decode("latin-1")
        end_marker = b"-----END " + block_type.encode("latin-1") + b"-----"
        end = rest.find(end_marker, head_end + 5)
        if end < 0:
            return blocks
        body = rest[head_end + 5 : end]
        headers: dict[str, str] = {}
        lines = body.splitlines()
        content: list[bytes] = []
        for line in lines:
            text = line.strip()
            if b":" in text and not content:
                key, _, value = text.partition(b":")
                headers[key.decode("latin-1").strip()] = value.decode("latin-1").strip()
            elif text:
                content.append(text)
        try:
            der = base64.b64decode(b"".join(content), validate=True)
        except (binascii.Error, ValueError):
            return blocks
        blocks.append((block_type, headers, der))
        rest = rest[end + len(end_marker) :]


def parse_csr(pem_data: bytes) -> x509.CertificateSigningRequest:
    """The first PEM block as a PKCS#10 request (upstream's ParseCSR); ValueError if it is not."""
    blocks = _pem_blocks(pem_data)
    if not blocks or blocks[0][0] != "CERTIFICATE REQUEST":
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        return x509.load_der_x509_csr(blocks[0][2])
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("x509: malformed certificate request") from None


def _signature_problem(csr: x509.CertificateSigningRequest) -> str | None:
    """Go's CheckSignature error text for a request whose signature does not verify."""
    try:
        if csr.is_signature_valid:
            return None
    except (UnsupportedAlgorithm, ValueError):
        return "x509: cannot verify signature: algorithm unimplemented"
    try:
        key = csr.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "x509: cannot verify signature: algorithm unimplemented"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "x509: ECDSA verification failure"
    if isinstance(key, rsa.RSAPublicKey):
        return "crypto/rsa: verification error"
    return "x509: signature verification failure"


def request_problem(pem_data: bytes | None) -> str | None:
    """Why ``spec.request`` is not a valid, correctly signed CSR (None if it is)."""
    try:
        csr = parse_csr(pem_data or b"")
    except ValueError as exc:
        return str(exc)
    return _signature_problem(csr)


def certificate_problem(pem_data: bytes) -> str | None:
    """Why ``status.certificate`` is not a chain of PEM certificates (upstream's validateCertificate)."""
    if not pem_data:
        return None
    blocks = _pem_blocks(pem_data)
    if not blocks:
        return "must contain at least one CERTIFICATE PEM block"
    for block_type, headers, der in blocks:
        if block_type != "CERTIFICATE":
            return f'only CERTIFICATE PEM blocks are allowed, found "{block_type}"'
        if headers:
            return "no PEM block headers are permitted"
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            return "x509: malformed certificate"
    return None


# ----- signer names ----------------------------------------------------------------


def validate_signer_name(path: field.Path, signer: Any) -> field.ErrorList:
    """Upstream's ValidateSignerName: ``<domain with a dot>/<path of subdomains>``."""
    errs = field.ErrorList()
    if not isinstance(signer, str) or not signer:
        errs.append(field.required(path))
        return errs
    segments = signer.split("/")
    if len(segments) != 2:
        errs.append(
            field.invalid(
                path,
                signer,
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            )
        )
        return errs
    domain, rest = segments
    if len(domain) > 253:
        errs.append(field.too_long(path, "", 253))
    domain_labels = domain.split(".")
    for label in domain_labels:
        problems = names.is_dns1123_label(label)
        if problems:
            errs.extend(
                field.invalid(path, domain, f"validating label {_quote(label)}: {p}")
                for p in problems
            )
            break
    if len(domain_labels) < 2:
        errs.append(
            field.invalid(
                path, domain, "should be a domain with at least two segments separated by dots"
            )
        )
    for label in rest.split("."):
        problems = names.is_dns1123_subdomain(label)
        if problems:
            errs.extend(
                field.invalid(path, rest, f"validating label {_quote(label)}: {p}")
                for p in problems
            )
            break
    max_length = 253 + (253 + 63 + 1) + 1
    if len(signer) > max_length:
        errs.append(field.too_long(path, "", max_length))
    return errs


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----- create ----------------------------------------------------------------------


def _name_anything(name: str, prefix: bool) -> list[str]:
    # Upstream does not care what a certificate request is called.
    return []


def _conditions(obj: Object) -> list[Any]:
    value = common.dict_at(obj, "status").get("conditions")
    return value if isinstance(value, list) else []


def _spec(obj: Object) -> Object:
    return common.dict_at(obj, "spec")


def validate_csr(obj: Object, options: Options | None = None) -> field.ErrorList:
    """All problems with a CSR (upstream's validateCertificateSigningRequest)."""
    opts = options or options_for(obj, None)
    errs = common.validate_meta(obj, namespaced=False, name_validator=_name_anything)
    spec = _spec(obj)
    request = request_bytes(obj)
    problem = request_problem(request)
    if problem:
        shown = _NilBytes() if request is None else GoBytes(request)
        errs.append(field.invalid(_SPEC.child("request"), shown, problem))
    errs.extend(_validate_usages(spec.get("usages"), opts))
    signer = spec.get("signerName")
    if not opts.allow_legacy_signer_name and signer == LEGACY_UNKNOWN_SIGNER:
        errs.append(
            field.invalid(
                _SPEC.child("signerName"),
                signer,
                "the legacy signerName is not allowed via this API version",
            )
        )
    else:
        errs.extend(validate_signer_name(_SPEC.child("signerName"), signer))
    expiration = spec.get("expirationSeconds")
    if isinstance(expiration, int) and expiration < MIN_EXPIRATION_SECONDS:
        errs.append(
            field.invalid(
                _SPEC.child("expirationSeconds"),
                expiration,
                "may not specify a duration less than 600 seconds (10 minutes)",
            )
        )
    errs.extend(_validate_conditions(_conditions(obj), opts))
    if not opts.allow_arbitrary_certificate:
        problem = certificate_problem(certificate_bytes(obj))
        if problem:
            errs.append(field.invalid(_CERTIFICATE, "<certificate data>", problem))
    return errs


def _validate_usages(usages: Any, opts: Options) -> field.ErrorList:
    errs = field.ErrorList()
    path = _SPEC.child("usages")
    items = usages if isinstance(usages, list) else []
    if not items:
        errs.append(field.required(path))
    if not opts.allow_unknown_usages:
        for i, usage in enumerate(items):
            if usage not in _VALID_USAGES:
                errs.append(field.not_supported(path.index(i), usage, sorted(VALID_USAGES)))
    if not opts.allow_duplicate_usages:
        seen: set[Any] = set()
        for i, usage in enumerate(items):
            if usage in seen:
                errs.append(field.duplicate(path.index(i), usage))
            seen.add(usage)
    return errs


def _validate_conditions(conditions: list[Any], opts: Options) -> field.ErrorList:
    errs = field.ErrorList()
    seen: set[str] = set()
    approved = denied = False
    for i, condition in enumerate(conditions):
        item = condition if isinstance(condition, dict) else {}
        kind = item.get("type") or ""
        status = item.get("status") or ""
        path = _CONDITIONS.index(i)
        if not opts.allow_empty_condition_type and not kind:
            errs.append(field.required(path.child("type")))
        allowed = ("True",) if kind in _TRUE_ONLY_TYPES else _ALL_STATUSES
        if not status:
            errs.append(field.required(path.child("status")))
        elif status not in allowed:
            errs.append(field.not_supported(path.child("status"), status, allowed))
        if not opts.allow_both_approved_and_denied:
            if (kind == APPROVED and denied) or (kind == DENIED and approved):
                errs.append(
                    field.invalid(
                        path.child("type"),
                        kind,
                        "Approved and Denied conditions are mutually exclusive",
                    )
                )
            approved = approved or kind == APPROVED
            denied = denied or kind == DENIED
        if not opts.allow_duplicate_condition_types:
            if kind in seen:
                errs.append(field.duplicate(path.child("type"), kind))
            seen.add(kind)
    return errs


# ----- update ----------------------------------------------------------------------


def options_for(new: Object, old: Object | None) -> Options:
    """Upstream's getValidationOptions: tolerate on update what the stored object already has."""
    if old is None:
        return Options()
    old_types = [(c or {}).get("type") if isinstance(c, dict) else None for c in _conditions(old)]
    old_usages = _spec(old).get("usages")
    old_usages = old_usages if isinstance(old_usages, list) else []
    old_cert = certificate_bytes(old)
    return Options(
        allow_both_approved_and_denied=APPROVED in old_types and DENIED in old_types,
        allow_legacy_signer_name=_spec(old).get("signerName") == LEGACY_UNKNOWN_SIGNER,
        allow_duplicate_condition_types=len(set(old_types)) != len(old_types),
        allow_empty_condition_type=any(not t for t in old_types),
        allow_arbitrary_certificate=certificate_bytes(new) == old_cert
        or certificate_problem(old_cert) is not None,
        allow_unknown_usages=any(u not in _VALID_USAGES for u in old_usages),
        allow_duplicate_usages=len(set(map(str, old_usages))) != len(old_usages),
    )


def _of_type(obj: Object, kind: str) -> list[Any]:
    return [c for c in _conditions(obj) if isinstance(c, dict) and c.get("type") == kind]


def validate_csr_update(
    new: Object, old: Object, *, approval: bool = False, status: bool = False
) -> field.ErrorList:
    """An update's problems; ``approval``/``status`` name the subresource written through."""
    opts = dataclasses.replace(
        options_for(new, old),
        allow_setting_approval_conditions=approval,
        allow_setting_certificate=status,
    )
    errs = validate_csr(new, opts)
    for kind in (APPROVED, DENIED, FAILED):
        if len(_of_type(new, kind)) < len(_of_type(old, kind)):
            errs.append(
                field.forbidden(_CONDITIONS, f'updates may not remove a condition of type "{kind}"')
            )
    if not approval:
        for kind in (APPROVED, DENIED):
            before, after = _of_type(old, kind), _of_type(new, kind)
            if len(after) > len(before):
                errs.append(
                    field.forbidden(
                        _CONDITIONS, f'updates may not add a condition of type "{kind}"'
                    )
                )
            elif len(after) == len(before) and after != before:
                errs.append(
                    field.forbidden(
                        _CONDITIONS, f'updates may not modify a condition of type "{kind}"'
                    )
                )
    new_cert, old_cert = certificate_bytes(new), certificate_bytes(old)
    if new_cert != old_cert:
        if not status:
            errs.append(field.forbidden(_CERTIFICATE, "updates may not set certificate content"))
        elif old_cert:
            errs.append(
                field.forbidden(_CERTIFICATE, "updates may not modify existing certificate content")
            )
    errs.extend(common.validate_meta_update(new, old))
    return errs
