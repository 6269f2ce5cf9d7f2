"""Reinvocation across the mutating phase (upstream: apiserver/pkg/admission reinvocation.go,
and the reinvocation contexts of plugin/webhook/mutating and plugin/policy/mutating).

Owns the state one admission of one object carries between its two passes
through the mutating plugins:

* ``Reinvocation`` (upstream's ReinvocationContext): whether this is the
  second pass, and whether a plugin asked for one by changing the object.
  The chain (``admission.chain``) runs every mutating plugin again, once,
  when asked; in-tree plugins are idempotent, as upstream requires.
* ``Invoked`` (one per reinvocable plugin: MutatingAdmissionPolicy and
  MutatingAdmissionWebhook): which of its IfNeeded hooks ran before a change,
  which must run again, and the object as the plugin last left it, so a
  change made by any later plugin (a webhook after a policy) sends that
  plugin's IfNeeded hooks round again.

It lives on ``RequestContext.reinvocation`` and is made only by a plugin that
has something to call: a request no policy or webhook touches pays nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from kajitori.registry.generic.request import RequestContext

Object = dict[str, Any]


@dataclass(slots=True)
class Invoked:
    """One plugin's IfNeeded hooks: those run so far, and those to run again."""

    previously_invoked: set[Hashable] = field(default_factory=set)
    reinvoke: set[Hashable] = field(default_factory=set)
    # The object as this plugin left it; kept only while a hook may need to run again.
    last_output: Object | None = None

    def should_reinvoke(self, key: Hashable) -> bool:
        return key in self.reinvoke

    def add_previously_invoked(self, key: Hashable) -> None:
        """An IfNeeded hook ran: a change after it makes it run again."""
        self.previously_invoked.add(key)

    def require_reinvoking_previously_invoked(self) -> None:
        """The object changed: every IfNeeded hook that ran before has to see it."""
        if self.previously_invoked:
            self.reinvoke |= self.previously_invoked
            self.previously_invoked = set()

    def output_changed(self, obj: Object | None) -> bool:
        """Whether another plugin changed ``obj`` since this plugin last ran."""
        return self.last_output != obj

    def record_output(self, obj: Object | None, reinvoke: Reinvocation) -> None:
        """Remember ``obj`` as this plugin leaves it.

        Copied only when it can matter: a second pass is still to come, and some
        IfNeeded hook ran (a change with none to rerun asks for nothing).
        """
        if reinvoke.is_reinvoke or not self.previously_invoked or obj is None:
            self.last_output = None
            return
        self.last_output = copy.deepcopy(obj)


@dataclass(slots=True)
class Reinvocation:
    """The reinvocation state of one admission of one object."""

    is_reinvoke: bool = False
    should_reinvoke: bool = False
    plugins: dict[str, Invoked] = field(default_factory=dict)

    def invoked(self, plugin: str) -> Invoked:
        """``plugin``'s own state, made on first use."""
        found = self.plugins.get(plugin)
        if found is None:
            found = self.plugins[plugin] = Invoked()
        return found

    def begin(self, plugin: str, obj: Object | None) -> Invoked:
        """``plugin`` starts a pass: on the second, a change by others reruns its IfNeeded hooks."""
        state = self.invoked(plugin)
        if self.is_reinvoke and state.output_changed(obj):
            state.require_reinvoking_previously_invoked()
        return state

    def changed(self, state: Invoked) -> None:
        """A hook of ``state``'s plugin changed the object: rerun the chain and earlier hooks."""
        state.require_reinvoking_previously_invoked()
        self.should_reinvoke = True


def of(ctx: RequestContext) -> Reinvocation:
    """The request's reinvocation state, made when a plugin first needs it."""
    state: Reinvocation | None = ctx.reinvocation
    if state is None:
        state = ctx.reinvocation = Reinvocation()
    return state
