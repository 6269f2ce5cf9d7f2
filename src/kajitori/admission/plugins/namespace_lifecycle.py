"""NamespaceLifecycle: nothing lives in a missing or terminating namespace.

As upstream's plugin (plugin/pkg/admission/namespace/lifecycle): creating a
namespaced object in a namespace that does not exist is 404 NotFound for the
namespace; in one that is being deleted it is 403 Forbidden; the initial
namespaces (default, kube-system, kube-public) may not be deleted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
NamespaceGetter = Callable[[str], Awaitable[Object]]

IMMORTAL_NAMESPACES = frozenset(("default", "kube-system", "kube-public"))


class NamespaceLifecycle:
    def __init__(self, get_namespace: NamespaceGetter) -> None:
        self.get_namespace = get_namespace

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or not store.info.namespaced:
            return
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace", "")
        ns = await self.get_namespace(namespace)
        if ns.get("status", {}).get("phase") == "Terminating" or ns["metadata"].get(
            "deletionTimestamp"
        ):
            name = meta.get("name") or meta.get("generateName", "")
            raise errors.forbidden(
                store.gr,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        return None

    async def validate_delete(self, store: Store, obj: Object, ctx: RequestContext) -> None:
        if store.info.group == "" and store.info.plural == "namespaces":
            name = obj["metadata"]["name"]
            if name in IMMORTAL_NAMESPACES:
                raise errors.forbidden(store.gr, name, "this namespace may not be deleted")
