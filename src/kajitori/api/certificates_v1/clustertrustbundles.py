"""Validation of ClusterTrustBundles (upstream: pkg/apis/certificates/validation).

Owns what a ClusterTrustBundle must be: a name tied to its signer (with a
``spec.signerName`` such as ``example.com/foo`` the name is
``example.com:foo:<DNS subdomain>``; without one the name has no ``:``), a
well-formed signerName that never changes, and a ``spec.trustBundle`` of at
most 1 MiB made only of header-less ``CERTIFICATE`` PEM blocks, each an X.509
CA certificate, at least one and none twice. Like upstream, an update that
leaves the bundle text alone does not parse it again, so old data stays
editable.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from kajitori.api.certificates_v1 import validation
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

MAX_TRUST_BUNDLE_SIZE = 1024 * 1024
_TRUST_BUNDLE = field.Path("spec", "trustBundle")
_OMITTED = "<value omitted>"


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _spec(obj: Object) -> Object:
    return _dict(obj.get("spec"))


def name_validator(signer: str) -> names.NameValidator:
    """ValidateClusterTrustBundleName: the name rule that ``signer`` implies."""

    def validate(name: str, prefix: bool) -> list[str]:
        if not signer:
            if ":" in name:
                return ['ClusterTrustBundle without signer name must not have ":" in its name']
            return names.name_is_dns_subdomain(name, prefix)
        required = signer.replace("/", ":") + ":"
        if not name.startswith(required):
            return [
                f"ClusterTrustBundle for signerName {signer} must be named with prefix {required}"
            ]
        return names.name_is_dns_subdomain(name[len(required) :], prefix)

    return validate


def validate_cluster_trust_bundle(obj: Object, *, parse_bundle: bool = True) -> field.ErrorList:
    """ValidateClusterTrustBundle."""
    signer = str(_spec(obj).get("signerName") or "")
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=name_validator(signer),
        path=field.Path("metadata"),
    )
    if signer:
        errs.extend(validation.validate_signer_name(field.Path("spec", "signerName"), signer))
    if parse_bundle:
        errs.extend(validate_trust_bundle(str(_spec(obj).get("trustBundle") or "")))
    return errs


def validate_cluster_trust_bundle_update(obj: Object, old: Object) -> field.ErrorList:
    """ValidateClusterTrustBundleUpdate: the bundle is parsed only when it changed."""
    unchanged = _spec(obj).get("trustBundle") == _spec(old).get("trustBundle")
    errs = validate_cluster_trust_bundle(obj, parse_bundle=not unchanged)
    errs.extend(
        objectmeta.validate_object_meta_update(
            obj.get("metadata"), old.get("metadata"), path=field.Path("metadata")
        )
    )
    errs.extend(
        objectmeta.validate_immutable_field(
            str(_spec(obj).get("signerName") or ""),
            str(_spec(old).get("signerName") or ""),
            field.Path("spec", "signerName"),
        )
    )
    return errs


def _anchor_problem(der: bytes) -> str | None:
    """Why a CERTIFICATE block is no trust anchor (None when it is a CA certificate)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        # Go reports IsCA false for a certificate without basic constraints.
        return "does not have the CA bit set"
    except (ValueError, UnsupportedAlgorithm):
        return "does not parse as X.509"
    if not constraints.ca:
        return "does not have the CA bit set"
    return None


def validate_trust_bundle(bundle: str) -> field.ErrorList:
    """validateTrustBundle: CA certificates only, headers nowhere, at least one, no duplicates."""
    errs = field.ErrorList()
    if len(bundle.encode()) > MAX_TRUST_BUNDLE_SIZE:
        errs.append(field.too_long(_TRUST_BUNDLE, "", MAX_TRUST_BUNDLE_SIZE))
        return errs
    seen: dict[bytes, list[int]] = {}
    for i, (block_type, headers, der) in enumerate(validation._pem_blocks(bundle.encode())):
        if block_type != "CERTIFICATE":
            problem: str | None = f"has bad block type: {block_type}"
        elif headers:
            problem = "has PEM block headers"
        else:
            problem = _anchor_problem(der)
        if problem is not None:
            errs.append(field.invalid(_TRUST_BUNDLE, _OMITTED, f"entry {i} {problem}"))
            continue
        seen.setdefault(der, []).append(i)
    # A malformed block says enough; no duplicate or missing-anchor errors on top.
    if errs:
        return errs
    if not seen:
        errs.append(
            field.invalid(_TRUST_BUNDLE, _OMITTED, "at least one trust anchor must be provided")
        )
    for indices in seen.values():
        if len(indices) > 1:
            listed = " ".join(str(i) for i in indices)
            errs.append(
                field.invalid(
                    _TRUST_BUNDLE, _OMITTED, f"duplicate trust anchor (indices [{listed}])"
                )
            )
    return errs
