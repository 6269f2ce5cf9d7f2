"""ClusterTrustBundleAttest (upstream: plugin/pkg/admission/certificates/ctbattest).

A ClusterTrustBundle that names a signer speaks for it: writing one needs
``attest`` on ``certificates.k8s.io`` ``signers`` named after the signer
(or ``<domain>/*``, as for the CSR plugins' ``approve`` and ``sign``).
Bundles without a signerName need nothing beyond RBAC on the bundle, and
an update that changes only ownerReferences or finalizers (the garbage
collector's, a storage migration's no-op write) is not checked, as
upstream's IsOnlyMutatingGCFields. Upstream checks the new object: the
signerName cannot change, which validation enforces. On by default since
ClusterTrustBundle went GA (1.37).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kajitori.admission.chain import Plugin
from kajitori.admission.plugins.certificates import authorized_for_signer
from kajitori.machinery import errors
from kajitori.registry.authorization.authorizer import Authorizer
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
BUNDLES = ("certificates.k8s.io", "clustertrustbundles")
_GR = errors.GroupResource(*BUNDLES)
_GC_FIELDS = ("ownerReferences", "finalizers")
# Server-set metadata: equal on every update that changes nothing else.
_SYSTEM_FIELDS = ("resourceVersion", "managedFields", "generation")


def only_gc_fields_changed(obj: Object, old: Object) -> bool:
    """Whether ``obj`` differs from ``old`` in ownerReferences or finalizers at most."""

    def strip(o: Object) -> Object:
        meta = {
            k: v
            for k, v in (o.get("metadata") or {}).items()
            if k not in _GC_FIELDS and k not in _SYSTEM_FIELDS and v not in (None, {}, [])
        }
        return {**{k: v for k, v in o.items() if k != "metadata"}, "metadata": meta}

    return strip(obj) == strip(old)


class ClusterTrustBundleAttest(Plugin):
    """Naming a signer in a ClusterTrustBundle needs ``attest`` on that signer."""

    VALIDATES = frozenset((BUNDLES,))

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if (store.info.group, store.info.plural) != BUNDLES:
            return
        if operation not in ("CREATE", "UPDATE"):
            return
        spec = obj.get("spec")
        signer = str(spec.get("signerName") or "") if isinstance(spec, dict) else ""
        if not signer:
            return
        if operation == "UPDATE" and old is not None and only_gc_fields_changed(obj, old):
            return
        if not authorized_for_signer(self.authorizer, ctx.user, "attest", signer):
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise errors.forbidden(
                _GR, name, f'user not permitted to attest for signerName "{signer}"'
            )
