"""NamespaceLifecycle: nothing lives in a missing or terminating namespace.

As upstream's plugin (plugin/pkg/admission/namespace/lifecycle): creating a
namespaced object in a namespace that does not exist is 404 NotFound for the
namespace; in one that is being deleted it is 403 Forbidden with a
``NamespaceTerminating`` cause; the initial namespaces (default, kube-system,
kube-public) may not be deleted. Creates on subresources count too (a
``pods/binding``, ``pods/eviction`` or ``serviceaccounts/token`` in a
terminating namespace is refused, which ``kubectl drain`` expects).

Every namespaced create asks for its namespace, and a storage read under
write load costs more than the rest of the check. So, as upstream's plugin
reads an informer, the plugin reads the namespaces lister the server shares
between admission plugins (``admission.lister``), and storage only when the
lister cannot answer: before it has synced, while it is behind this server's
own namespace writes (a namespace created or deleted a moment ago), for a
namespace it does not hold (created through another server, or missing), and
for upstream's "force live lookup" window: 30 seconds after a namespace's
deletion (or update) started, its state is read from storage, since a
deletion made through another API server reaches the watch later and a
create in it must already be refused.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kajitori.admission.chain import Plugin
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.admission.lister import StoreLister
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
NamespaceGetter = Callable[[str], Awaitable[Object]]

IMMORTAL_NAMESPACES = frozenset(("default", "kube-system", "kube-public"))
# Upstream's forceLiveLookupTTL: how long a namespace whose deletion started
# is read from storage rather than from the lister.
FORCE_LIVE_LOOKUP_SECONDS = 30.0
# Upstream's v1.NamespaceTerminatingCause.
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


class NamespaceLifecycle(Plugin):
    def __init__(
        self, get_namespace: NamespaceGetter, namespaces: StoreLister | None = None
    ) -> None:
        """``namespaces``: the shared lister; without it every check reads storage."""
        self.get_namespace = get_namespace
        self.namespaces = namespaces
        # Namespace name -> until when (monotonic seconds) it is read from storage.
        self._force_live: dict[str, float] = {}

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if not store.info.namespaced:
            if operation == "UPDATE" and _is_namespaces(store):
                self.force_live_lookup(obj.get("metadata", {}).get("name", ""))
            return
        if operation != "CREATE":
            return
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace", "")
        # Every namespaced create comes here: the lister's answer without a coroutine.
        terminating = self._lister_terminating(namespace)
        if terminating is None:
            terminating = _is_terminating(await self.get_namespace(namespace))
        if terminating:
            name = meta.get("name") or meta.get("generateName", "")
            raise _terminating_error(store.gr, name, namespace)

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        """A create on a subresource (binding, eviction, token) is a create in the namespace."""
        if operation != "CREATE" or not namespace:
            return
        if await self._terminating(namespace):
            target = ctx.target
            gr = store.gr if target is None else errors.GroupResource(target.group, target.resource)
            raise _terminating_error(gr, name, namespace)

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        if _is_namespaces(store):
            name = obj["metadata"]["name"]
            if name in IMMORTAL_NAMESPACES:
                raise errors.forbidden(store.gr, name, "this namespace may not be deleted")
            self.force_live_lookup(name)

    def force_live_lookup(self, name: str) -> None:
        """Read ``name`` from storage for a while: it is changing faster than the lister shows."""
        self._force_live[name] = time.monotonic() + FORCE_LIVE_LOOKUP_SECONDS

    def forced_live(self, name: str) -> bool:
        until = self._force_live.get(name)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._force_live[name]
        return False

    async def _terminating(self, name: str) -> bool:
        """Whether the namespace is being deleted; 404 if it does not exist."""
        terminating = self._lister_terminating(name)
        if terminating is None:
            terminating = _is_terminating(await self.get_namespace(name))
        return terminating

    def _lister_terminating(self, name: str) -> bool | None:
        """The lister's answer (its objects are never mutated); None: read storage."""
        if self.namespaces is None or (self._force_live and self.forced_live(name)):
            return None
        ns = self.namespaces.cached_get("", name)
        return None if ns is None else _is_terminating(ns)


def _is_terminating(ns: Object) -> bool:
    return ns.get("status", {}).get("phase") == "Terminating" or bool(
        ns["metadata"].get("deletionTimestamp")
    )


def _terminating_error(gr: errors.GroupResource, name: str, namespace: str) -> errors.StatusError:
    """Upstream's refusal, with the cause clients (kubectl drain) look for."""
    error = errors.forbidden(
        gr,
        name,
        f"unable to create new content in namespace {namespace} because it is being terminated",
    )
    error.causes.append(
        errors.StatusCause(
            NAMESPACE_TERMINATING_CAUSE,
            f"namespace {namespace} is being terminated",
            "metadata.namespace",
        )
    )
    return error


def _is_namespaces(store: Store) -> bool:
    return store.info.group == "" and store.info.plural == "namespaces"
