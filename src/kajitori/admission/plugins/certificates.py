"""The certificates.k8s.io admission plugins (upstream: plugin/pkg/admission/certificates).

* ``CertificateSigningRequestUser`` — fills ``spec.username``, ``uid``,
  ``groups`` and ``extra`` of a new CSR from the requesting user, whatever
  the client sent. Upstream does this in the CSR strategy's PrepareForCreate;
  our strategies never see the request's user, so this mutating plugin does
  it at the same point (after the field manager, before validation).
* ``CertificateApproval`` — adding or changing an Approved/Denied condition
  needs ``approve`` on ``signers`` named after the request's signerName, or
  ``<domain>/*`` (upstream's IsAuthorizedForSignerName).
* ``CertificateSigning`` — setting ``status.certificate`` needs ``sign`` on
  the same ``signers``.
* ``CertificateSubjectRestriction`` — no ``kubernetes.io/kube-apiserver-client``
  request for a subject in ``system:masters``.

Upstream's approval and signing plugins act on every write through
``/approval`` and ``/status``; admission here does not see the subresource,
so they act on the change only those endpoints can make (the strategies keep
conditions and certificate on the others): a write through them that changes
nothing is not checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.x509 import oid

from kajitori.admission.chain import Plugin
from kajitori.api.certificates_v1 import validation
from kajitori.machinery import errors
from kajitori.registry.authorization.authorizer import Attributes, Authorizer
from kajitori.registry.generic.request import RequestContext, UserInfo

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
GROUP = "certificates.k8s.io"
CSRS = (GROUP, "certificatesigningrequests")
_GR = errors.GroupResource(*CSRS)
MASTERS_GROUP = "system:masters"


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _name(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


class CertificateSigningRequestUser(Plugin):
    """Names the requesting user in a new CSR (upstream's csrStrategy.PrepareForCreate)."""

    ADMITS = frozenset((CSRS,))

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or (store.info.group, store.info.plural) != CSRS:
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        for key in ("username", "uid", "groups", "extra"):
            spec.pop(key, None)
        user = ctx.user
        # Empty values are omitted, as Go's omitempty encodes them.
        if user.name:
            spec["username"] = user.name
        if user.uid:
            spec["uid"] = user.uid
        if user.groups:
            spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}


def authorized_for_signer(authorizer: Authorizer, user: UserInfo, verb: str, signer: str) -> bool:
    """Whether ``user`` may ``verb`` the signer by name or by ``<domain>/*``."""
    domain = signer.split("/")[0]
    for name in (signer, f"{domain}/*"):
        attrs = Attributes(
            user=user,
            verb=verb,
            api_group=GROUP,
            api_version="*",
            resource="signers",
            name=name,
        )
        if authorizer.authorize(attrs)[0] == "Allow":
            return True
    return False


def _approval_conditions(obj: Object) -> list[Any]:
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return [
        c
        for c in (conditions if isinstance(conditions, list) else [])
        if isinstance(c, dict) and c.get("type") in (validation.APPROVED, validation.DENIED)
    ]


class _SignerPermission(Plugin):
    """A change only ``/approval`` or ``/status`` can make needs ``VERB`` on the signer."""

    VALIDATES = frozenset((CSRS,))
    VERB = ""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    def changed(self, obj: Object, old: Object) -> bool:
        raise NotImplementedError

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "UPDATE" or old is None or (store.info.group, store.info.plural) != CSRS:
            return
        if not self.changed(obj, old):
            return
        signer = str(_spec(obj).get("signerName") or "")
        if not authorized_for_signer(self.authorizer, ctx.user, self.VERB, signer):
            raise errors.forbidden(
                _GR,
                _name(obj),
                f'user not permitted to {self.VERB} requests with signerName "{signer}"',
            )


class CertificateApproval(_SignerPermission):
    """Approving or denying needs ``approve`` on the request's signer."""

    VERB = "approve"

    def changed(self, obj: Object, old: Object) -> bool:
        return _approval_conditions(obj) != _approval_conditions(old)


class CertificateSigning(_SignerPermission):
    """Setting the certificate needs ``sign`` on the request's signer."""

    VERB = "sign"

    def changed(self, obj: Object, old: Object) -> bool:
        return validation.certificate_bytes(obj) != validation.certificate_bytes(old)


class CertificateSubjectRestriction(Plugin):
    """No kube-apiserver-client certificate for the ``system:masters`` group."""

    VALIDATES = frozenset((CSRS,))

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or (store.info.group, store.info.plural) != CSRS:
            return
        if _spec(obj).get("signerName") != validation.KUBE_APISERVER_CLIENT_SIGNER:
            return
        try:
            csr = validation.parse_csr(validation.request_bytes(obj) or b"")
        except ValueError:
            return  # validation has refused it already
        organizations = csr.subject.get_attributes_for_oid(oid.NameOID.ORGANIZATION_NAME)
        if any(str(o.value) == MASTERS_GROUP for o in organizations):
            raise errors.forbidden(
                _GR,
                _name(obj),
                f"use of {validation.KUBE_APISERVER_CLIENT_SIGNER} signer with "
                f"{MASTERS_GROUP} group is not allowed",
            )
