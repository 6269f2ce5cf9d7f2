"""DynamicResources: a pod that asks for devices goes where its ResourceClaims can be allocated.

Upstream's plugins/dynamicresources with the structured allocator of
k8s.io/dynamic-resource-allocation/structured, at kajitori's size. A pod's
claims are its ``spec.resourceClaims[]`` (``podclaims`` names them).

* PreEnqueue (``pre_enqueue``): every claim must exist (and a generated one
  be the pod's, and none be being deleted); until then the pod is not tried
  (``pod "ns/p": ResourceClaim not created yet`` and upstream's other texts).
* PreFilter: the same checks, then for each claim still to allocate: not
  already being allocated for another pod (``resource claim ns/c is in the
  process of being allocated``), every request's DeviceClass present
  (``request r: device class c does not exist``). An ``Allocator`` is made
  once for the cycle over the cluster's ResourceSlices, DeviceClasses and
  the devices already taken (allocated claims, allocations in flight).
* Filter: an allocated claim's ``nodeSelector`` must match the node
  (``resourceclaim not available on the node``); the claims to allocate must
  all be allocatable there (``cannot allocate all claims``). The allocator
  takes devices of slices that reach the node (``nodeName``,
  ``nodeSelector``, ``allNodes``, or per device), from complete pools at
  their newest generation, matching the class's and the request's CEL
  selectors (``device`` as upstream's CEL environment shows it),
  ``ExactCount`` (``count``) or ``All`` (every matching device, at least
  one) per request, ``firstAvailable`` subrequests tried in order, devices
  with a ``NoSchedule``/``NoExecute`` taint only when tolerated, never a
  device another claim holds. A CEL evaluation error is an error for the
  cycle, with upstream's message.
* Reserve (``reserve``): the chosen node's allocation is computed again and
  remembered as in flight, so no other pod is given the same devices.
* PreBind (``pre_bind``): per claim not yet reserved for the pod, add the
  ``resource.kubernetes.io/delete-protection`` finalizer, then write
  ``status.allocation`` (results with request, driver, pool and device;
  the configuration of classes and claim; the node selector) and the pod in
  ``status.reservedFor`` in one status update; a conflict re-reads and
  retries. The written claim stays assumed until the informer shows it.
* Unreserve (``unreserve``): the in-flight allocations are dropped and, when
  binding failed, the pod is taken back out of ``reservedFor``.

Left out: constraints (``matchAttribute``), counters of partitionable
devices, consumable capacity, admin access and binding conditions (devices
that declare binding conditions are not chosen), DeviceTaintRules, scoring,
and PostFilter's deallocation.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from kajitori.api.apiextensions_v1 import cel as crd_cel
from kajitori.api.apiextensions_v1 import cel_library
from kajitori.api.resource_v1 import podclaims
from kajitori.client import informer, rest
from kajitori.scheduler import framework
from kajitori.scheduler.plugins import node_affinity

Object = dict[str, Any]
DeviceID = tuple[str, str, str]  # (driver, pool, device)

NAME = "DynamicResources"
STATE_KEY = "DynamicResources"
CANNOT_ALLOCATE = "cannot allocate all claims"
NOT_AVAILABLE = "resourceclaim not available on the node"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
RETRIES = 5
# ``device.attributes["domain"]`` / ``device.capacity["domain"]`` with a literal domain:
# upstream's maps answer an empty map for an unknown domain, the ``cel`` package a KeyError.
_DOMAIN_LOOKUP = re.compile(r"""device\.(attributes|capacity)\[\s*["']([^"']+)["']\s*\]""")


class DynamicResourcesError(Exception):
    """Reserve or PreBind could not complete for a pod's claims (retried like any failure)."""


class AllocationError(Exception):
    """Allocation cannot be attempted (upstream's allocator error): aborts the cycle."""


class DraListers(Protocol):
    def claim(self, namespace: str, name: str) -> Object | None: ...

    def claims(self) -> list[Object]: ...

    def slices(self) -> list[Object]: ...

    def device_class(self, name: str) -> Object | None: ...


class InformerListers:
    """``DraListers`` over the scheduler's informer caches."""

    def __init__(self, informers: informer.InformerFactory) -> None:
        self.claim_informer = informers.informer(rest.RESOURCECLAIMS)
        self.slice_informer = informers.informer(rest.RESOURCESLICES)
        self.class_informer = informers.informer(rest.DEVICECLASSES)

    def claim(self, namespace: str, name: str) -> Object | None:
        return self.claim_informer.indexer.get(f"{namespace}/{name}")

    def claims(self) -> list[Object]:
        return self.claim_informer.indexer.list()

    def slices(self) -> list[Object]:
        return self.slice_informer.indexer.list()

    def device_class(self, name: str) -> Object | None:
        return self.class_informer.indexer.get(name)

    def on_change(self, callback: Callable[[], None]) -> None:
        """``callback()`` on every add or update (a claim freed, a slice or class published)."""
        handler = informer.EventHandler(
            on_add=lambda _: callback(), on_update=lambda _, __: callback()
        )
        for source in (self.claim_informer, self.slice_informer, self.class_informer):
            source.add_event_handler(handler)


def _meta(obj: Object) -> Object:
    meta: Object = obj.get("metadata") or {}
    return meta


def _ref(obj: Object) -> str:
    """klog.KObj: ``namespace/name`` (or the name alone)."""
    meta = _meta(obj)
    return f"{meta['namespace']}/{meta.get('name', '')}" if meta.get("namespace") else meta["name"]


def _pod_key(pod: Object) -> str:
    return _ref(pod)


def has_claims(pod: Object) -> bool:
    return bool(podclaims.pod_claims(pod))


# ----- CEL --------------------------------------------------------------------------------


@functools.cache
def _cel_package() -> Any:
    """The ``cel`` package, imported when a selector is first evaluated (not at start-up)."""
    return importlib.import_module("cel")


@functools.lru_cache(maxsize=256)
def _domains(expression: str) -> tuple[tuple[str, str], ...]:
    return tuple(_DOMAIN_LOOKUP.findall(expression))


def _attribute_value(value: Object) -> Any:
    for kind in ("bool", "int", "string", "version"):
        if kind in value:
            return value[kind]
    return None


def device_view(driver: str, device: Object) -> Object:
    """The ``device`` variable of a selector: driver, attributes and capacity by domain."""
    attributes: dict[str, Object] = {}
    for name, value in (device.get("attributes") or {}).items():
        domain, _, ident = name.rpartition("/")
        attributes.setdefault(domain or driver, {})[ident] = _attribute_value(value or {})
    capacity: dict[str, Object] = {}
    for name, value in (device.get("capacity") or {}).items():
        domain, _, ident = name.rpartition("/")
        quantity = cel_library.quantity(str((value or {}).get("value", "0")))
        capacity.setdefault(domain or driver, {})[ident] = quantity
    return {
        "driver": driver,
        "attributes": attributes,
        "capacity": capacity,
        "allowMultipleAllocations": bool(device.get("allowMultipleAllocations")),
    }


def selector_matches(expression: str, view: Object) -> bool:
    """Evaluate one CEL selector against a device view; raises ``ValueError`` on error."""
    variables = view
    missing = [(kind, d) for kind, d in _domains(expression) if d not in view[kind]]
    if missing:
        variables = {
            **view,
            "attributes": dict(view["attributes"]),
            "capacity": dict(view["capacity"]),
        }
        for kind, domain in missing:
            variables[kind][domain] = {}
    compiled = crd_cel.compile_rule(expression)
    context = _cel_package().Context(
        variables={"device": variables}, functions=cel_library.FUNCTIONS
    )
    try:
        result = compiled.program.execute(context)
    except (RuntimeError, KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(str(exc)) from exc
    return result is True


# ----- pools and devices ------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Pool:
    """One (driver, pool) at its newest generation; incomplete while slices are missing."""

    driver: str
    name: str
    generation: int
    slices: list[Object] = dataclasses.field(default_factory=list)
    expected: int = 0

    @property
    def pool_id(self) -> str:
        return f"{self.driver}/{self.name}"

    @property
    def incomplete(self) -> bool:
        return len(self.slices) < self.expected


def gather_pools(slices: Iterable[Object]) -> list[Pool]:
    pools: dict[tuple[str, str], Pool] = {}
    for slice_ in slices:
        spec = slice_.get("spec") or {}
        pool_spec = spec.get("pool") or {}
        key = (str(spec.get("driver") or ""), str(pool_spec.get("name") or ""))
        generation = int(pool_spec.get("generation") or 0)
        pool = pools.get(key)
        if pool is None or generation > pool.generation:
            pool = pools[key] = Pool(key[0], key[1], generation)
        if generation == pool.generation:
            pool.slices.append(slice_)
            pool.expected = max(pool.expected, int(pool_spec.get("resourceSliceCount") or 1))
    return sorted(pools.values(), key=lambda p: (p.driver, p.name))


def _selector_matches_node(selector: Object | None, node: framework.NodeInfo) -> bool:
    terms = (selector or {}).get("nodeSelectorTerms") or []
    return any(node_affinity.term_matches(t, node) for t in terms)


def _reaches(spec: Object, node: framework.NodeInfo) -> bool:
    """Whether a slice spec (or a device, for per-device selection) reaches ``node``."""
    if spec.get("nodeName"):
        return bool(spec["nodeName"] == node.name)
    if spec.get("nodeSelector"):
        return _selector_matches_node(spec["nodeSelector"], node)
    return bool(spec.get("allNodes"))


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A device of a slice that reaches the node."""

    id: DeviceID
    device: Object
    slice: Object


def _candidates(pool: Pool, node: framework.NodeInfo) -> Iterator[Candidate]:
    for slice_ in pool.slices:
        spec = slice_.get("spec") or {}
        per_device = spec.get("perDeviceNodeSelection") is True
        if not per_device and not _reaches(spec, node):
            continue
        for device in spec.get("devices") or ():
            if per_device and not _reaches(device, node):
                continue
            yield Candidate((pool.driver, pool.name, device.get("name", "")), device, slice_)


def allocated_devices(claims: Iterable[Object]) -> set[DeviceID]:
    """The devices held by allocated claims (admin access holds none)."""
    held: set[DeviceID] = set()
    for claim in claims:
        held.update(result_ids(podclaims.allocation(claim)))
    return held


def result_ids(allocation: Object | None) -> Iterator[DeviceID]:
    for result in ((allocation or {}).get("devices") or {}).get("results") or ():
        if not result.get("adminAccess"):
            yield (result.get("driver", ""), result.get("pool", ""), result.get("device", ""))


def _tolerates(toleration: Object, taint: Object) -> bool:
    """Upstream's resourceclaim.ToleratesTaint."""
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def taint_blocks(device: Object, request: Object) -> bool:
    tolerations = request.get("tolerations") or ()
    return any(
        taint.get("effect") in BLOCKING_EFFECTS
        and not any(_tolerates(t, taint) for t in tolerations)
        for taint in device.get("taints") or ()
    )


# ----- the allocator ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Alternative:
    """One way to satisfy a request: the whole request, or one firstAvailable subrequest."""

    name: str  # as results record it: "req" or "req/sub"
    spec: Object  # the ExactDeviceRequest or DeviceSubRequest
    device_class: Object


@dataclasses.dataclass(slots=True)
class _Request:
    claim_index: int
    name: str
    alternatives: list[Alternative]


class Allocator:
    """Upstream's structured Allocator for one cycle: ``allocate(node)`` per node."""

    def __init__(
        self,
        claims: list[Object],
        in_use: set[DeviceID],
        classes: Callable[[str], Object | None],
        slices: Iterable[Object],
    ) -> None:
        self.claims = claims
        self.in_use = in_use
        self.pools = gather_pools(slices)
        self.requests = [r for i, c in enumerate(claims) for r in self._requests(i, c, classes)]
        self._views: dict[DeviceID, Object] = {}
        self._matches: dict[tuple[DeviceID, int, str], bool] = {}

    def _requests(
        self, index: int, claim: Object, classes: Callable[[str], Object | None]
    ) -> Iterator[_Request]:
        for request in ((claim.get("spec") or {}).get("devices") or {}).get("requests") or ():
            name = request.get("name", "")
            if request.get("firstAvailable"):
                shapes = [(f"{name}/{s.get('name', '')}", s) for s in request["firstAvailable"]]
            else:
                shapes = [(name, request.get("exactly") or {})]
            alternatives = []
            for label, spec in shapes:
                class_name = spec.get("deviceClassName") or ""
                found = classes(class_name)
                if found is None:
                    raise AllocationError(
                        f"claim {_ref(claim)}, request {label}: could not retrieve device class "
                        f'{class_name}: deviceclass.resource.k8s.io "{class_name}" not found'
                    )
                alternatives.append(Alternative(label, spec, found))
            yield _Request(index, name, alternatives)

    def allocate(self, node: framework.NodeInfo) -> list[Object] | None:
        """One allocation per claim (in order) on ``node``; None when they do not all fit."""
        candidates = [(p, list(_candidates(p, node))) for p in self.pools]
        chosen: list[list[tuple[Alternative, Candidate]]] = [[] for _ in self.claims]
        taken: set[DeviceID] = set()
        if not self._solve(0, candidates, chosen, taken):
            return None
        return [
            self._result(claim, picks, node)
            for claim, picks in zip(self.claims, chosen, strict=True)
        ]

    def _solve(
        self,
        index: int,
        candidates: list[tuple[Pool, list[Candidate]]],
        chosen: list[list[tuple[Alternative, Candidate]]],
        taken: set[DeviceID],
    ) -> bool:
        if index == len(self.requests):
            return True
        request = self.requests[index]
        for alternative in request.alternatives:
            picks = self._picks(request, alternative, candidates, taken)
            for devices in picks:
                for device in devices:
                    taken.add(device.id)
                    chosen[request.claim_index].append((alternative, device))
                if self._solve(index + 1, candidates, chosen, taken):
                    return True
                for device in devices:
                    taken.discard(device.id)
                    chosen[request.claim_index].pop()
        return False

    def _picks(
        self,
        request: _Request,
        alternative: Alternative,
        candidates: list[tuple[Pool, list[Candidate]]],
        taken: set[DeviceID],
    ) -> Iterator[list[Candidate]]:
        """Sets of devices that would satisfy ``alternative`` now, most preferred first."""
        spec = alternative.spec
        if (spec.get("allocationMode") or "ExactCount") == "All":
            every: list[Candidate] = []
            for pool, devices in candidates:
                if pool.incomplete:
                    raise AllocationError(
                        f"claim {_ref(self.claims[request.claim_index])}, request "
                        f"{alternative.name}: asks for all devices, but resource pool "
                        f"{pool.pool_id} is currently being updated"
                    )
                every += [d for d in devices if self._selectable(request, alternative, d)]
            if every and all(self._usable(d, spec, taken) for d in every):
                yield every
            return
        usable = [
            d
            for pool, devices in candidates
            if not pool.incomplete
            for d in devices
            if self._usable(d, spec, taken) and self._selectable(request, alternative, d)
        ]
        yield from _combinations(usable, int(spec.get("count") or 1))

    def _usable(self, device: Candidate, spec: Object, taken: set[DeviceID]) -> bool:
        if device.id in self.in_use or device.id in taken:
            return False
        if device.device.get("bindingConditions"):
            return False
        return not taint_blocks(device.device, spec)

    def _selectable(self, request: _Request, alternative: Alternative, device: Candidate) -> bool:
        key = (device.id, request.claim_index, alternative.name)
        known = self._matches.get(key)
        if known is None:
            known = self._matches[key] = self._selectors_match(request, alternative, device)
        return known

    def _selectors_match(
        self, request: _Request, alternative: Alternative, device: Candidate
    ) -> bool:
        view = self._views.get(device.id)
        if view is None:
            view = self._views[device.id] = device_view(device.id[0], device.device)
        device_class = alternative.device_class
        for where, selectors in (
            (
                f"class {_meta(device_class).get('name', '')}",
                (device_class.get("spec") or {}).get("selectors"),
            ),
            (f"claim {_ref(self.claims[request.claim_index])}", alternative.spec.get("selectors")),
        ):
            for i, selector in enumerate(selectors or ()):
                expression = (selector.get("cel") or {}).get("expression", "")
                try:
                    if not selector_matches(expression, view):
                        return False
                except ValueError as exc:
                    raise AllocationError(
                        f"{where}: selector #{i}: CEL runtime error: {exc}"
                    ) from exc
        return True

    def _result(
        self, claim: Object, picks: list[tuple[Alternative, Candidate]], node: framework.NodeInfo
    ) -> Object:
        results = []
        for alternative, device in picks:
            result: Object = {
                "request": alternative.name,
                "driver": device.id[0],
                "pool": device.id[1],
                "device": device.id[2],
            }
            if alternative.spec.get("tolerations"):
                result["tolerations"] = copy.deepcopy(alternative.spec["tolerations"])
            results.append(result)
        allocation: Object = {"devices": {"results": results}}
        config = _configuration(claim, picks)
        if config:
            allocation["devices"]["config"] = config
        selector = _node_selector([device for _, device in picks], node)
        if selector is not None:
            allocation["nodeSelector"] = selector
        return allocation


def _combinations(devices: list[Candidate], count: int) -> Iterator[list[Candidate]]:
    """Every ``count`` devices of ``devices``, in order (the first fit is the first tried)."""
    if count <= 0:
        yield []
        return
    for i, device in enumerate(devices):
        for rest_ in _combinations(devices[i + 1 :], count - 1):
            yield [device, *rest_]


def _configuration(claim: Object, picks: list[tuple[Alternative, Candidate]]) -> list[Object]:
    """The classes' configuration (FromClass, for the requests using each) then the claim's."""
    config: list[Object] = []
    by_class: dict[str, tuple[Object, list[str]]] = {}
    for alternative, _ in picks:
        name = _meta(alternative.device_class).get("name", "")
        requests = by_class.setdefault(name, (alternative.device_class, []))[1]
        if alternative.name not in requests:
            requests.append(alternative.name)
    for device_class, requests in by_class.values():
        for item in (device_class.get("spec") or {}).get("config") or ():
            config.append({"source": "FromClass", "requests": requests, **copy.deepcopy(item)})
    for item in ((claim.get("spec") or {}).get("devices") or {}).get("config") or ():
        config.append({"source": "FromClaim", **copy.deepcopy(item)})
    return config


def _node_selector(devices: list[Candidate], node: framework.NodeInfo) -> Object | None:
    """Where the allocation can be used: the node itself for a node-local device, else
    the first slice's (or device's) node selector, else anywhere (None)."""
    selector: Object | None = None
    for device in devices:
        spec = device.slice.get("spec") or {}
        where = device.device if spec.get("perDeviceNodeSelection") is True else spec
        if where.get("nodeName"):
            return {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [node.name]}
                        ]
                    }
                ]
            }
        if selector is None and where.get("nodeSelector"):
            selector = copy.deepcopy(where["nodeSelector"])
    return selector


# ----- the plugin -------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class PodState:
    """PreFilter's findings for one cycle."""

    claims: list[Object]
    to_allocate: list[Object]
    allocator: Allocator | None


@dataclasses.dataclass(slots=True)
class Reservation:
    """Reserve's decisions: the claims of the pod and the allocations to write for some."""

    claims: list[Object]
    allocations: dict[str, Object]  # claim uid -> allocation
    written: list[Object] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.claims


class DynamicResources:
    name = NAME

    def __init__(self, listers: DraListers, client: rest.Client | None = None) -> None:
        self.listers = listers
        self.client = client
        # Allocations decided by Reserve and not yet written, by claim uid.
        self.in_flight: dict[str, Object] = {}
        # Claims written by PreBind that the informer does not show yet, by uid.
        self.assumed: dict[str, Object] = {}
        self._reserved: dict[str, Reservation] = {}

    # ----- claims as this scheduler knows them ----------------------------------------

    def claim_written(self, claim: Object) -> None:
        """Informer event: the assumed copy of ``claim`` is no longer needed once it shows
        what was written (or a newer state)."""
        uid = _meta(claim).get("uid", "")
        assumed = self.assumed.get(uid)
        if assumed is None:
            return
        if _resource_version(claim) >= _resource_version(assumed):
            del self.assumed[uid]

    def claim_deleted(self, claim: Object) -> None:
        self.assumed.pop(_meta(claim).get("uid", ""), None)

    def _claim(self, namespace: str, name: str) -> Object | None:
        cached = self.listers.claim(namespace, name)
        if cached is None:
            return None
        assumed = self.assumed.get(_meta(cached).get("uid", ""))
        if assumed is not None and _resource_version(assumed) > _resource_version(cached):
            return assumed
        return cached

    def _in_use(self) -> set[DeviceID]:
        held = allocated_devices(self.listers.claims())
        held.update(allocated_devices(self.assumed.values()))
        for allocation in self.in_flight.values():
            held.update(result_ids(allocation))
        return held

    def pod_claims(self, pod: Object) -> tuple[list[Object], str]:
        """The pod's claims, or upstream's message why they cannot be used (yet)."""
        namespace = _meta(pod).get("namespace", "")
        claims = []
        try:
            for _, name, check_owner in podclaims.named_claims(pod):
                claim = self._claim(namespace, name)
                if claim is None:
                    return [], f'resourceclaim.resource.k8s.io "{name}" not found'
                if _meta(claim).get("deletionTimestamp"):
                    return [], f'resourceclaim "{name}" is being deleted'
                if check_owner:
                    problem = podclaims.is_for_pod(pod, claim)
                    if problem is not None:
                        return [], problem
                claims.append(claim)
        except podclaims.ClaimNameError as exc:
            return [], str(exc)
        return claims, ""

    # ----- PreEnqueue / PreFilter -------------------------------------------------------

    def pre_enqueue(self, pod: Object) -> str:
        """Why the pod should not be tried yet ("" when it may be)."""
        if not has_claims(pod):
            return ""
        return self.pod_claims(pod)[1]

    def pre_filter(
        self, state: framework.CycleState, pod: Object, nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        state[STATE_KEY] = None
        if not has_claims(pod):
            return framework.Status(framework.Code.SKIP)
        claims, problem = self.pod_claims(pod)
        if problem:
            return framework.unschedulable(problem, unresolvable=True)
        if not claims:
            return framework.Status(framework.Code.SKIP)
        to_allocate = []
        for claim in claims:
            if podclaims.allocation(claim):
                continue
            if _meta(claim).get("uid") in self.in_flight:
                return framework.unschedulable(
                    f"resource claim {_ref(claim)} is in the process of being allocated",
                    unresolvable=True,
                )
            status = self._check_classes(claim)
            if status is not None:
                return status
            to_allocate.append(claim)
        allocator = None
        if to_allocate:
            try:
                allocator = Allocator(
                    to_allocate, self._in_use(), self.listers.device_class, self.listers.slices()
                )
            except AllocationError as exc:
                return framework.Status(framework.Code.ERROR, (str(exc),))
        state[STATE_KEY] = PodState(claims, to_allocate, allocator)
        return framework.SUCCESS

    def _check_classes(self, claim: Object) -> framework.Status | None:
        for request in ((claim.get("spec") or {}).get("devices") or {}).get("requests") or ():
            name = request.get("name", "")
            shapes = [
                (f"{name}/{s.get('name', '')}", s) for s in request.get("firstAvailable") or ()
            ]
            if not shapes:
                shapes = [(name, request.get("exactly") or {})]
            for label, shape in shapes:
                class_name = shape.get("deviceClassName") or ""
                if not class_name:
                    return framework.Status(
                        framework.Code.ERROR, (f"request {label}: unsupported request type",)
                    )
                if self.listers.device_class(class_name) is None:
                    return framework.unschedulable(
                        f"request {label}: device class {class_name} does not exist",
                        unresolvable=True,
                    )
        return None

    # ----- Filter ----------------------------------------------------------------------

    def filter(
        self, state: framework.CycleState, pod: Object, node: framework.NodeInfo
    ) -> framework.Status:
        pod_state: PodState | None = state.get(STATE_KEY)
        if pod_state is None:
            return framework.SUCCESS
        for claim in pod_state.claims:
            selector = (podclaims.allocation(claim) or {}).get("nodeSelector")
            if selector is not None and not _selector_matches_node(selector, node):
                return framework.unschedulable(NOT_AVAILABLE, unresolvable=True)
        if pod_state.allocator is None:
            return framework.SUCCESS
        try:
            allocations = pod_state.allocator.allocate(node)
        except AllocationError as exc:
            return framework.Status(framework.Code.ERROR, (str(exc),))
        if allocations is None:
            return framework.unschedulable(CANNOT_ALLOCATE, unresolvable=True)
        return framework.SUCCESS

    # ----- Reserve / Unreserve ---------------------------------------------------------

    def reserve(self, pod: Object, node: framework.NodeInfo) -> Reservation:
        """Decide the pod's allocations on ``node`` and hold them in flight."""
        if not has_claims(pod):
            return Reservation([], {})
        state: framework.CycleState = {}
        status = self.pre_filter(state, pod, [node])
        if status.code == framework.Code.SKIP:
            return Reservation([], {})
        if not status.ok:
            raise DynamicResourcesError(", ".join(status.reasons))
        status = self.filter(state, pod, node)
        if not status.ok:
            raise DynamicResourcesError(", ".join(status.reasons))
        pod_state: PodState = state[STATE_KEY]
        allocations: dict[str, Object] = {}
        if pod_state.allocator is not None:
            decided = pod_state.allocator.allocate(node) or []
            for claim, allocation in zip(pod_state.to_allocate, decided, strict=True):
                allocations[_meta(claim)["uid"]] = allocation
        self.in_flight.update(allocations)
        reservation = Reservation(pod_state.claims, allocations)
        self._reserved[_pod_key(pod)] = reservation
        return reservation

    async def unreserve(self, pod: Object, *, failed: bool = False) -> None:
        """Drop what ``reserve`` held; after a failed binding, take the pod back out of the
        ``reservedFor`` of the claims PreBind already wrote."""
        reservation = self._reserved.pop(_pod_key(pod), None)
        if reservation is None:
            return
        for uid in reservation.allocations:
            self.in_flight.pop(uid, None)
        if not failed or self.client is None:
            return
        for claim in reservation.written:
            meta = _meta(claim)
            patch = {
                "metadata": {"uid": meta.get("uid")},
                "status": {"reservedFor": [{"$patch": "delete", "uid": _meta(pod).get("uid")}]},
            }
            try:
                await self.client.patch(
                    rest.RESOURCECLAIMS,
                    meta["name"],
                    patch,
                    namespace=meta.get("namespace", ""),
                    patch_type="strategic",
                    subresource="status",
                )
            except rest.ApiError:
                pass  # retried when the pod is scheduled again

    # ----- PreBind ---------------------------------------------------------------------

    async def pre_bind(self, pod: Object, node_name: str) -> None:
        """Write each claim's allocation (if decided here) and the pod's reservation."""
        reservation = self._reserved.get(_pod_key(pod))
        if reservation is None or reservation.empty:
            return
        assert self.client is not None, "PreBind writes through a client"
        for claim in reservation.claims:
            if podclaims.is_reserved_for(pod, claim):
                continue
            allocation = reservation.allocations.get(_meta(claim)["uid"])
            try:
                written = await self._bind_claim(claim, allocation, pod)
            finally:
                if allocation is not None:
                    self.in_flight.pop(_meta(claim)["uid"], None)
            reservation.written.append(written)
            self.assumed[_meta(written)["uid"]] = written

    async def _bind_claim(self, claim: Object, allocation: Object | None, pod: Object) -> Object:
        assert self.client is not None
        current = copy.deepcopy(claim)
        for attempt in range(RETRIES):
            if attempt:
                meta = _meta(claim)
                current = await self.client.get(
                    rest.RESOURCECLAIMS, meta["name"], namespace=meta.get("namespace", "")
                )
            try:
                return await self._write_claim(current, allocation, pod)
            except rest.ApiError as exc:
                if not exc.conflict or attempt == RETRIES - 1:
                    what = "allocation and reservation" if allocation else "reservation"
                    raise DynamicResourcesError(
                        f"add {what} to claim {_ref(claim)}: {exc.message}"
                    ) from exc
        raise AssertionError("unreachable")

    async def _write_claim(self, claim: Object, allocation: Object | None, pod: Object) -> Object:
        assert self.client is not None
        if _meta(claim).get("deletionTimestamp"):
            raise DynamicResourcesError(f"claim {_ref(claim)} got deleted in the meantime")
        if allocation is not None:
            if podclaims.allocation(claim):
                raise DynamicResourcesError(
                    f"claim {_ref(claim)} got allocated elsewhere in the meantime"
                )
            finalizers = _meta(claim).get("finalizers") or []
            if podclaims.FINALIZER not in finalizers:
                claim["metadata"]["finalizers"] = [*finalizers, podclaims.FINALIZER]
                claim = await self.client.update(rest.RESOURCECLAIMS, claim)
            claim.setdefault("status", {})["allocation"] = allocation
        status = claim.setdefault("status", {})
        status["reservedFor"] = [
            *(status.get("reservedFor") or ()),
            {"resource": "pods", "name": _meta(pod)["name"], "uid": _meta(pod)["uid"]},
        ]
        written: Object = await self.client.update(rest.RESOURCECLAIMS, claim, subresource="status")
        return written


def _resource_version(obj: Object) -> int:
    try:
        return int(_meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0
