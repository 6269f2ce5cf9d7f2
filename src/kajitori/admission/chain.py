"""The admission chain: every enabled plugin, in upstream's order.

Implements the ``Admission`` protocol the generic store calls
(registry.generic.hooks): all mutating plugins run, in order, after
defaulting; all validating plugins run just before storage. A plugin sees
the store it is admitting for (and so the resource's ``ResourceInfo``).

A plugin may declare the resources its hooks act on (``ADMITS`` and
``VALIDATES``: sets of (group, plural), the same test its hook makes first;
absent means every resource). The chain works out once per resource which
plugins to await, so a ConfigMap create does not step through the
coroutines of pod-only plugins (decision 0035's addendum).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
# (group, plural): what a plugin's ADMITS / VALIDATES sets hold.
Resource = tuple[str, str]


class Plugin(Protocol):
    """One admission plugin; both hooks are optional no-ops by default."""

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None: ...

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None: ...

    async def validate_delete(self, store: Store, obj: Object, ctx: RequestContext) -> None: ...


def _acts_on(declared: frozenset[Resource] | None, resource: Resource) -> bool:
    return declared is None or resource in declared


class AdmissionChain:
    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = tuple(plugins)
        # (group, plural) -> the plugins whose admit / validate act on it, in order.
        self._admitters: dict[Resource, tuple[Plugin, ...]] = {}
        self._validators: dict[Resource, tuple[Plugin, ...]] = {}

    def _chain(
        self, table: dict[Resource, tuple[Plugin, ...]], attr: str, store: Store
    ) -> tuple[Plugin, ...]:
        resource = (store.info.group, store.info.plural)
        chain = table.get(resource)
        if chain is None:
            chain = tuple(p for p in self.plugins if _acts_on(getattr(p, attr, None), resource))
            table[resource] = chain
        return chain

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        for plugin in self._chain(self._admitters, "ADMITS", store):
            await plugin.admit(store, operation, obj, old, ctx)

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        for plugin in self._chain(self._validators, "VALIDATES", store):
            await plugin.validate(store, operation, obj, old, ctx)

    async def validate_delete(self, store: Store, obj: Object, ctx: RequestContext) -> None:
        for plugin in self.plugins:
            await plugin.validate_delete(store, obj, ctx)
