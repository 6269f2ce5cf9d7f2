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
  (``request r: device class c does not exist``). An ``dra_allocator.Allocator`` is made
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
from collections.abc import Callable
from typing import Any, Protocol

from kajitori.api.resource_v1 import podclaims
from kajitori.client import informer, rest
from kajitori.scheduler import framework
from kajitori.scheduler.plugins import dra_allocator

Object = dict[str, Any]
DeviceID = tuple[str, str, str]  # (driver, pool, device)

NAME = "DynamicResources"
STATE_KEY = "DynamicResources"
CANNOT_ALLOCATE = "cannot allocate all claims"
NOT_AVAILABLE = "resourceclaim not available on the node"
RETRIES = 5
# ``device.attributes["domain"]`` / ``device.capacity["domain"]`` with a literal domain:
# upstream's maps answer an empty map for an unknown domain, the ``cel`` package a KeyError.


class DynamicResourcesError(Exception):
    """Reserve or PreBind could not complete for a pod's claims (retried like any failure)."""


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


def _pod_key(pod: Object) -> str:
    return dra_allocator.ref(pod)


def has_claims(pod: Object) -> bool:
    return bool(podclaims.pod_claims(pod))


# ----- CEL --------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class PodState:
    """PreFilter's findings for one cycle."""

    claims: list[Object]
    to_allocate: list[Object]
    allocator: dra_allocator.Allocator | None


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
        uid = dra_allocator.metadata_of(claim).get("uid", "")
        assumed = self.assumed.get(uid)
        if assumed is None:
            return
        if _resource_version(claim) >= _resource_version(assumed):
            del self.assumed[uid]

    def claim_deleted(self, claim: Object) -> None:
        self.assumed.pop(dra_allocator.metadata_of(claim).get("uid", ""), None)

    def _claim(self, namespace: str, name: str) -> Object | None:
        cached = self.listers.claim(namespace, name)
        if cached is None:
            return None
        assumed = self.assumed.get(dra_allocator.metadata_of(cached).get("uid", ""))
        if assumed is not None and _resource_version(assumed) > _resource_version(cached):
            return assumed
        return cached

    def _in_use(self) -> set[DeviceID]:
        held = dra_allocator.allocated_devices(self.listers.claims())
        held.update(dra_allocator.allocated_devices(self.assumed.values()))
        for allocation in self.in_flight.values():
            held.update(dra_allocator.result_ids(allocation))
        return held

    def pod_claims(self, pod: Object) -> tuple[list[Object], str]:
        """The pod's claims, or upstream's message why they cannot be used (yet)."""
        namespace = dra_allocator.metadata_of(pod).get("namespace", "")
        claims = []
        try:
            for _, name, check_owner in podclaims.named_claims(pod):
                claim = self._claim(namespace, name)
                if claim is None:
                    return [], f'resourceclaim.resource.k8s.io "{name}" not found'
                if dra_allocator.metadata_of(claim).get("deletionTimestamp"):
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
            if dra_allocator.metadata_of(claim).get("uid") in self.in_flight:
                return framework.unschedulable(
                    f"resource claim {dra_allocator.ref(claim)} is in the process of being allocated",
                    unresolvable=True,
                )
            status = self._check_classes(claim)
            if status is not None:
                return status
            to_allocate.append(claim)
        allocator = None
        if to_allocate:
            try:
                allocator = dra_allocator.Allocator(
                    to_allocate, self._in_use(), self.listers.device_class, self.listers.slices()
                )
            except dra_allocator.AllocationError as exc:
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
            if selector is not None and not dra_allocator.selector_matches_node(selector, node):
                return framework.unschedulable(NOT_AVAILABLE, unresolvable=True)
        if pod_state.allocator is None:
            return framework.SUCCESS
        try:
            allocations = pod_state.allocator.allocate(node)
        except dra_allocator.AllocationError as exc:
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
                allocations[dra_allocator.metadata_of(claim)["uid"]] = allocation
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
            meta = dra_allocator.metadata_of(claim)
            patch = {
                "metadata": {"uid": meta.get("uid")},
                "status": {
                    "reservedFor": [
                        {"$patch": "delete", "uid": dra_allocator.metadata_of(pod).get("uid")}
                    ]
                },
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
            allocation = reservation.allocations.get(dra_allocator.metadata_of(claim)["uid"])
            try:
                written = await self._bind_claim(claim, allocation, pod)
            finally:
                if allocation is not None:
                    self.in_flight.pop(dra_allocator.metadata_of(claim)["uid"], None)
            reservation.written.append(written)
            self.assumed[dra_allocator.metadata_of(written)["uid"]] = written

    async def _bind_claim(self, claim: Object, allocation: Object | None, pod: Object) -> Object:
        assert self.client is not None
        current = copy.deepcopy(claim)
        for attempt in range(RETRIES):
            if attempt:
                meta = dra_allocator.metadata_of(claim)
                current = await self.client.get(
                    rest.RESOURCECLAIMS, meta["name"], namespace=meta.get("namespace", "")
                )
            try:
                return await self._write_claim(current, allocation, pod)
            except rest.ApiError as exc:
                if not exc.conflict or attempt == RETRIES - 1:
                    what = "allocation and reservation" if allocation else "reservation"
                    raise DynamicResourcesError(
                        f"add {what} to claim {dra_allocator.ref(claim)}: {exc.message}"
                    ) from exc
        raise AssertionError("unreachable")

    async def _write_claim(self, claim: Object, allocation: Object | None, pod: Object) -> Object:
        assert self.client is not None
        if dra_allocator.metadata_of(claim).get("deletionTimestamp"):
            raise DynamicResourcesError(
                f"claim {dra_allocator.ref(claim)} got deleted in the meantime"
            )
        if allocation is not None:
            if podclaims.allocation(claim):
                raise DynamicResourcesError(
                    f"claim {dra_allocator.ref(claim)} got allocated elsewhere in the meantime"
                )
            finalizers = dra_allocator.metadata_of(claim).get("finalizers") or []
            if podclaims.FINALIZER not in finalizers:
                claim["metadata"]["finalizers"] = [*finalizers, podclaims.FINALIZER]
                claim = await self.client.update(rest.RESOURCECLAIMS, claim)
            claim.setdefault("status", {})["allocation"] = allocation
        status = claim.setdefault("status", {})
        status["reservedFor"] = [
            *(status.get("reservedFor") or ()),
            {
                "resource": "pods",
                "name": dra_allocator.metadata_of(pod)["name"],
                "uid": dra_allocator.metadata_of(pod)["uid"],
            },
        ]
        written: Object = await self.client.update(rest.RESOURCECLAIMS, claim, subresource="status")
        return written


def _resource_version(obj: Object) -> int:
    try:
        return int(dra_allocator.metadata_of(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0
