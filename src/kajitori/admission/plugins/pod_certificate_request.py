"""The admission checks of PodCertificateRequests: who signs, and what a kubelet may ask.

* ``PodCertificateRequestSigning`` — who may issue, deny or fail a request:
  ``sign`` on its signer. Upstream makes this check in the PodCertificateRequest status strategy's
ValidateUpdate (pkg/registry/certificates/podcertificaterequest), where it
reads the request's user: a ``/status`` write that changes the status needs
``sign`` on ``certificates.k8s.io`` ``signers`` named after the request's
signerName (or ``<domain>/*``). Our strategies never see the user, so this
validating plugin makes the same check at the same point of the write and
answers as the strategy does: 422 Invalid, a Forbidden cause on
``spec.signerName``. The main endpoint keeps the stored status (its
strategy), so only ``/status`` can change it; the plugin acts on status
changes only.
* ``PodCertificateRequestNodeRestriction`` — upstream's NodeRestriction part
  for these requests: a kubelet (``system:node:<name>``) creates them only
  for itself, for a pod bound to it that is no mirror pod, with the pod's,
  its service account's and its node's real names and UIDs. Refusals are 403
  Forbidden. Other users are left to RBAC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kajitori.admission.chain import Plugin
from kajitori.admission.plugins.certificates import authorized_for_signer
from kajitori.auth import node as node_auth
from kajitori.machinery import errors, field
from kajitori.registry.authorization.authorizer import Authorizer
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
StoreLookup = Callable[[str, str, str], "Store | None"]
REQUESTS = ("certificates.k8s.io", "podcertificaterequests")
_GK = errors.GroupKind("certificates.k8s.io", "PodCertificateRequest")
_GR = errors.GroupResource(*REQUESTS)
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def _status(obj: Object) -> Object:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _empty_as_absent(status: Object) -> Object:
    return {k: v for k, v in status.items() if v not in (None, "", [], {})}


class PodCertificateRequestSigning(Plugin):
    """Changing a PodCertificateRequest's status needs ``sign`` on its signer."""

    VALIDATES = frozenset((REQUESTS,))

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if (
            operation != "UPDATE"
            or old is None
            or (store.info.group, store.info.plural) != REQUESTS
        ):
            return
        if _empty_as_absent(_status(obj)) == _empty_as_absent(_status(old)):
            return
        spec = old.get("spec")
        signer = str(spec.get("signerName") or "") if isinstance(spec, dict) else ""
        if authorized_for_signer(self.authorizer, ctx.user, "sign", signer):
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        raise errors.invalid(
            _GK,
            name,
            [
                field.forbidden(
                    field.Path("spec", "signerName"),
                    f'User "{ctx.user.name}" is not permitted to "sign" for signer "{signer}"',
                )
            ],
        )


class PodCertificateRequestNodeRestriction(Plugin):
    """A kubelet asks for certificates only for pods bound to itself, as they really are."""

    ADMITS = frozenset((REQUESTS,))

    def __init__(self, lookup: StoreLookup) -> None:
        self.lookup = lookup

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or (store.info.group, store.info.plural) != REQUESTS:
            return
        node, is_node = node_auth.node_identity(ctx.user)
        if not is_node:
            return
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")

        def refuse(reason: str) -> errors.StatusError:
            return errors.forbidden(_GR, name, reason)

        node_name = str(spec.get("nodeName") or "")
        if node_name != node:
            raise refuse(
                f'PodCertificateRequest.Spec.NodeName="{node_name}", which is not the '
                f'requesting node "{node}"'
            )
        pod_name = str(spec.get("podName") or "")
        pod_ref = f"{namespace}/{pod_name}"
        node_obj = await self._get("", "nodes", "", node_name)
        if node_obj is None:
            raise refuse(
                f'while retrieving node "{node_name}" named in the PodCertificateRequest: '
                f'nodes "{node_name}" not found'
            )
        _same_uid(
            refuse,
            node_obj,
            spec.get("nodeUID"),
            f'PodCertificateRequest for pod "{pod_ref}" names node UID',
            "node",
        )
        pod = await self._get("", "pods", namespace, pod_name)
        if pod is None:
            raise refuse(
                f'while retrieving pod "{pod_ref}" named in the PodCertificateRequest: '
                f'pods "{pod_name}" not found'
            )
        _same_uid(
            refuse,
            pod,
            spec.get("podUID"),
            f'PodCertificateRequest for pod "{pod_ref}" names pod UID',
            "pod",
        )
        pod_spec = pod.get("spec") or {}
        if pod_spec.get("nodeName") != node:
            raise refuse(
                f'pod "{pod_ref}" is not running on node "{node}" named in the '
                "PodCertificateRequest"
            )
        if MIRROR_POD_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
            raise refuse(f'pod "{pod_ref}" is a mirror pod')
        account = str(spec.get("serviceAccountName") or "")
        running_account = str(pod_spec.get("serviceAccountName") or "")
        if account != running_account:
            raise refuse(
                f'PodCertificateRequest for pod "{pod_ref}" contains serviceAccountName '
                f'("{account}") that differs from running pod ("{running_account}")'
            )
        sa = await self._get("", "serviceaccounts", namespace, account)
        if sa is None:
            raise refuse(
                f'while retrieving service account "{namespace}/{account}" named in the '
                f'PodCertificateRequest: serviceaccounts "{account}" not found'
            )
        _same_uid(
            refuse,
            sa,
            spec.get("serviceAccountUID"),
            f'PodCertificateRequest for pod "{pod_ref}" names service account UID',
            "service account",
        )

    async def _get(self, group: str, plural: str, namespace: str, name: str) -> Object | None:
        store = self.lookup(group, "v1", plural)
        if store is None:
            return None
        try:
            found: Object = await store.get(namespace, name)
        except errors.StatusError as exc:
            if exc.code == 404:
                return None
            raise
        return found


def _same_uid(
    refuse: Callable[[str], errors.StatusError],
    running: Object,
    named: Any,
    prefix: str,
    what: str,
) -> None:
    actual = str((running.get("metadata") or {}).get("uid") or "")
    if str(named or "") != actual:
        raise refuse(f'{prefix} "{named or ""}", inconsistent with the running {what} ("{actual}")')
