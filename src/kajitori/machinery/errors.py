"""API errors: the one exception type that renders a ``metav1.Status``.

Every failure a client can see is a ``StatusError``; the server turns it into a
Status body and HTTP code in one place. Constructors mirror upstream's
``k8s.io/apimachinery/pkg/api/errors`` so that messages, reasons, codes and
details match what kube-apiserver sends, because kubectl and the client
libraries branch on them::

    StatusError                      code  reason
    ├── bad_request()                400   BadRequest
    ├── unauthorized()               401   Unauthorized
    ├── forbidden()                  403   Forbidden
    ├── not_found()                  404   NotFound
    ├── method_not_supported()       405   MethodNotAllowed
    ├── not_acceptable()             406   NotAcceptable
    ├── already_exists()             409   AlreadyExists
    ├── conflict()                   409   Conflict
    ├── gone() / resource_expired()  410   Gone / Expired
    ├── request_entity_too_large()   413   RequestEntityTooLarge
    ├── unsupported_media_type()     415   UnsupportedMediaType
    ├── invalid()                    422   Invalid (with causes)
    ├── too_many_requests()          429   TooManyRequests
    ├── internal_error()             500   InternalError
    ├── service_unavailable()        503   ServiceUnavailable
    └── timeout()                    504   Timeout
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from kajitori.machinery import field as fieldpkg


@dataclass(frozen=True, slots=True)
class GroupResource:
    """A resource qualified by its API group: ``pods``, ``deployments.apps``."""

    group: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True, slots=True)
class GroupKind:
    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


@dataclass(frozen=True, slots=True)
class StatusCause:
    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        # Every field is omitempty upstream (a policy denial's cause has only a message).
        out = {"reason": self.reason} if self.reason else {}
        out["message"] = self.message
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class StatusError(Exception):
    """An error that carries the full ``metav1.Status`` a client should see."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: list[StatusCause] = field(default_factory=list)
    retry_after_seconds: int = 0
    # Upstream sends "details": {} for a few generic errors (e.g. a failed JSON patch).
    empty_details: bool = False

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        details = self._details()
        if details or self.empty_details:
            status["details"] = details
        status["code"] = self.code
        return status

    def _details(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.uid:
            details["uid"] = self.uid
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds:
            details["retryAfterSeconds"] = self.retry_after_seconds
        return details


class _ResourceDetails(TypedDict):
    """The keyword arguments naming the object a ``StatusError`` is about."""

    name: str
    group: str
    kind: str


def _resource_details(gr: GroupResource, name: str) -> _ResourceDetails:
    return {"name": name, "group": gr.group, "kind": gr.resource}


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden(gr: GroupResource, name: str, reason: str) -> StatusError:
    subject = f'{gr} "{name}"' if name else str(gr)
    return StatusError(
        403, "Forbidden", f"{subject} is forbidden: {reason}", **_resource_details(gr, name)
    )


def not_found(gr: GroupResource, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{gr} "{name}" not found', **_resource_details(gr, name))


def method_not_supported(gr: GroupResource, action: str) -> StatusError:
    return StatusError(
        405,
        "MethodNotAllowed",
        f"{action} is not supported on resources of kind {gr!s}",
        group=gr.group,
        kind=gr.resource,
    )


def method_not_allowed() -> StatusError:
    return StatusError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def already_exists(gr: GroupResource, name: str) -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{gr} "{name}" already exists', **_resource_details(gr, name)
    )


OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(gr: GroupResource, name: str, reason: str = OPTIMISTIC_LOCK_MESSAGE) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {gr} "{name}": {reason}',
        **_resource_details(gr, name),
    )


def gone(message: str) -> StatusError:
    return StatusError(410, "Gone", message)


def resource_expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_old_resource_version(requested: int, oldest: int) -> StatusError:
    return resource_expired(f"too old resource version: {requested} ({oldest})")


def request_entity_too_large(message: str) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")'
        if content_type
        else "the body of the request was in an unknown format",
    )


def invalid(gk: GroupKind, name: str, errors: list[fieldpkg.FieldError]) -> StatusError:
    """422 Invalid with one cause per field error, as ``errors.NewInvalid``."""
    causes = [StatusCause(e.type.reason, e.body(), e.field) for e in errors]
    if len(errors) == 1:
        summary = str(errors[0])
    else:
        summary = "[" + ", ".join(str(e) for e in _dedupe(errors)) + "]"
    # Upstream prints the qualified kind ("Deployment.apps"); kubectl shows
    # "The Deployment ... is invalid" from details.kind itself.
    message = f'{gk} "{name}" is invalid: {summary}'
    return StatusError(
        422, "Invalid", message, name=name, group=gk.group, kind=gk.kind, causes=causes
    )


def _dedupe(errors: list[fieldpkg.FieldError]) -> list[fieldpkg.FieldError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        text = str(e)
        if text not in seen:
            seen.add(text)
            out.append(e)
    return out


def too_many_requests(message: str, retry_after_seconds: int = 1) -> StatusError:
    return StatusError(429, "TooManyRequests", message, retry_after_seconds=retry_after_seconds)


def internal_error(message: str) -> StatusError:
    return StatusError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        causes=[StatusCause("", message)],
    )


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str, retry_after_seconds: int = 0) -> StatusError:
    return StatusError(504, "Timeout", message, retry_after_seconds=retry_after_seconds)
