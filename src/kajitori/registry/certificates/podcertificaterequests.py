"""PodCertificateRequests in the API server (upstream: pkg/registry/certificates/podcertificaterequest).

Owns: namespace scope; ``maxExpirationSeconds`` defaulting; the main
endpoint creates with an empty status and afterwards changes only metadata
(the spec is immutable, the status kept); ``/status`` keeps the spec and
may move the request once to Issued, Denied or Failed. Validation is
``api.certificates_v1.podcertificaterequests``'. Upstream's status strategy
also requires ``sign`` on the signer from whoever changes the status; our
strategies do not see the request's user, so the ``PodCertificateRequest``
admission plugin (``admission.plugins.pod_certificate_request``) makes that
check, as the CSR plugins do theirs. ``spec.signerName``, ``spec.podName``
and ``spec.nodeName`` are field selectors (what a signer or kubelet filters
on); the table is the default one (Name, Created At): upstream has no printer for
this kind.
"""

from __future__ import annotations

import copy
from typing import Any

from kajitori.api.certificates_v1 import podcertificaterequests as validation
from kajitori.api.certificates_v1 import validation as csr_validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies

Object = dict[str, Any]


class PCRStrategy(strategies.Strategy):
    """The main endpoint of ``certificates.k8s.io/v1 podcertificaterequests``."""

    def set_defaults(self, obj: Object) -> None:
        validation.set_defaults(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {}

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        else:
            obj.pop("status", None)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_pcr_create(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pcr_update(obj, old)

    def decode_problem(self, obj: Object) -> str | None:
        return validation.decode_problem(obj)

    def canonicalize(self, obj: Object) -> None:
        # The request is stored as Go encodes []byte (padded base64, no newlines).
        spec = obj.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("stubPKCS10Request"), str):
            raw = csr_validation.decoded_bytes(spec["stubPKCS10Request"])
            if raw is not None:
                spec["stubPKCS10Request"] = csr_validation.encode_bytes(raw)

    def allow_unconditional_update(self) -> bool:
        return False


class PCRStatusStrategy(strategies.StatusStrategy):
    """``/status``: the signer's endpoint; the spec and metadata are the stored ones."""

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pcr_status_update(obj, old)


STRATEGY = PCRStrategy()

RESOURCE = resource.ResourceInfo(
    group="certificates.k8s.io",
    version="v1",
    kind="PodCertificateRequest",
    plural="podcertificaterequests",
    namespaced=True,
    strategy=STRATEGY,
    status=PCRStatusStrategy(STRATEGY),
    selectable_fields={
        "spec.signerName": resource.nested_str("spec", "signerName"),
        "spec.podName": resource.nested_str("spec", "podName"),
        "spec.nodeName": resource.nested_str("spec", "nodeName"),
    },
)
