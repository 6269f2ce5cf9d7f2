"""What the registry knows about the request it is serving.

Built by the server from the URL, query and authenticated user, and passed
down to the generic store and admission. Warnings collected here become
``Warning`` response headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FieldValidation = Literal["Strict", "Warn", "Ignore"]
_AUDIT_LEVELS = ("None", "Metadata", "Request", "RequestResponse")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated identity (upstream's user.Info)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """The resource a client addressed: its group and version as served, and the subresource.

    Admission reads it for upstream's ``AdmissionRequest`` (``requestResource``,
    ``requestKind``, ``subResource``) and for matching webhook and policy rules,
    which name subresources (``pods/status``) and served versions
    (``apps/v1beta1``). The store's own ``ResourceInfo`` says the rest.
    """

    group: str
    version: str
    resource: str
    subresource: str = ""


@dataclass(slots=True)
class RequestContext:
    """Per-request options every registry operation may consult."""

    user: UserInfo = ANONYMOUS
    dry_run: bool = False
    field_manager: str = ""
    # The request's own ``fieldManager`` option ("" when absent; ``field_manager`` is then
    # the User-Agent's product): what admission sees in the Create/Update/PatchOptions.
    field_manager_option: str = ""
    field_validation: FieldValidation = "Warn"
    warnings: list[str] = field(default_factory=list)
    # None: a call from inside the server (bootstrap, the quota controller's
    # writes), of the store's own resource and no subresource.
    target: RequestTarget | None = None
    # Upstream's audit annotations: admission's findings for the audit event
    # (``annotations``); the first value set for a key is kept, as upstream's
    # audit context keeps it. The audit filter shares its own dict here and sets
    # ``audit_level`` to the event's level: an annotation meant for a higher level
    # (a webhook's patch is for Request and up) is then not kept.
    audit_annotations: dict[str, str] = field(default_factory=dict)
    audit_level: str = "RequestResponse"
    # Mutating admission's reinvocation state for the object being admitted
    # (admission.reinvocation.Reinvocation; None until a policy or webhook needs it).
    reinvocation: Any = None

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def add_audit_annotation(self, key: str, value: str, level: str = "Metadata") -> None:
        """Record ``key: value`` for this request's audit event (upstream's AddAuditAnnotation).

        ``level``: the lowest audit level whose events carry it (upstream's
        AddAnnotationWithLevel); Metadata, as upstream's AddAnnotation, unless said.
        """
        if _AUDIT_LEVELS.index(level) <= _AUDIT_LEVELS.index(self.audit_level):
            self.audit_annotations.setdefault(key, value)
