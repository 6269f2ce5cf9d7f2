"""AdmissionReview requests and responses, and the errors webhooks cause (upstream:
webhook/request and webhook/errors).

Owns building the ``admission.k8s.io`` AdmissionReview sent to a webhook (v1,
or v1beta1 when that is the first version the webhook lists that we know),
checking its answer as upstream does (uid, kind, patch rules for mutating and
validating webhooks), and the errors: a denial (``admission webhook "<name>"
denied the request: <message>``, carrying the webhook's status code, at least
400), the dry-run refusal, and ``CallError`` for a failure to get an answer
(subject to failurePolicy; upstream's ErrCallingWebhook).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from kajitori.admission.webhooks.attributes import GVK, GVR, Attributes
from kajitori.machinery import errors

Object = dict[str, Any]

API_GROUP = "admission.k8s.io"
KNOWN_VERSIONS = ("v1", "v1beta1")


class CallError(Exception):
    """No usable answer from a webhook: failurePolicy decides (upstream's ErrCallingWebhook)."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f"failed calling webhook {_quote(webhook)}: {reason}")
        self.webhook = webhook
        self.reason = reason

    def to_status_error(self) -> errors.StatusError:
        """The fail-closed error: upstream wraps the call error in an InternalError."""
        return errors.internal_error(str(self))


class NoKnownVersion(ValueError):
    """The webhook accepts no AdmissionReview version we send."""


def _quote(text: str) -> str:
    """Go's %q for the strings we quote (webhook names, uids)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def review_version(webhook_versions: tuple[str, ...]) -> str:
    for version in webhook_versions:
        if version in KNOWN_VERSIONS:
            return version
    raise NoKnownVersion("webhook does not accept known AdmissionReview versions (v1, v1beta1)")


@dataclass(frozen=True, slots=True)
class Invocation:
    """What a matched webhook is called with: the resource and kind it matched."""

    resource: GVR
    subresource: str
    kind: GVK


def admission_request(
    uid: str, attrs: Attributes, invocation: Invocation, obj: Object | None, old: Object | None
) -> Object:
    """The AdmissionRequest (the same fields in v1 and v1beta1)."""
    return {
        "uid": uid,
        "kind": invocation.kind.to_dict(),
        "resource": invocation.resource.to_dict(),
        **({"subResource": invocation.subresource} if invocation.subresource else {}),
        "requestKind": attrs.kind.to_dict(),
        "requestResource": attrs.resource.to_dict(),
        **({"requestSubResource": attrs.subresource} if attrs.subresource else {}),
        **({"name": attrs.name} if attrs.name else {}),
        **({"namespace": attrs.namespace} if attrs.namespace else {}),
        "operation": attrs.operation,
        "userInfo": _user_info(attrs),
        "object": obj,
        "oldObject": old,
        "dryRun": attrs.dry_run,
        "options": attrs.options,
    }


def admission_review(version: str, request: Object) -> Object:
    return {"kind": "AdmissionReview", "apiVersion": f"{API_GROUP}/{version}", "request": request}


def _user_info(attrs: Attributes) -> Object:
    user = attrs.user
    info: Object = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra}
    return info


@dataclass(slots=True)
class Response:
    """A checked AdmissionResponse; ``patch`` is the decoded JSON patch bytes (mutating only)."""

    allowed: bool
    result: Object | None = None
    patch: bytes = b""
    patch_type: str = ""
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


class InvalidResponse(ValueError):
    """The answer breaks the AdmissionReview contract (upstream: VerifyAdmissionResponse)."""


def verify_response(uid: str, version: str, mutating: bool, review: Any) -> Response:
    """Check a decoded AdmissionReview answer as upstream does; raises InvalidResponse."""
    if not isinstance(review, dict):
        raise InvalidResponse("webhook response was absent")
    response = review.get("response")
    if not isinstance(response, dict):
        raise InvalidResponse("webhook response was absent")
    if version == "v1beta1":
        return _v1beta1_response(response, mutating)
    got_uid = response.get("uid", "")
    if got_uid != uid:
        raise InvalidResponse(f"expected response.uid={_quote(uid)}, got {_quote(str(got_uid))}")
    api_version = str(review.get("apiVersion", ""))
    group, _, ver = api_version.rpartition("/")
    if (group, ver, review.get("kind", "")) != (API_GROUP, "v1", "AdmissionReview"):
        raise InvalidResponse(
            f"expected webhook response of {API_GROUP}/v1, Kind=AdmissionReview, "
            f"got {group}/{ver}, Kind={review.get('kind', '')}"
        )
    patch = _patch_bytes(response.get("patch"))
    patch_type = response.get("patchType")
    if mutating:
        if patch and patch_type is None:
            raise InvalidResponse("webhook returned response.patch but not response.patchType")
        if not patch and patch_type is not None:
            raise InvalidResponse("webhook returned response.patchType but not response.patch")
        if patch_type is not None and not patch_type:
            raise InvalidResponse(f"webhook returned invalid response.patchType of {_quote('')}")
    else:
        if patch:
            raise InvalidResponse("validating webhook may not return response.patch")
        if patch_type is not None:
            raise InvalidResponse("validating webhook may not return response.patchType")
    return _response(response, patch if mutating else b"", str(patch_type or ""))


def _v1beta1_response(response: Object, mutating: bool) -> Response:
    # v1beta1 answers were never checked for uid, kind or patchType: a patch is a JSON patch.
    patch = _patch_bytes(response.get("patch")) if mutating else b""
    return _response(response, patch, "JSONPatch" if patch else "")


def _response(response: Object, patch: bytes, patch_type: str) -> Response:
    result = response.get("status")
    warnings = response.get("warnings") or []
    annotations = response.get("auditAnnotations") or {}
    return Response(
        allowed=response.get("allowed") is True,
        result=result if isinstance(result, dict) else None,
        patch=patch,
        patch_type=patch_type,
        warnings=[w for w in warnings if isinstance(w, str)],
        audit_annotations={
            str(k): str(v) for k, v in annotations.items() if isinstance(annotations, dict)
        },
    )


def _patch_bytes(raw: Any) -> bytes:
    if raw is None or raw == "":
        return b""
    if not isinstance(raw, str):
        raise InvalidResponse("json: cannot unmarshal into Go struct field of type []byte")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidResponse(f"illegal base64 data: {exc}") from exc


# ----- errors -----------------------------------------------------------------------------------


def denial_error(webhook: str, result: Object | None) -> errors.StatusError:
    """The error for a webhook's ``allowed: false`` (upstream's ToStatusErr)."""
    result = result or {}
    denied_by = f"admission webhook {_quote(webhook)} denied the request"
    message = str(result.get("message") or "")
    reason = str(result.get("reason") or "")
    if message:
        text = f"{denied_by}: {message}"
    elif reason:
        text = f"{denied_by}: {reason}"
    else:
        text = f"{denied_by} without explanation"
    code = result.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or code < 400:
        code = 400  # a refusal is never answered with a success code
    details = result.get("details") if isinstance(result.get("details"), dict) else {}
    assert isinstance(details, dict)
    causes = [
        errors.StatusCause(
            str(c.get("reason", "")), str(c.get("message", "")), str(c.get("field", ""))
        )
        for c in details.get("causes") or ()
        if isinstance(c, dict)
    ]
    return errors.StatusError(
        code,
        reason,
        text,
        name=str(details.get("name", "")),
        group=str(details.get("group", "")),
        kind=str(details.get("kind", "")),
        uid=str(details.get("uid", "")),
        causes=causes,
        retry_after_seconds=int(details.get("retryAfterSeconds") or 0),
    )


def dry_run_unsupported(webhook: str) -> errors.StatusError:
    return errors.bad_request(f"admission webhook {_quote(webhook)} does not support dry run")


def side_effects_nil(webhook: str) -> CallError:
    return CallError(webhook, "Webhook SideEffects is nil")


def modifies_nothing(webhook: str) -> errors.StatusError:
    """A patch for an operation without an object (DELETE)."""
    return errors.internal_error(
        f"admission webhook {_quote(webhook)} attempted to modify the object, "
        "which is not supported for this operation"
    )
