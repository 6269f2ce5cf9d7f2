"""The admission chain: every enabled plugin, in upstream's order.

Implements the ``Admission`` protocol the generic store calls
(registry.generic.hooks): all mutating plugins run, in order, after
defaulting; all validating plugins run just before storage. A plugin sees
the store it is admitting for (and so the resource's ``ResourceInfo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]


class Plugin(Protocol):
    """One admission plugin; both hooks are optional no-ops by default."""

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None: ...

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None: ...

    async def validate_delete(self, store: Store, obj: Object, ctx: RequestContext) -> None: ...


class AdmissionChain:
    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = tuple(plugins)

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        for plugin in self.plugins:
            await plugin.admit(store, operation, obj, old, ctx)

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        for plugin in self.plugins:
            await plugin.validate(store, operation, obj, old, ctx)

    async def validate_delete(self, store: Store, obj: Object, ctx: RequestContext) -> None:
        for plugin in self.plugins:
            await plugin.validate_delete(store, obj, ctx)
