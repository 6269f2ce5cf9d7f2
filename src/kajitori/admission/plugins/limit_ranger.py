"""LimitRanger: LimitRange defaults and bounds for pods and claims.

Upstream: plugin/pkg/admission/limitranger/admission.go. For every
LimitRange of the namespace:

* mutating, pods on CREATE: a container or init container without a
  request (limit) for a resource the range's Container item has a
  ``defaultRequest`` (``default``) for gets it, and the pod is annotated
  ``kubernetes.io/limit-ranger: LimitRanger plugin set: cpu request for
  container nginx; ...`` (a later range's annotation replaces an earlier one's,
  as upstream);
* validating, pods on CREATE and claims on CREATE and UPDATE: ``min``,
  ``max`` and ``maxLimitRequestRatio`` of Container items hold for each
  container and init container, of Pod items for the pod's total (init
  containers as the kubelet runs them), of PersistentVolumeClaim items for
  the claim's storage request; a violation is 403 with upstream's wording,
  e.g. ``maximum cpu usage per Container is 1, but limit is 2``; several
  from one range are reported together as ``[a, b]``.

Pod updates are not checked (containers' resources are immutable), nor
objects being deleted. LimitRanges are read from a lister (``admission.lister``,
a watch of the limitranges store), as upstream reads an informer cache; a new
range written through this server applies at once (the lister answers only
once its watch has shown that write, storage until then). A namespace the
lister holds no range for is read from storage, at most once per
``LIVE_LOOKUP_SECONDS`` (upstream's liveLookupCache), since a range written
through another API server may not have reached the watch yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.api import quota
from kajitori.machinery import errors
from kajitori.machinery.quantity import Quantity
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
StoreLookup = Callable[[str, str, str], "Store | None"]

ANNOTATION = "kubernetes.io/limit-ranger"
# Upstream's liveTTL: how long a storage read of a namespace the lister holds
# no range for is trusted.
LIVE_LOOKUP_SECONDS = 30.0
# Upstream's liveLookupCache size (namespaces whose storage read is remembered).
LIVE_LOOKUP_ENTRIES = 10_000
# Upstream's resource.MaxMilliValue: beyond it values are compared in whole units.
MAX_MILLI_VALUE = (2**63 - 1) // 1000


class LimitRanger(Plugin):
    """The ``LimitRanger`` admission plugin (mutating and validating)."""

    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {("", "pods"), ("", "persistentvolumeclaims")}
    )

    def __init__(self, lookup: StoreLookup) -> None:
        self.lookup = lookup
        self.lister = StoreLister(
            lambda: lookup("", "v1", "limitranges"), name="LimitRanger limitranges watch"
        )
        # namespace -> (monotonic expiry, the ranges storage held).
        self._live: dict[str, tuple[float, list[Object]]] = {}

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if not _is(store, "pods") or operation != "CREATE":
            return
        for limit_range in await self._limit_ranges(obj):
            apply_defaults(limit_range, obj)

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        check: Callable[[Object, Object], list[str]]
        if _is(store, "pods"):
            check = validate_pod
            # Upstream also checks a resize (pods/resize UPDATE) against the ranges.
            resize = ctx.target is not None and ctx.target.subresource == "resize"
            if operation != "CREATE" and not (operation == "UPDATE" and resize):
                return
        elif _is(store, "persistentvolumeclaims"):
            check = validate_claim
            if operation not in ("CREATE", "UPDATE") or _being_deleted(old):
                return
            if old is not None and old.get("spec") == obj.get("spec"):
                return  # a status write (we cannot see the subresource; upstream skips those)
        else:
            return
        for limit_range in await self._limit_ranges(obj):
            problems = check(limit_range, obj)
            if problems:
                name = str((obj.get("metadata") or {}).get("name") or "")
                raise errors.forbidden(store.gr, name, aggregate(problems))

    async def _limit_ranges(self, obj: Object) -> list[Object]:
        """The namespace's ranges: the lister's, else storage's (see the module)."""
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        if not namespace:
            return []
        cached = self.lister.cached_list(namespace)
        if cached:
            return cached
        if cached is not None:  # current, and no range: storage, remembered a while
            live = self._live.get(namespace)
            if live is not None and live[0] > time.monotonic():
                return live[1]
        ranges = self.lookup("", "v1", "limitranges")
        if ranges is None:
            return []
        items = (await ranges.list(namespace, ListOptions())).items
        if cached is not None:
            if len(self._live) >= LIVE_LOOKUP_ENTRIES:
                self._live.clear()
            self._live[namespace] = (time.monotonic() + LIVE_LOOKUP_SECONDS, items)
        return items


def _is(store: Store, plural: str) -> bool:
    return store.info.group == "" and store.info.plural == plural


def _being_deleted(old: Object | None) -> bool:
    return old is not None and bool((old.get("metadata") or {}).get("deletionTimestamp"))


def aggregate(problems: list[str]) -> str:
    """Upstream's utilerrors aggregate text: one message alone, several as ``[a, b]``."""
    unique = list(dict.fromkeys(problems))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _items(limit_range: Object, kind: str) -> list[Object]:
    limits = (limit_range.get("spec") or {}).get("limits") or ()
    return [i for i in limits if isinstance(i, dict) and i.get("type") == kind]


# ----- defaults ------------------------------------------------------------------


def apply_defaults(limit_range: Object, pod: Object) -> None:
    """Fill missing container requests and limits from the range's Container items."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in _items(limit_range, "Container"):
        requests.update(item.get("defaultRequest") or {})
        limits.update(item.get("default") or {})
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for key, label in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(key) or ():
            if isinstance(container, dict):
                notes.extend(_default_container(container, requests, limits, label))
    if notes:
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def _default_container(
    container: Object, requests: dict[str, Any], limits: dict[str, Any], label: str
) -> list[str]:
    resources = container.get("resources")
    if not isinstance(resources, dict):
        resources = container["resources"] = {}
    notes = []
    for key, defaults, word in (("requests", requests, "request"), ("limits", limits, "limit")):
        current = resources.get(key)
        if not isinstance(current, dict):
            current = {}
        added = sorted(name for name in defaults if name not in current)
        for name in added:
            current[name] = defaults[name]
        if current:
            resources[key] = current
        if added:
            notes.append(f"{', '.join(added)} {word} for {label} {container.get('name', '')}")
    return notes


# ----- bounds --------------------------------------------------------------------


def validate_pod(limit_range: Object, pod: Object) -> list[str]:
    problems: list[str] = []
    spec = pod.get("spec") or {}
    for item in _items(limit_range, "Container"):
        for key in ("containers", "initContainers"):
            for container in spec.get(key) or ():
                if isinstance(container, dict):
                    resources = container.get("resources") or {}
                    problems += _bounds(
                        item,
                        "Container",
                        quota.parse_list(resources.get("requests")),
                        quota.parse_list(resources.get("limits")),
                    )
    for item in _items(limit_range, "Pod"):
        problems += _bounds(
            item,
            "Pod",
            quota.pod_aggregate(pod, "requests", pod_level=False),
            quota.pod_aggregate(pod, "limits", pod_level=False),
        )
    return problems


def validate_claim(limit_range: Object, pvc: Object) -> list[str]:
    """Claims are never defaulted; min and max apply to ``spec.resources.requests``."""
    requests = quota.parse_list(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))
    problems: list[str] = []
    for item in _items(limit_range, "PersistentVolumeClaim"):
        for name, enforced in sorted(quota.parse_list(item.get("min")).items()):
            problems += _min(name, "PersistentVolumeClaim", enforced, requests, {})
        for name, enforced in sorted(quota.parse_list(item.get("max")).items()):
            problems += _max_request(name, "PersistentVolumeClaim", enforced, requests)
    return problems


Resources = dict[str, Quantity]


def _bounds(item: Object, kind: str, requests: Resources, limits: Resources) -> list[str]:
    problems: list[str] = []
    for name, enforced in sorted(quota.parse_list(item.get("min")).items()):
        problems += _min(name, kind, enforced, requests, limits)
    for name, enforced in sorted(quota.parse_list(item.get("max")).items()):
        problems += _max(name, kind, enforced, requests, limits)
    for name, enforced in sorted(quota.parse_list(item.get("maxLimitRequestRatio")).items()):
        problems += _ratio(name, kind, enforced, requests, limits)
    return problems


def _comparable(*values: Quantity | None) -> list[int]:
    """Values at a common precision: thousandths unless one is too large for that."""
    present = [v if v is not None else quota.ZERO for v in values]
    if all(v.value() <= MAX_MILLI_VALUE for v in present):
        return [v.milli_value() for v in present]
    return [v.value() for v in present]


def _min(
    name: str, kind: str, enforced: Quantity, requests: Resources, limits: Resources
) -> list[str]:
    req, lim = requests.get(name), limits.get(name)
    observed_req, observed_lim, bound = _comparable(req, lim, enforced)
    if req is None:
        return [f"minimum {name} usage per {kind} is {enforced}.  No request is specified"]
    if observed_req < bound:
        return [f"minimum {name} usage per {kind} is {enforced}, but request is {req}"]
    if lim is not None and observed_lim < bound:
        return [f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"]
    return []


def _max(
    name: str, kind: str, enforced: Quantity, requests: Resources, limits: Resources
) -> list[str]:
    req, lim = requests.get(name), limits.get(name)
    observed_req, observed_lim, bound = _comparable(req, lim, enforced)
    if lim is None:
        return [f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"]
    if observed_lim > bound:
        return [f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"]
    if req is not None and observed_req > bound:
        return [f"maximum {name} usage per {kind} is {enforced}, but request is {req}"]
    return []


def _max_request(name: str, kind: str, enforced: Quantity, requests: Resources) -> list[str]:
    req = requests.get(name)
    observed_req, _, bound = _comparable(req, None, enforced)
    if req is None:
        return [f"maximum {name} usage per {kind} is {enforced}.  No request is specified"]
    if observed_req > bound:
        return [f"maximum {name} usage per {kind} is {enforced}, but request is {req}"]
    return []


def _ratio(
    name: str, kind: str, enforced: Quantity, requests: Resources, limits: Resources
) -> list[str]:
    req, lim = requests.get(name), limits.get(name)
    observed_req, observed_lim, _ = _comparable(req, lim, enforced)
    prefix = f"{name} max limit to request ratio per {kind} is {enforced}"
    if req is None or observed_req == 0:
        return [f"{prefix}, but no request is specified or request is 0"]
    if lim is None or observed_lim == 0:
        return [f"{prefix}, but no limit is specified or limit is 0"]
    ratio = observed_lim / observed_req
    observed, allowed = ratio, float(enforced.value())
    if enforced.value() <= MAX_MILLI_VALUE:
        observed, allowed = ratio * 1000, float(enforced.milli_value())
    if observed > allowed:
        return [f"{prefix}, but provided ratio is {ratio:f}"]
    return []
