"""Validation of PodCertificateRequests (upstream: pkg/apis/certificates/validation).

Owns what a PodCertificateRequest must be on create: a well-formed
signerName; pod, service account and node names that are DNS subdomains and
UIDs that are set and at most 128 bytes; ``unverifiedUserAnnotations`` that
pass as annotations with domain-prefixed keys; ``maxExpirationSeconds`` in
[3600, 86400] for ``kubernetes.io`` signers and [3600, 7862400] for the
others (defaulted to 86400, ``set_defaults``); and a ``stubPKCS10Request``
of at most 10 KiB that is a PKCS#10 request whose signature verifies, for an
Ed25519, ECDSA P-256/P-384/P-521 or RSA 3072/4096 key.

After create the spec never changes, and ``/status`` may move the request
once into one terminal state: Denied or Failed (conditions only), or Issued
with a certificate chain whose leaf is issued to the requested key, lasts
between an hour and ``maxExpirationSeconds``, and whose ``notBefore`` /
``notAfter`` / ``beginRefreshAt`` agree with it. A terminal status is
immutable. Who may write the status (``sign`` on the signer) is the
``PodCertificateRequest`` admission plugin's check
(``admission.plugins.pod_certificate_request``).
"""

from __future__ import annotations

import datetime
import email.utils
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kajitori.api.certificates_v1 import validation
from kajitori.api.core_v1.validation.secrets import go_base64_decode
from kajitori.machinery import conditions, field, names, objectmeta, times

Object = dict[str, Any]

ISSUED = "Issued"
DENIED = "Denied"
FAILED = "Failed"
TERMINAL = (ISSUED, DENIED, FAILED)

DEFAULT_MAX_EXPIRATION_SECONDS = 86400
MIN_MAX_EXPIRATION_SECONDS = 3600
KUBERNETES_MAX_MAX_EXPIRATION_SECONDS = 86400
MAX_MAX_EXPIRATION_SECONDS = 91 * 86400
MAX_STUB_PKCS10_REQUEST_SIZE = 10 * 1024
MAX_CERTIFICATE_CHAIN_SIZE = 100 * 1024
_MAX_UID = 128

_SPEC = field.Path("spec")
_STUB = _SPEC.child("stubPKCS10Request")
_CHAIN = field.Path("status", "certificateChain")
_NOT_BEFORE = field.Path("status", "notBefore")
_NOT_AFTER = field.Path("status", "notAfter")
_BEGIN_REFRESH = field.Path("status", "beginRefreshAt")
_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _spec(obj: Object) -> Object:
    return _dict(obj.get("spec"))


def _status(obj: Object) -> Object:
    return _dict(obj.get("status"))


def set_defaults(obj: Object) -> None:
    """SetDefaults_PodCertificateRequestSpec: a day unless asked otherwise."""
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("maxExpirationSeconds") is None:
        spec["maxExpirationSeconds"] = DEFAULT_MAX_EXPIRATION_SECONDS


def stub_request_bytes(obj: Object) -> bytes:
    value = _spec(obj).get("stubPKCS10Request")
    if not isinstance(value, str):
        return b""
    raw, bad = go_base64_decode(value)
    return b"" if bad is not None else raw


def decode_problem(obj: Object) -> str | None:
    """Go's JSON decoding error for ``spec.stubPKCS10Request`` (a 400 upstream), or None."""
    value = _spec(obj).get("stubPKCS10Request")
    if isinstance(value, str):
        _, bad = go_base64_decode(value)
        if bad is not None:
            return f"illegal base64 data at input byte {bad}"
    return None


def is_kubernetes_signer(signer: str) -> bool:
    """Signers of the ``kubernetes.io`` domain (and its subdomains) are the project's."""
    domain = signer.split("/", 1)[0]
    return domain == "kubernetes.io" or domain.endswith(".kubernetes.io")


def validate_pcr_create(obj: Object) -> field.ErrorList:
    """ValidatePodCertificateRequestCreate."""
    spec = _spec(obj)
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    signer = str(spec.get("signerName") or "")
    errs.extend(validation.validate_signer_name(_SPEC.child("signerName"), signer))
    annotations = spec.get("unverifiedUserAnnotations")
    if annotations is not None:
        errs.extend(_validate_user_annotations(_dict(annotations)))
    for name_key, uid_key in (
        ("podName", "podUID"),
        ("serviceAccountName", "serviceAccountUID"),
        ("nodeName", "nodeUID"),
    ):
        errs.extend(_validate_name_and_uid(spec, name_key, uid_key))
    seconds = spec.get("maxExpirationSeconds")
    if not isinstance(seconds, int):
        errs.append(field.required(_SPEC.child("maxExpirationSeconds"), "must be set"))
        return errs
    highest = (
        KUBERNETES_MAX_MAX_EXPIRATION_SECONDS
        if is_kubernetes_signer(signer)
        else MAX_MAX_EXPIRATION_SECONDS
    )
    if not MIN_MAX_EXPIRATION_SECONDS <= seconds <= highest:
        errs.append(
            field.invalid(
                _SPEC.child("maxExpirationSeconds"),
                seconds,
                f"must be in the range [{MIN_MAX_EXPIRATION_SECONDS}, {highest}]",
            )
        )
    errs.extend(_validate_stub_request(stub_request_bytes(obj)))
    return errs


def _validate_name_and_uid(spec: Object, name_key: str, uid_key: str) -> field.ErrorList:
    errs = field.ErrorList()
    name = str(spec.get(name_key) or "")
    errs.extend(
        field.invalid(_SPEC.child(name_key), name, message)
        for message in names.name_is_dns_subdomain(name, False)
    )
    uid = str(spec.get(uid_key) or "")
    if not uid:
        errs.append(field.invalid(_SPEC.child(uid_key), uid, "must not be empty"))
    if len(uid.encode()) > _MAX_UID:
        errs.append(field.too_long(_SPEC.child(uid_key), uid, _MAX_UID))
    return errs


def _validate_user_annotations(annotations: Object) -> field.ErrorList:
    """Annotation rules, plus a domain prefix on every key."""
    path = _SPEC.child("unverifiedUserAnnotations")
    errs = objectmeta.validate_annotations(annotations, path)
    for key in annotations:
        if "/" not in key:
            errs.append(
                field.invalid(path, key, 'must be a domain-prefixed key (such as "acme.io/foo")')
            )
    return errs


def key_problem(key: Any) -> tuple[str, str] | None:
    """(bad value, detail) when ``key`` is not a supported subject key; None when it is."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _CURVES:
            return None
        return f"curve {key.curve.name}", "elliptic public keys must use curve P256, P384, or P521"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size in (3072, 4096):
            return None
        return f"{key.key_size}-bit modulus", "RSA keys must have modulus size 3072 or 4096"
    return "", "unknown public key type; supported types are Ed25519, ECDSA, and RSA"


def _validate_stub_request(raw: bytes) -> field.ErrorList:
    errs = field.ErrorList()
    if len(raw) > MAX_STUB_PKCS10_REQUEST_SIZE:
        errs.append(field.too_long(_STUB, "", MAX_STUB_PKCS10_REQUEST_SIZE))
        return errs
    try:
        csr = x509.load_der_x509_csr(raw)
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        errs.append(
            field.invalid(_STUB, validation.GoBytes(raw), "must be a valid PKCS#10 request")
        )
        return errs
    problem = key_problem(key)
    if problem is not None:
        errs.append(field.invalid(_STUB, problem[0], problem[1]))
        return errs
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        errs.append(field.FieldError(field.ErrorType.INVALID, str(_STUB), detail=_BAD_SIGNATURE))
    return errs


_BAD_SIGNATURE = "could not verify PKCS#10 request signature"


def validate_pcr_update(obj: Object, old: Object) -> field.ErrorList:
    """ValidatePodCertificateRequestUpdate: metadata only; the whole spec is immutable."""
    errs = objectmeta.validate_object_meta_update(
        obj.get("metadata"), old.get("metadata"), path=field.Path("metadata")
    )
    errs.extend(objectmeta.validate_immutable_field(_spec(obj), _spec(old), _SPEC))
    return errs


# ----- /status ---------------------------------------------------------------------


def _omitted(path: field.Path, detail: str) -> field.FieldError:
    """An Invalid error whose value upstream omits (field.OmitValueType)."""
    return field.FieldError(field.ErrorType.INVALID, str(path), detail=detail)


def _go_duration(delta: datetime.timedelta) -> str:
    """Go's time.Duration String() for whole seconds ("1h0m0s", "25h0m0s", "59m59s")."""
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def _go_time(value: datetime.datetime) -> str:
    """A time as Go prints a time.Time value (``2006-01-02 15:04:05 +0000 UTC``)."""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def validate_pcr_status_update(
    obj: Object, old: Object, *, now: datetime.datetime | None = None
) -> field.ErrorList:
    """ValidatePodCertificateRequestStatusUpdate (the strategy put the stored spec back)."""
    errs = objectmeta.validate_object_meta_update(
        obj.get("metadata"), old.get("metadata"), path=field.Path("metadata")
    )
    if errs:
        return errs
    errs.extend(_validate_status_conditions(obj))
    if errs:
        return errs
    status, old_status = _status(obj), _status(old)
    if any(conditions.is_true(old, kind) for kind in TERMINAL):
        if not _same_status(status, old_status):
            errs.append(
                _omitted(
                    field.Path("status"),
                    "immutable after PodCertificateRequest is issued, denied, or failed",
                )
            )
        return errs
    if conditions.is_true(obj, DENIED) or conditions.is_true(obj, FAILED):
        only_conditions = {k: v for k, v in status.items() if k == "conditions"}
        if not _same_status(status, only_conditions):
            errs.append(
                _omitted(
                    field.Path("status"),
                    "non-condition status fields must be empty when denying or failing the "
                    "PodCertificateRequest",
                )
            )
        return errs
    if conditions.is_true(obj, ISSUED):
        return _validate_issued(obj, old, now or datetime.datetime.now(datetime.UTC))
    if not _same_status(status, old_status):
        errs.append(
            _omitted(
                field.Path("status"),
                'status is immutable unless transitioning to "Issued", "Denied", or "Failed"',
            )
        )
    return errs


def _same_status(a: Object, b: Object) -> bool:
    """Semantic equality: absent and empty are the same, times compare by instant."""

    def norm(status: Object) -> Object:
        out = {k: v for k, v in status.items() if v not in (None, "", [], {})}
        for key in ("notBefore", "notAfter", "beginRefreshAt"):
            if key in out:
                out[key] = times.parse_time(out[key])
        return out

    return norm(a) == norm(b)


def _validate_status_conditions(obj: Object) -> field.ErrorList:
    errs = field.ErrorList()
    raw = _status(obj).get("conditions")
    items = raw if isinstance(raw, list) else []
    known = 0
    path = field.Path("status", "conditions")
    for i, condition in enumerate(items):
        item = _dict(condition)
        kind = str(item.get("type") or "")
        if kind in TERMINAL:
            known += 1
            if known > 1:
                errs.append(
                    field.invalid(
                        path.index(i).child("type"),
                        kind,
                        'There may be at most one condition with type "Issued", "Denied", or "Failed"',
                    )
                )
            if item.get("status") != "True":
                errs.append(
                    field.not_supported(
                        path.index(i).child("status"), str(item.get("status") or ""), ("True",)
                    )
                )
        else:
            errs.append(field.not_supported(path.index(i).child("type"), kind, TERMINAL))
    errs.extend(conditions.validate_conditions(items, path))
    return errs


def _validate_issued(obj: Object, old: Object, now: datetime.datetime) -> field.ErrorList:
    errs = field.ErrorList()
    status = _status(obj)
    chain = str(status.get("certificateChain") or "")
    if len(chain.encode()) > MAX_CERTIFICATE_CHAIN_SIZE:
        errs.append(field.too_long(_CHAIN, chain, MAX_CERTIFICATE_CHAIN_SIZE))
        return errs
    blocks = validation._pem_blocks(chain.encode())
    if not blocks:
        errs.append(
            field.invalid(
                _CHAIN, chain, "issued certificate chain must contain at least one certificate"
            )
        )
        return errs
    if blocks[0][0] != "CERTIFICATE":
        errs.append(
            field.invalid(
                _CHAIN,
                chain,
                "issued certificate chain must consist entirely of CERTIFICATE PEM blocks",
            )
        )
        return errs
    try:
        leaf = x509.load_der_x509_certificate(blocks[0][2])
        leaf_key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm):
        errs.append(field.invalid(_CHAIN, chain, "leaf certificate does not parse as valid X.509"))
        return errs
    errs.extend(_validate_leaf_names(leaf))
    try:
        wanted = x509.load_der_x509_csr(stub_request_bytes(old)).public_key()
    except (ValueError, UnsupportedAlgorithm):
        errs.append(field.invalid(_STUB, "", "must be a valid PKCS#10 request"))
        return errs
    if wanted != leaf_key:
        errs.append(
            field.invalid(
                _CHAIN, chain, "leaf certificate was not issued to the requested public key"
            )
        )
        return errs
    errs.extend(_validate_times(obj, leaf, now))
    if errs:
        return errs
    for block_type, _, der in blocks[1:]:
        if block_type != "CERTIFICATE":
            # Upstream's message spells CERTIFICATE this way here.
            errs.append(
                field.invalid(
                    _CHAIN,
                    chain,
                    "issued certificate chain must consist entirely of CERTFICATE PEM blocks",
                )
            )
            return errs
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            errs.append(
                field.invalid(
                    _CHAIN, chain, "intermediate certificate does not parse as valid X.509"
                )
            )
            return errs
    return errs


def _validate_leaf_names(leaf: x509.Certificate) -> field.ErrorList:
    errs = field.ErrorList()
    try:
        alt = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return errs
    for dns in alt.get_values_for_type(x509.DNSName):
        if dns == "":
            errs.append(
                field.invalid(_CHAIN, dns, "leaf certificate should not contain empty DNSName")
            )
        if ".." in dns:
            errs.append(
                field.invalid(_CHAIN, dns, "leaf certificate's DNSName should not contain '..'")
            )
        if dns.startswith(".") or dns.endswith("."):
            errs.append(
                field.invalid(
                    _CHAIN, dns, "leaf certificate's DNSName should not start or end with '.'"
                )
            )
    for address in alt.get_values_for_type(x509.RFC822Name):
        if "@" not in email.utils.parseaddr(address)[1]:
            errs.append(
                field.invalid(
                    _CHAIN, address, "leaf certificate should not contain invalid EmailAddress"
                )
            )
    return errs


def _validate_times(obj: Object, leaf: x509.Certificate, now: datetime.datetime) -> field.ErrorList:
    errs = field.ErrorList()
    status = _status(obj)
    not_before = times.parse_time(status.get("notBefore"))
    not_after = times.parse_time(status.get("notAfter"))
    refresh = times.parse_time(status.get("beginRefreshAt"))
    if not_before is None:
        errs.append(
            field.required(
                _NOT_BEFORE, "must be present and consistent with the issued certificate"
            )
        )
    if not_after is None:
        errs.append(
            field.required(_NOT_AFTER, "must be present and consistent with the issued certificate")
        )
    if refresh is None:
        errs.append(
            field.required(
                _BEGIN_REFRESH, "must be present and in the range [notbefore+10min, notafter-10min]"
            )
        )
    if not_before is None or not_after is None or refresh is None:
        return errs
    leaf_start, leaf_end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    skew = datetime.timedelta(minutes=5)
    ten = datetime.timedelta(minutes=10)
    seconds = int(_spec(obj).get("maxExpirationSeconds") or 0)
    lifetime = leaf_end - leaf_start
    checks: tuple[tuple[bool, field.Path, Any, str], ...] = (
        (
            not_before != leaf_start,
            _NOT_BEFORE,
            _go_time(not_before),
            "must be set to the NotBefore time encoded in the leaf certificate",
        ),
        (
            not (now - skew < not_before < now + skew),
            _NOT_BEFORE,
            _go_time(not_before),
            "must be set to within 5 minutes of kube-apiserver's current time",
        ),
        (
            not_after != leaf_end,
            _NOT_AFTER,
            _go_time(not_after),
            "must be set to the NotAfter time encoded in the leaf certificate",
        ),
        (
            lifetime < datetime.timedelta(hours=1),
            _CHAIN,
            _go_duration(lifetime),
            "leaf certificate lifetime must be >= 1 hour",
        ),
        (
            lifetime > datetime.timedelta(seconds=seconds),
            _CHAIN,
            _go_duration(lifetime),
            f"leaf certificate lifetime must be <= spec.maxExpirationSeconds ({seconds})",
        ),
        (
            refresh < not_before + ten,
            _BEGIN_REFRESH,
            _go_time(refresh),
            "must be at least 10 minutes after status.notBefore",
        ),
        (
            refresh > not_after - ten,
            _BEGIN_REFRESH,
            _go_time(refresh),
            "must be at least 10 minutes before status.notAfter",
        ),
    )
    # Upstream stops at the first failing check.
    for failing, path, value, detail in checks:
        if failing:
            errs.append(field.invalid(path, _GoText(value), detail))
            break
    return errs


class _GoText:
    """A bad value Go prints through its String() method, unquoted (time.Time, Duration)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text
