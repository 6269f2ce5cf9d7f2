"""DRA admin access only in admin namespaces (upstream: pkg/registry/resource/utils.go).

Owns the namespace check upstream's ResourceClaim and ResourceClaimTemplate
strategies make (``AuthorizedForAdmin``, ``AuthorizedForAdminStatus``): a
device request with ``exactly.adminAccess: true`` is accepted only in a
namespace labelled ``resource.kubernetes.io/admin-access: "true"``; so is a
status update that first records an allocation result with ``adminAccess``.
Refusals are upstream's 422 Invalid with a Forbidden field error.

Upstream's strategies read the namespace through a client; ours are pure
functions of the object, so the check runs here, as the first validating
step after the strategy's, reading namespaces through the lister the
admission plugins share (storage until that watch has caught up). Creates
only for the spec, which is immutable; status updates of claims for the
allocation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.machinery import errors, field
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
NamespaceStore = Callable[[], "Store | None"]

GROUP = "resource.k8s.io"
CLAIMS = (GROUP, "resourceclaims")
TEMPLATES = (GROUP, "resourceclaimtemplates")
ADMIN_NAMESPACE_LABEL = "resource.kubernetes.io/admin-access"
_REQUESTS = field.Path("spec").child("devices").child("requests")
_RESULTS = field.Path("status").child("allocation").child("devices").child("results")


def _mapping(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def requested_admin_access(claim_spec: Object) -> field.Path | None:
    """The path of the first request asking for admin access (only ``exactly`` can), or None."""
    requests = _list(_mapping(claim_spec.get("devices")).get("requests"))
    for i, request in enumerate(requests):
        if _mapping(_mapping(request).get("exactly")).get("adminAccess") is True:
            return _REQUESTS.index(i).child("exactly").child("adminAccess")
    return None


def granted_admin_access(claim: Object | None) -> field.Path | None:
    """The path of the first allocation result with admin access, or None."""
    allocation = _mapping(_mapping(_mapping(claim).get("status")).get("allocation"))
    for i, result in enumerate(_list(_mapping(allocation.get("devices")).get("results"))):
        if _mapping(result).get("adminAccess") is True:
            return _RESULTS.index(i).child("adminAccess")
    return None


class DRAAdminAccess(Plugin):
    """Refuses admin access to devices outside namespaces labelled for it."""

    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset({CLAIMS, TEMPLATES})

    def __init__(self, namespaces_store: NamespaceStore, *, namespaces: StoreLister) -> None:
        """``namespaces``: the lister the admission plugins share; ``namespaces_store`` its store."""
        self._namespaces_store = namespaces_store
        self._namespaces = namespaces

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        path = self._path(store, operation, obj, old, ctx)
        if path is None:
            return
        namespace = str(_mapping(obj.get("metadata")).get("namespace") or "")
        problem = await self._namespace_problem(namespace, path)
        if problem is not None:
            gk = errors.GroupKind(store.info.group, store.info.kind)
            name = str(_mapping(obj.get("metadata")).get("name") or "")
            raise errors.invalid(gk, name, [problem])

    def _path(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> field.Path | None:
        """Where admin access is asked for by this write, if it is one upstream checks."""
        resource = (store.info.group, store.info.plural)
        subresource = ctx.target.subresource if ctx.target is not None else ""
        if operation == "CREATE" and not subresource:
            if resource == TEMPLATES:
                return requested_admin_access(_mapping(_mapping(obj.get("spec")).get("spec")))
            return requested_admin_access(_mapping(obj.get("spec")))
        if operation == "UPDATE" and resource == CLAIMS and subresource == "status":
            # An allocation is immutable: one granted before was checked then.
            if granted_admin_access(old) is not None:
                return None
            return granted_admin_access(obj)
        return None

    async def _namespace_problem(self, name: str, path: field.Path) -> field.FieldError | None:
        namespace = self._namespaces.cached_get("", name)
        if namespace is None:
            store = self._namespaces_store()
            try:
                if store is None:
                    raise errors.not_found(errors.GroupResource("", "namespaces"), name)
                namespace = await store.get("", name)
            except errors.StatusError as exc:
                return field.internal(
                    path, f"could not retrieve namespace to verify admin access: {exc.message}"
                )
        labels = _mapping(_mapping(namespace.get("metadata")).get("labels"))
        if labels.get(ADMIN_NAMESPACE_LABEL) != "true":
            return field.forbidden(
                path,
                f"admin access to devices requires the `{ADMIN_NAMESPACE_LABEL}: true` label "
                "on the containing namespace",
            )
        return None
