"""The admission chain: every enabled plugin, in upstream's order.

Implements the ``Admission`` protocol the generic store calls
(registry.generic.hooks): all mutating plugins run, in order, after
defaulting; all validating plugins run just before storage. A plugin sees
the store it is admitting for (and so the resource's ``ResourceInfo``).

A plugin subclasses ``Plugin`` and overrides the hooks it needs; the chain
awaits only overridden hooks. It may declare the resources its hooks act on (``ADMITS`` and
``VALIDATES``: sets of (group, plural), the same test its hook makes first;
absent means every resource). The chain works out once per resource which
plugins to await, so a ConfigMap create does not step through the
coroutines of pod-only plugins (decision 0035's addendum).

Requests whose object is not of the store's kind (CONNECT with its options:
``pods/exec``…; the CREATE of a ``policy/v1 Eviction`` on ``pods/eviction``,
a ``v1 Binding`` on ``pods/binding`` or ``bindings``, an
``authentication.k8s.io/v1 TokenRequest`` on ``serviceaccounts/token``) reach
only the plugins that override ``admit_subresource``/``validate_subresource``
(upstream: the plugins that handle CONNECT, or look at those kinds).
``validate_delete`` gets the request's DeleteOptions.

The mutating plugins run a second time, once, when a policy or webhook plugin
changed the object and asked for it (upstream's reinvoker; the state is
``admission.reinvocation``, made only by a plugin that calls something).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.admission.reinvocation import Reinvocation
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
# (group, plural): what a plugin's ADMITS / VALIDATES sets hold.
Resource = tuple[str, str]


class Plugin:
    """One admission plugin: subclasses override the hooks they need; the rest admit everything."""

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        """Mutate ``obj`` before validation (a mutating plugin)."""

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        """Refuse ``obj`` by raising an API error (a validating plugin)."""

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        """Refuse the deletion of ``obj`` (``options``: the request's) by raising an API error."""

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        """Mutate the object of a CONNECT (its options) or of a subresource's CREATE."""

    async def validate_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        """Refuse a CONNECT (``obj``: its options) or a subresource's CREATE by raising."""

    async def close(self) -> None:
        """Let go of what the plugin holds (connections, watches) when the server stops."""


def _acts_on(declared: frozenset[Resource] | None, resource: Resource) -> bool:
    return declared is None or resource in declared


def _overrides(plugin: Plugin, hook: str) -> bool:
    """Whether ``plugin`` has a ``hook`` of its own (not ``Plugin``'s no-op).

    Not every plugin subclasses Plugin (RBAC's escalation check lives in ``auth``, beside
    this package): one without the hook has none of its own either.
    """
    return getattr(type(plugin), hook, None) not in (None, getattr(Plugin, hook))


def _reinvoking(ctx: RequestContext) -> bool:
    """Whether a plugin changed the object and the mutating plugins must run once more.

    Upstream's reinvoker: the second pass reruns every mutating plugin (in-tree
    ones are idempotent); a policy or webhook plugin reruns only its IfNeeded
    hooks that ran before a change (admission.reinvocation).
    """
    state: Reinvocation = ctx.reinvocation
    if not state.should_reinvoke:
        return False
    state.is_reinvoke = True
    return True


class AdmissionChain:
    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = tuple(plugins)
        # (group, plural) -> the plugins whose admit / validate act on it, in order.
        self._admitters: dict[Resource, tuple[Plugin, ...]] = {}
        self._validators: dict[Resource, tuple[Plugin, ...]] = {}
        self._delete_validators = self._overriding("validate_delete")
        self._subresource_admitters = self._overriding("admit_subresource")
        self._subresource_validators = self._overriding("validate_subresource")

    def _overriding(self, hook: str) -> tuple[Plugin, ...]:
        return tuple(p for p in self.plugins if _overrides(p, hook))

    def _chain(
        self, table: dict[Resource, tuple[Plugin, ...]], hook: str, declared: str, store: Store
    ) -> tuple[Plugin, ...]:
        resource = (store.info.group, store.info.plural)
        chain = table.get(resource)
        if chain is None:
            chain = tuple(
                p
                for p in self.plugins
                if _overrides(p, hook) and _acts_on(getattr(p, declared, None), resource)
            )
            table[resource] = chain
        return chain

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        plugins = self._chain(self._admitters, "admit", "ADMITS", store)
        # Each admission of an object starts afresh (a patch retried after a conflict admits again).
        ctx.reinvocation = None
        for plugin in plugins:
            await plugin.admit(store, operation, obj, old, ctx)
        # Only a policy or webhook that called something made a state: none, no second look.
        if ctx.reinvocation is not None and _reinvoking(ctx):
            for plugin in plugins:
                await plugin.admit(store, operation, obj, old, ctx)

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        for plugin in self._chain(self._validators, "validate", "VALIDATES", store):
            await plugin.validate(store, operation, obj, old, ctx)

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        for plugin in self._delete_validators:
            await plugin.validate_delete(store, obj, ctx, options)

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        ctx.reinvocation = None
        for plugin in self._subresource_admitters:
            await plugin.admit_subresource(store, operation, name, namespace, obj, ctx)
        if ctx.reinvocation is not None and _reinvoking(ctx):
            for plugin in self._subresource_admitters:
                await plugin.admit_subresource(store, operation, name, namespace, obj, ctx)

    async def validate_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        for plugin in self._subresource_validators:
            await plugin.validate_subresource(store, operation, name, namespace, obj, ctx)

    async def close(self) -> None:
        for plugin in self._overriding("close"):
            await plugin.close()
