"""In-place pod resize on the node: allocation, actuation and the resize conditions.

Owns what upstream's kubelet does with a pod whose container resources were
changed through ``pods/resize`` (pkg/kubelet/allocation/allocation_manager.go,
the status manager's resize conditions, kuberuntime's doPodResizeAction):

* allocation: a pod's resources are *allocated* when the kubelet admits it;
  a later spec that differs is a resize request. It is accepted (allocated)
  when the node has room: ``Infeasible`` when the pod's new requests exceed
  the node's allocatable, ``Deferred`` when they do not fit beside the other
  pods' allocations, with upstream's messages, in the ``PodResizePending``
  condition, which goes once the request is accepted or withdrawn;
* the runtime runs the *allocated* resources (``allocated_pod``), never the
  desired ones, so a pending resize changes nothing on the node;
* actuation: each running container whose allocation differs from what was
  applied (*actuated*) is resized by the runtime (``ResizingRuntime``):
  in place, or by restarting it when its ``resizePolicy`` for a changed
  resource is ``RestartContainer``. ``PodResizeInProgress`` stands while an
  allocation is not actuated (reason ``Error`` with the runtime's message
  when it failed);
* status: ``containerStatuses[].allocatedResources`` (the allocated
  requests) and, for running containers, ``resources`` (what was applied),
  the API's sign that this node can resize (validation/pod_resize.py).

State lives in memory (upstream checkpoints it): a restarted kubelet takes
as allocated what a pod's status reports running, else its spec.
"""

from __future__ import annotations

import copy
import dataclasses
import decimal
import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from kajitori.api.core_v1 import validation as common
from kajitori.kubelet import status as pod_status

Object = dict[str, Any]

PENDING = "PodResizePending"
IN_PROGRESS = "PodResizeInProgress"
INFEASIBLE = "Infeasible"
DEFERRED = "Deferred"
ERROR = "Error"
RESIZE_CONDITIONS = (PENDING, IN_PROGRESS)
RESIZABLE = ("cpu", "memory")
RESTART_CONTAINER = "RestartContainer"
# How soon a deferred resize is judged again: upstream retries pending resizes
# whenever a pod leaves the node or is resized; a short poll stands for that here.
DEFERRED_RETRY_SECONDS = 1.0


@runtime_checkable
class ResizingRuntime(Protocol):
    """A runtime that can change a running container's resources.

    ``resize_container`` applies ``resources`` (a ResourceRequirements) to
    container ``name`` of pod ``uid``: in place, or, with ``restart``, by
    stopping the container and starting it again with them. ``None`` when
    done; otherwise the error to report.
    """

    async def resize_container(
        self, uid: str, name: str, resources: Object, *, restart: bool, now: float
    ) -> str | None: ...


# --- quantities -------------------------------------------------------------------


def _amount(value: Any) -> decimal.Decimal:
    amount = common.quantity_value(value)
    return amount if amount is not None else decimal.Decimal(0)


def milli_value(value: Any) -> int:
    """Quantity.MilliValue: thousandths, rounded up."""
    return math.ceil(_amount(value) * 1000)


def value(value: Any) -> int:
    """Quantity.Value: whole units, rounded up."""
    return math.ceil(_amount(value))


def _same_resources(a: Object | None, b: Object | None) -> bool:
    """Semantic equality of two ResourceRequirements (``1`` equals ``1000m``)."""

    def amounts(resources: Object | None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kind in ("requests", "limits"):
            entries = (resources or {}).get(kind) or {}
            out[kind] = {name: _amount(v) for name, v in entries.items()}
        return out

    return amounts(a) == amounts(b)


# --- which containers resize -------------------------------------------------------


def resizable_containers(pod: Object) -> list[Object]:
    """Regular containers and sidecars (init containers with ``restartPolicy: Always``)."""
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    return [*sidecars, *(spec.get("containers") or ())]


def _desired(pod: Object) -> dict[str, Object]:
    return {
        c.get("name") or "": copy.deepcopy(c.get("resources") or {})
        for c in resizable_containers(pod)
    }


def pod_requests(pod: Object, allocated: dict[str, Object] | None = None) -> dict[str, int]:
    """GetResourceRequest for cpu (milli) and memory (bytes), with ``allocated`` resources.

    The sum over regular containers and sidecars, at least each regular init
    container's (with the sidecars started before it), plus overhead.
    """
    spec = pod.get("spec") or {}

    def requests_of(container: Object) -> dict[str, int]:
        resources = (allocated or {}).get(container.get("name") or "")
        if resources is None:
            resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        return {
            "cpu": milli_value(requests.get("cpu", 0)),
            "memory": value(requests.get("memory", 0)),
        }

    total = {"cpu": 0, "memory": 0}
    sidecars = {"cpu": 0, "memory": 0}
    init_max = {"cpu": 0, "memory": 0}
    for container in spec.get("initContainers") or ():
        amounts = requests_of(container)
        if container.get("restartPolicy") == "Always":
            for name in total:
                total[name] += amounts[name]
                sidecars[name] += amounts[name]
        else:
            for name in init_max:
                init_max[name] = max(init_max[name], amounts[name] + sidecars[name])
    for container in spec.get("containers") or ():
        amounts = requests_of(container)
        for name in total:
            total[name] += amounts[name]
    overhead = spec.get("overhead") or {}
    return {
        "cpu": max(total["cpu"], init_max["cpu"]) + milli_value(overhead.get("cpu", 0)),
        "memory": max(total["memory"], init_max["memory"]) + value(overhead.get("memory", 0)),
    }


def node_allocatable(cpu: str, memory: str) -> dict[str, int]:
    return {"cpu": milli_value(cpu), "memory": value(memory)}


def can_resize(
    requests: dict[str, int], allocatable: dict[str, int], used: dict[str, int]
) -> tuple[str, str] | None:
    """canResizePod: ``None`` when the pod fits; otherwise (reason, message) as upstream."""
    if requests["cpu"] > allocatable["cpu"] or requests["memory"] > allocatable["memory"]:
        if requests["memory"] > allocatable["memory"]:
            detail = f"memory, requested: {requests['memory']}, capacity: {allocatable['memory']}"
        else:
            detail = f"cpu, requested: {requests['cpu']}, capacity: {allocatable['cpu']}"
        return INFEASIBLE, f"Node didn't have enough capacity: {detail}"
    # The node's admission (NodeResourcesFit): the first resource short, cpu before memory.
    for name in ("cpu", "memory"):
        if requests[name] + used[name] > allocatable[name]:
            message = (
                f"Node didn't have enough resource: {name}, requested: {requests[name]}, "
                f"used: {used[name]}, capacity: {allocatable[name]}"
            )
            return DEFERRED, message
    return None


def _restart_needed(container: Object, allocated: Object, actuated: Object) -> bool:
    """Whether a changed resource's resizePolicy restarts the container."""
    policies = {
        p.get("resourceName"): p.get("restartPolicy") for p in container.get("resizePolicy") or ()
    }
    for name in RESIZABLE:
        before = [((actuated.get(kind) or {}).get(name)) for kind in ("requests", "limits")]
        after = [((allocated.get(kind) or {}).get(name)) for kind in ("requests", "limits")]
        changed = any(
            (a is None) != (b is None) or (a is not None and _amount(a) != _amount(b))
            for a, b in zip(before, after, strict=True)
        )
        if changed and policies.get(name) == RESTART_CONTAINER:
            return True
    return False


# --- the manager -------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _PodResources:
    allocated: dict[str, Object]
    actuated: dict[str, Object]
    pending: Object | None = None  # the PodResizePending condition, if any
    error: str = ""  # the runtime's last resize error


@dataclasses.dataclass(frozen=True, slots=True)
class NodeRoom:
    """What a resize is judged against: the node's allocatable and the other pods."""

    allocatable: dict[str, int]
    others: Callable[[], Iterable[Object]]


class ResizeManager:
    """Allocated and actuated resources of every pod the kubelets of this process run."""

    def __init__(self) -> None:
        self._pods: dict[str, _PodResources] = {}

    def allocation(self, uid: str) -> dict[str, Object] | None:
        record = self._pods.get(uid)
        return None if record is None else record.allocated

    def deferred(self, uid: str) -> bool:
        """Whether pod ``uid`` has a resize waiting for room on its node."""
        record = self._pods.get(uid)
        return record is not None and (record.pending or {}).get("reason") == DEFERRED

    def forget(self, uid: str) -> None:
        self._pods.pop(uid, None)

    def allocated_pod(self, pod: Object, room: NodeRoom, *, now: float) -> Object:
        """handlePodResourcesResize: the pod as the runtime must run it.

        A pod seen for the first time is allocated what its spec asks (it was
        just admitted). A spec that differs from the allocation is a resize:
        accepted when the node has room, else left pending with the reason.
        """
        uid = pod["metadata"]["uid"]
        desired = _desired(pod)
        record = self._pods.get(uid)
        if record is None:
            allocated = _reported(pod, desired)
            self._pods[uid] = record = _PodResources(allocated, copy.deepcopy(allocated))
            if allocated == desired:
                return pod
        if all(_same_resources(desired[n], record.allocated.get(n)) for n in desired):
            record.pending = None  # nothing asked, or a request withdrawn
            return self._with_allocation(pod, record.allocated)
        used = {"cpu": 0, "memory": 0}
        for other in room.others():
            other_uid = (other.get("metadata") or {}).get("uid") or ""
            if other_uid == uid:
                continue
            amounts = pod_requests(other, self.allocation(other_uid))
            used = {name: used[name] + amounts[name] for name in used}
        refusal = can_resize(pod_requests(pod), room.allocatable, used)
        if refusal is None:
            record.allocated = desired
            record.pending = None
            record.error = ""  # an older resize's error does not outlive a new allocation
            return pod
        reason, message = refusal
        record.pending = _condition(PENDING, reason, message, pod, record.pending, now)
        return self._with_allocation(pod, record.allocated)

    @staticmethod
    def _with_allocation(pod: Object, allocated: dict[str, Object]) -> Object:
        """UpdatePodFromAllocation: a copy whose containers ask what was allocated."""
        if all(_same_resources(r, allocated.get(n)) for n, r in _desired(pod).items()):
            return pod
        copied = copy.deepcopy(pod)
        for container in resizable_containers(copied):
            resources = allocated.get(container.get("name") or "")
            if resources is not None:
                container["resources"] = copy.deepcopy(resources)
        return copied

    async def actuate(
        self, allocated_pod: Object, runtime: Any, running: set[str], *, now: float
    ) -> bool:
        """doPodResizeAction: apply each running container's allocation the runtime lacks.

        True when the runtime was asked to change something (its status may differ).
        """
        record = self._pods.get(allocated_pod["metadata"]["uid"])
        if record is None:
            return False
        acted = False
        for container in resizable_containers(allocated_pod):
            name = container.get("name") or ""
            allocated = record.allocated.get(name) or {}
            actuated = record.actuated.get(name) or {}
            if name not in running or _same_resources(allocated, actuated):
                continue
            error = None
            acted = True
            if isinstance(runtime, ResizingRuntime):
                restart = _restart_needed(container, allocated, actuated)
                error = await runtime.resize_container(
                    allocated_pod["metadata"]["uid"], name, allocated, restart=restart, now=now
                )
            if error:
                record.error = error
                continue
            record.actuated[name] = copy.deepcopy(allocated)
        if all(_same_resources(record.allocated.get(n), record.actuated.get(n)) for n in running):
            record.error = ""
        return acted

    def decorate(self, pod: Object, status: Object, *, running: set[str], now: float) -> None:
        """Add the resize view to a freshly generated ``status`` (see the module docstring)."""
        record = self._pods.get(pod["metadata"]["uid"])
        conditions = [
            c for c in status.get("conditions") or () if c.get("type") not in RESIZE_CONDITIONS
        ]
        if record is None:
            status["conditions"] = conditions
            return
        for key in ("initContainerStatuses", "containerStatuses"):
            for entry in status.get(key) or ():
                self._container_view(entry, record, running)
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or ()}
        if record.pending is not None:
            conditions.append(record.pending)
        in_progress = any(
            not _same_resources(record.allocated.get(n), record.actuated.get(n)) for n in running
        )
        if in_progress or record.error:
            reason = ERROR if record.error else ""
            conditions.append(
                _condition(IN_PROGRESS, reason, record.error, pod, old.get(IN_PROGRESS), now)
            )
        status["conditions"] = conditions

    @staticmethod
    def _container_view(entry: Object, record: _PodResources, running: set[str]) -> None:
        name = entry.get("name") or ""
        if name not in record.allocated:
            return  # not resizable (a regular init container)
        requests = (record.allocated[name] or {}).get("requests")
        if requests:
            entry["allocatedResources"] = copy.deepcopy(requests)
        if name in running:
            actuated = record.actuated.get(name) or {}
            entry["resources"] = {
                kind: copy.deepcopy(actuated[kind])
                for kind in ("limits", "requests")
                if actuated.get(kind)
            }


def _reported(pod: Object, desired: dict[str, Object]) -> dict[str, Object]:
    """A pod's allocation when first seen: what its status says runs, else its spec.

    A new pod reports nothing and gets its spec (it was just admitted). A
    pod this process synced before it restarted reports the resources it
    runs with (upstream reads its allocation checkpoint instead), so a resize
    still pending then is judged again rather than taken as allocated.
    """
    status = pod.get("status") or {}
    allocated = copy.deepcopy(desired)
    for key in ("initContainerStatuses", "containerStatuses"):
        for entry in status.get(key) or ():
            name = entry.get("name") or ""
            if name in allocated and isinstance(entry.get("resources"), dict):
                allocated[name] = copy.deepcopy(entry["resources"])
    return allocated


def _condition(
    kind: str, reason: str, message: str, pod: Object, before: Object | None, now: float
) -> Object:
    """A resize condition; its times stay while its reason and message do.

    Upstream stamps ``lastProbeTime`` at every sync; kept here with the
    transition, so that an unchanged condition writes no status.
    """
    if (
        before is not None
        and before.get("reason", "") == reason
        and before.get("message", "") == message
    ):
        stamp = before.get("lastTransitionTime") or pod_status.rfc3339(now)
        probe = before.get("lastProbeTime") or stamp
    else:
        stamp = probe = pod_status.rfc3339(now)
    condition: Object = {"type": kind, "status": "True"}
    generation = pod_status.observed_generation(pod)
    if generation:
        condition["observedGeneration"] = generation
    condition["lastProbeTime"] = probe
    condition["lastTransitionTime"] = stamp
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition
