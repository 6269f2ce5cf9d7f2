"""Priority: resolves a pod's ``priorityClassName`` to ``spec.priority``.

As upstream's plugin (plugin/pkg/admission/priority):

* pods, on create: no class name takes the global default class (its name,
  value and preemption policy), or priority 0 when none is marked default;
  a named class must exist (``no PriorityClass with name x was found``); a
  ``spec.priority`` or ``spec.preemptionPolicy`` given by the user must
  equal what the class says, else Forbidden with upstream's message. On
  update the stored priority and policy are kept (they are immutable);
* priorityclasses: at most one may be ``globalDefault`` (``PriorityClass x
  is already marked as default. Only one default can exist``);
* the system classes may not be deleted (upstream refuses that in the
  PriorityClass REST storage; the answer is the same Forbidden).

Classes are read through ``list_classes`` (the priorityclasses store); given
a ``lister`` (``admission.lister``), a pod's class is looked up there first,
as upstream's plugin reads its informer, and storage is read only when the
lister cannot answer or does not hold the class named.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.api.scheduling_v1 import defaults, validation
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
ClassLister = Callable[[], Awaitable[list[Object]]]

DEFAULT_PRIORITY = 0
PODS = errors.GroupResource("", "pods")
PRIORITY_CLASSES = errors.GroupResource("scheduling.k8s.io", "priorityclasses")


def _is(store: Store, group: str, plural: str) -> bool:
    return store.info.group == group and store.info.plural == plural


def default_class(classes: list[Object]) -> Object | None:
    """The global default; with several (a race), the lowest value, as upstream picks."""
    marked = [c for c in classes if c.get("globalDefault")]
    return min(marked, key=lambda c: c.get("value") or 0) if marked else None


class Priority(Plugin):
    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {("scheduling.k8s.io", "priorityclasses")}
    )

    def __init__(self, list_classes: ClassLister, *, lister: StoreLister | None = None) -> None:
        self.list_classes = list_classes
        self.lister = lister

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if not _is(store, "", "pods") or not isinstance(obj.get("spec"), dict):
            return
        spec = obj["spec"]
        if operation == "UPDATE" and old is not None:
            for key in ("priority", "preemptionPolicy"):
                if (old.get("spec") or {}).get(key) is not None:
                    spec[key] = old["spec"][key]
            return
        if operation != "CREATE":
            return
        name, priority, policy = await self._resolve(obj)
        if spec.get("priority") is not None and spec["priority"] != priority:
            raise errors.forbidden(
                PODS,
                _name(obj),
                f"the integer value of priority ({spec['priority']}) must not be provided in "
                f"pod spec; priority admission controller computed {priority} from the given "
                "PriorityClass name",
            )
        if (
            spec.get("preemptionPolicy") is not None
            and policy
            and spec["preemptionPolicy"] != policy
        ):
            raise errors.forbidden(
                PODS,
                _name(obj),
                f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not be "
                f"provided in pod spec; priority admission controller computed {policy} from the "
                "given PriorityClass name",
            )
        if name:
            spec["priorityClassName"] = name
        spec["priority"] = priority
        if policy:
            spec["preemptionPolicy"] = policy

    async def _resolve(self, pod: Object) -> tuple[str, int, str]:
        """(class name, priority, preemption policy) for ``pod``."""
        wanted = pod["spec"].get("priorityClassName") or ""
        classes = await self._classes(wanted)
        if not wanted:
            found = default_class(classes)
            if found is None:
                return "", DEFAULT_PRIORITY, defaults.PREEMPT_LOWER_PRIORITY
        else:
            found = next((c for c in classes if c["metadata"]["name"] == wanted), None)
            if found is None:
                raise errors.forbidden(
                    PODS, _name(pod), f"no PriorityClass with name {wanted} was found"
                )
        policy = found.get("preemptionPolicy") or defaults.PREEMPT_LOWER_PRIORITY
        return found["metadata"]["name"], int(found.get("value") or 0), policy

    async def _classes(self, wanted: str) -> list[Object]:
        """Every class, from the lister when it is current and holds ``wanted`` (if any)."""
        cached = self.lister.cached_list("") if self.lister is not None else None
        if cached is not None and (
            not wanted or any(c["metadata"]["name"] == wanted for c in cached)
        ):
            return cached
        return await self.list_classes()

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if not _is(store, "scheduling.k8s.io", "priorityclasses") or not obj.get("globalDefault"):
            return
        if operation not in ("CREATE", "UPDATE"):
            return
        current = default_class(await self.list_classes())
        if current is None:
            return
        if operation == "CREATE" or current["metadata"]["name"] != _name(obj):
            raise errors.forbidden(
                PRIORITY_CLASSES,
                _name(obj),
                f"PriorityClass {current['metadata']['name']} is already marked as default. "
                "Only one default can exist",
            )

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        if not _is(store, "scheduling.k8s.io", "priorityclasses"):
            return
        name = _name(obj)
        if not validation.known_system_class_problem(
            name, obj.get("value"), obj.get("globalDefault")
        ):
            raise errors.forbidden(
                PRIORITY_CLASSES, name, "this is a system priority class and cannot be deleted"
            )


def _name(obj: Object) -> str:
    name: str = (obj.get("metadata") or {}).get("name") or ""
    return name
