"""RuntimeClass: a pod naming a RuntimeClass takes its overhead and scheduling.

As upstream's plugin (plugin/pkg/admission/runtimeclass), on by default, for
pod creates only:

* admit: a ``runtimeClassName`` that names no RuntimeClass is refused
  (``pod rejected: RuntimeClass "x" not found``); the class's
  ``overhead.podFixed`` becomes ``spec.overhead`` (a different overhead the
  pod already has is refused); its ``scheduling.nodeSelector`` is merged
  into the pod's (a key with another value is a conflict) and its
  tolerations merged with the pod's, a toleration another one covers being
  dropped (upstream's MergeTolerations);
* validate: ``spec.overhead`` must be exactly the class's, and a pod without
  a class (or whose class has none) may not carry one.

The class is read from the runtimeclasses store at each create that names
one (upstream reads its informer and falls back to a live read).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.api.core_v1 import validation as quantities
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
# (group, version, plural) -> the store serving it.
Lookup = Callable[[str, str, str], Any]

PODS = errors.GroupResource("", "pods")
_RUNTIME_CLASSES = ("node.k8s.io", "v1", "runtimeclasses")


def _name(obj: Object) -> str:
    meta = obj.get("metadata") or {}
    name: str = meta.get("name") or meta.get("generateName") or ""
    return name


def _forbidden(pod: Object, reason: str) -> errors.StatusError:
    return errors.forbidden(PODS, _name(pod), reason)


def same_resources(a: Any, b: Any) -> bool:
    """apiequality.Semantic for ResourceLists: same names, equal quantities; nil == empty."""
    a = a if isinstance(a, dict) else {}
    b = b if isinstance(b, dict) else {}
    if a.keys() != b.keys():
        return False
    return all(quantities.quantity_value(a[k]) == quantities.quantity_value(b[k]) for k in a)


def _is_superset(ss: Object, t: Object) -> bool:
    """Whether toleration ``ss`` tolerates everything ``t`` does (upstream's isSuperset)."""
    if ss == t:
        return True
    if t.get("key", "") != ss.get("key", "") and (ss.get("key") or ss.get("operator") != "Exists"):
        return False
    if t.get("effect", "") != ss.get("effect", "") and ss.get("effect"):
        return False
    if ss.get("effect") == "NoExecute" and ss.get("tolerationSeconds") is not None:
        seconds = t.get("tolerationSeconds")
        if seconds is None or seconds > ss["tolerationSeconds"]:
            return False
    operator = ss.get("operator") or ""
    if operator in ("", "Equal"):
        return t.get("operator") == "Equal" and t.get("value", "") == ss.get("value", "")
    return operator == "Exists"


def merge_tolerations(first: list[Object], second: list[Object]) -> list[Object]:
    """Both lists, less each toleration that another one covers (the first of equals kept)."""
    every = [*first, *second]
    merged: list[Object] = []
    for i, toleration in enumerate(every):
        if any(_is_superset(kept, toleration) for kept in merged):
            continue
        later = every[i + 1 :]
        if any(other != toleration and _is_superset(other, toleration) for other in later):
            continue
        merged.append(toleration)
    return merged


class RuntimeClass(Plugin):
    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        spec = self._pod_spec(store, operation, obj)
        if spec is None:
            return
        runtime_class = await self._runtime_class(obj, spec)
        if runtime_class is None:
            return
        overhead = runtime_class.get("overhead")
        if isinstance(overhead, dict) and overhead.get("podFixed") is not None:
            pod_fixed = overhead["podFixed"]
            if spec.get("overhead") is not None and not same_resources(pod_fixed, spec["overhead"]):
                raise _forbidden(
                    obj,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                )
            spec["overhead"] = dict(pod_fixed)
        scheduling = runtime_class.get("scheduling")
        if isinstance(scheduling, dict):
            _set_scheduling(obj, spec, scheduling)

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        spec = self._pod_spec(store, operation, obj)
        if spec is None:
            return
        runtime_class = await self._runtime_class(obj, spec)
        overhead = (runtime_class or {}).get("overhead")
        if isinstance(overhead, dict) and overhead.get("podFixed") is not None:
            if not same_resources(overhead["podFixed"], spec.get("overhead")):
                raise _forbidden(
                    obj,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                )
        elif spec.get("overhead") is not None:
            raise _forbidden(
                obj,
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
            )

    @staticmethod
    def _pod_spec(store: Store, operation: str, obj: Object) -> Object | None:
        if operation != "CREATE" or store.info.group != "" or store.info.plural != "pods":
            return None
        spec = obj.get("spec")
        return spec if isinstance(spec, dict) else None

    async def _runtime_class(self, pod: Object, spec: Object) -> Object | None:
        name = spec.get("runtimeClassName")
        if name is None:
            return None
        classes = self.lookup(*_RUNTIME_CLASSES)
        if classes is None:
            return None
        try:
            found: Object = await classes.get("", name)
        except errors.StatusError as exc:
            if exc.code == 404:
                raise _forbidden(pod, f'pod rejected: RuntimeClass "{name}" not found') from None
            raise
        return found


def _set_scheduling(pod: Object, spec: Object, scheduling: Object) -> None:
    wanted = scheduling.get("nodeSelector")
    if isinstance(wanted, dict):
        selector = spec.get("nodeSelector")
        if not isinstance(selector, dict):
            selector = {}
        for key, value in wanted.items():
            if key in selector and selector[key] != value:
                raise _forbidden(
                    pod,
                    f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                    f"pod.spec.nodeSelector[{key}] = {selector[key]}",
                )
            selector[key] = value
        if selector:
            spec["nodeSelector"] = selector
    # Upstream merges whenever the class has scheduling: the pod's own redundant
    # tolerations are dropped too.
    extra = scheduling.get("tolerations")
    extra = [t for t in extra if isinstance(t, dict)] if isinstance(extra, list) else []
    mine = spec.get("tolerations")
    mine = [t for t in mine if isinstance(t, dict)] if isinstance(mine, list) else []
    merged = merge_tolerations(mine, extra)
    if merged:
        spec["tolerations"] = merged
