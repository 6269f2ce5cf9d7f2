"""CertificateSigningRequests in the API server (upstream: pkg/registry/certificates/certificates).

Owns: cluster scope, short name ``csr``; the three endpoints and what each
may change, as upstream's csrStrategy / csrStatusStrategy /
csrApprovalStrategy:

* the main endpoint creates a request with an empty status (nobody creates
  a pre-approved one) and, on update, keeps the stored spec and status, so
  only metadata changes there (a changed spec is silently dropped, as
  upstream);
* ``/status`` changes status but keeps the spec and the Approved/Denied
  conditions; only it may set ``status.certificate`` (once);
* ``/approval`` changes only ``status.conditions``.

``spec.username``/``uid``/``groups``/``extra`` name the requesting user:
upstream's PrepareForCreate fills them from the request context, which our
strategies do not see, so the ``CertificateSigningRequestUser`` admission
plugin (``admission.plugins.certificates``) does it. The same module holds
upstream's CertificateApproval / CertificateSigning / CertificateSubjectRestriction
checks. Table columns as ``kubectl get csr``: NAME AGE SIGNERNAME REQUESTOR
REQUESTEDDURATION CONDITION.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.apps_v1 import printing
from kajitori.api.certificates_v1 import validation
from kajitori.machinery import field
from kajitori.machinery.times import now_rfc3339
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

GROUP = "certificates.k8s.io"
_SPEC = "io.k8s.api.certificates.v1.CertificateSigningRequestSpec"
_STATUS = "io.k8s.api.certificates.v1.CertificateSigningRequestStatus"


def _conditions(obj: Object) -> list[Any]:
    status = obj.get("status")
    value = status.get("conditions") if isinstance(status, dict) else None
    return value if isinstance(value, list) else []


def _keep_spec(obj: Object, old: Object) -> None:
    if "spec" in old:
        obj["spec"] = copy.deepcopy(old["spec"])
    else:
        obj.pop("spec", None)


def _populate_condition_timestamps(obj: Object, old: Object) -> None:
    """Upstream's populateConditionTimestamps: missing times become now (or the old transition)."""
    now = now_rfc3339()
    previous = [c for c in _conditions(old) if isinstance(c, dict)]
    for condition in _conditions(obj):
        if not isinstance(condition, dict):
            continue
        if not condition.get("lastUpdateTime"):
            condition["lastUpdateTime"] = now
        if not condition.get("lastTransitionTime"):
            condition["lastTransitionTime"] = next(
                (
                    c["lastTransitionTime"]
                    for c in previous
                    if c.get("type") == condition.get("type")
                    and c.get("status") == condition.get("status")
                    and c.get("lastTransitionTime")
                ),
                now,
            )


class CSRStrategy(strategies.Strategy):
    """The main endpoint of ``certificates.k8s.io/v1 certificatesigningrequests``."""

    def prepare_for_create(self, obj: Object) -> None:
        # Nobody may create a pre-approved (or pre-signed) request.
        obj["status"] = {}

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        # Requests are immutable here; only the subresources change them.
        _keep_spec(obj, old)
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        else:
            obj.pop("status", None)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_csr(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_csr_update(obj, old)

    def decode_problem(self, obj: Object) -> str | None:
        return validation.decode_problem(obj)

    def canonicalize(self, obj: Object) -> None:
        # Byte fields are stored as Go encodes them (padded base64, no newlines).
        for section, key in (("spec", "request"), ("status", "certificate")):
            holder = obj.get(section)
            if isinstance(holder, dict) and isinstance(holder.get(key), str):
                raw = validation.decoded_bytes(holder[key])
                if raw is not None:
                    holder[key] = validation.encode_bytes(raw)


class CSRStatusStrategy(CSRStrategy):
    """``/status``: the signer's endpoint; spec and Approved/Denied conditions are kept."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        _keep_spec(obj, old)
        for kind in (validation.APPROVED, validation.DENIED):
            _preserve_instances(obj, old, kind)
        _populate_condition_timestamps(obj, old)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_csr_update(obj, old, status=True)


def _preserve_instances(obj: Object, old: Object, kind: str) -> None:
    """Put back the stored conditions of ``kind`` when their count is unchanged.

    A changed count is left for validation to refuse (upstream's
    preserveConditionInstances).
    """
    new_conditions = _conditions(obj)
    old_conditions = _conditions(old)
    new_at = [
        i for i, c in enumerate(new_conditions) if isinstance(c, dict) and c.get("type") == kind
    ]
    old_at = [
        i for i, c in enumerate(old_conditions) if isinstance(c, dict) and c.get("type") == kind
    ]
    if len(new_at) != len(old_at):
        return
    for n, o in zip(new_at, old_at, strict=True):
        new_conditions[n] = copy.deepcopy(old_conditions[o])


class CSRApprovalStrategy(CSRStrategy):
    """``/approval``: only ``status.conditions`` change (kubectl certificate approve/deny)."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        _keep_spec(obj, old)
        old_status = old.get("status")
        status: Object = copy.deepcopy(old_status) if isinstance(old_status, dict) else {}
        conditions = _conditions(obj)
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        obj["status"] = status
        _populate_condition_timestamps(obj, old)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_csr_update(obj, old, approval=True)


def condition_summary(obj: Object) -> str:
    """The CONDITION cell: Denied, Approved or Pending, then ",Failed" and ",Issued"."""
    kinds = {c.get("type") for c in _conditions(obj) if isinstance(c, dict)}
    if validation.DENIED in kinds:
        text = "Denied"
    elif validation.APPROVED in kinds:
        text = "Approved"
    else:
        text = "Pending"
    if validation.FAILED in kinds:
        text += ",Failed"
    status = obj.get("status")
    if isinstance(status, dict) and status.get("certificate"):
        text += ",Issued"
    return text


COLUMNS = (
    tables.NAME_COLUMN,
    tables.AGE_COLUMN,
    tables.Column("SignerName", description=printing.doc(_SPEC, "signerName")),
    # Upstream describes the requestor column with the request field's doc.
    tables.Column("Requestor", description=printing.doc(_SPEC, "request")),
    tables.Column("RequestedDuration", description=printing.doc(_SPEC, "expirationSeconds")),
    tables.Column("Condition", description=printing.doc(_STATUS, "conditions")),
)


def csr_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    raw_spec = obj.get("spec")
    spec: Object = raw_spec if isinstance(raw_spec, dict) else {}
    expiration = spec.get("expirationSeconds")
    duration = (
        tables.human_duration(datetime.timedelta(seconds=expiration))
        if isinstance(expiration, int)
        else "<none>"
    )
    return [
        tables.name(obj),
        tables.age(obj, now),
        str(spec.get("signerName") or "<none>"),
        str(spec.get("username") or ""),
        duration,
        condition_summary(obj),
    ]


STRATEGY = CSRStrategy()

RESOURCE = resource.ResourceInfo(
    group=GROUP,
    version="v1",
    kind="CertificateSigningRequest",
    plural="certificatesigningrequests",
    namespaced=False,
    short_names=("csr",),
    strategy=STRATEGY,
    status=CSRStatusStrategy(),
    extra_subresources=("approval",),
    extra_strategies={"approval": CSRApprovalStrategy()},
    selectable_fields={"spec.signerName": resource.nested_str("spec", "signerName")},
    table=tables.Table(columns=COLUMNS, row=csr_row),
)
