"""The structured allocator behind the DynamicResources scheduler plugin (``dynamic_resources``).

Upstream's k8s.io/dynamic-resource-allocation/structured at kajitori's size:
the devices of ResourceSlices that reach a node (by ``nodeName``,
``nodeSelector``, ``allNodes`` or per device), from complete pools at their
newest generation, as CEL sees them (``device_view``), chosen for a claim's
requests (``ExactCount``/``All``, ``firstAvailable`` subrequests), never one
another claim holds, tainted ones only when tolerated. Pure: no API calls.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kajitori.api.apiextensions_v1 import cel as crd_cel
from kajitori.api.apiextensions_v1 import cel_library
from kajitori.api.resource_v1 import podclaims
from kajitori.scheduler import framework
from kajitori.scheduler.plugins import node_affinity

Object = dict[str, Any]
DeviceID = tuple[str, str, str]  # (driver, pool, device)

BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")

_DOMAIN_LOOKUP = re.compile(r"""device\.(attributes|capacity)\[\s*["']([^"']+)["']\s*\]""")


class AllocationError(Exception):
    """Allocation cannot be attempted (upstream's allocator error): aborts the cycle."""


def metadata_of(obj: Object) -> Object:
    meta: Object = obj.get("metadata") or {}
    return meta


def ref(obj: Object) -> str:
    """klog.KObj: ``namespace/name`` (or the name alone)."""
    meta = metadata_of(obj)
    return f"{meta['namespace']}/{meta.get('name', '')}" if meta.get("namespace") else meta["name"]


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


def selector_matches_node(selector: Object | None, node: framework.NodeInfo) -> bool:
    terms = (selector or {}).get("nodeSelectorTerms") or []
    return any(node_affinity.term_matches(t, node) for t in terms)


def _reaches(spec: Object, node: framework.NodeInfo) -> bool:
    """Whether a slice spec (or a device, for per-device selection) reaches ``node``."""
    if spec.get("nodeName"):
        return bool(spec["nodeName"] == node.name)
    if spec.get("nodeSelector"):
        return selector_matches_node(spec["nodeSelector"], node)
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
                        f"claim {ref(claim)}, request {label}: could not retrieve device class "
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
                        f"claim {ref(self.claims[request.claim_index])}, request "
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
                f"class {metadata_of(device_class).get('name', '')}",
                (device_class.get("spec") or {}).get("selectors"),
            ),
            (f"claim {ref(self.claims[request.claim_index])}", alternative.spec.get("selectors")),
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
        name = metadata_of(alternative.device_class).get("name", "")
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
