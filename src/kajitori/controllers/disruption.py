"""The disruption controller: keeps each PodDisruptionBudget's status current.

Mirrors upstream's pkg/controller/disruption (disruption.go). The eviction
API (``registry/core/pod_eviction.py``) decides from this status alone, so
the status is the budget's whole contract. A sync of one budget:

1. take the namespace's pods its selector matches (an empty selector
   matches every pod, a missing one none) — no pods: a ``NoPods`` event;
2. compute the expected pod count and the desired healthy count
   (``expected_and_desired``): an integer ``minAvailable`` needs that many
   and expects the pods present; a percentage ``minAvailable`` or any
   ``maxUnavailable`` scales by the replicas of the pods' controllers, read
   from their ``scale`` subresource (a ReplicaSet owned by a Deployment
   counts as the Deployment), rounding up; pods without a controller are
   reported with an ``UnmanagedPods`` event;
3. keep the ``disruptedPods`` the eviction API recorded while each is
   still present, not yet deleting, and less than two minutes old (then
   look again when the oldest expires);
4. count healthy pods: ready, not deleting, not in ``disruptedPods``;
5. write ``currentHealthy``, ``desiredHealthy``, ``expectedPods``,
   ``disruptionsAllowed`` (healthy minus desired, never below zero, zero
   when no pods are expected), ``disruptedPods``, ``observedGeneration``
   and the ``DisruptionAllowed`` condition, when any of them changed.

When a sync fails the budget is failed safe, as upstream's ``failSafe``:
``disruptionsAllowed`` 0 and ``DisruptionAllowed=False/SyncFailed``.

A pod event enqueues every budget selecting the pod (upstream picks one and
warns; syncing all of them keeps each one's counts right). Not done: the
clean-up of stale ``DisruptionTarget`` pod conditions, and scale lookups
for controllers other than Deployments, ReplicaSets, StatefulSets and
ReplicationControllers (upstream asks any kind's scale subresource).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kajitori.api.policy_v1 import helpers
from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import controller_ref, pod_util
from kajitori.machinery import labels, times

log = logging.getLogger(__name__)

Object = dict[str, Any]
API_VERSION = "policy/v1"
KIND = "PodDisruptionBudget"
# Upstream's DeletionTimeout: how long an eviction's entry in disruptedPods
# waits for the pod to be deleted before the controller stops counting it.
DELETION_TIMEOUT = datetime.timedelta(minutes=2)
# Controllers whose replica count a budget may scale by.
SCALABLE: dict[tuple[str, str], rest.Resource] = {
    ("apps", "Deployment"): rest.DEPLOYMENTS,
    ("apps", "ReplicaSet"): rest.REPLICASETS,
    ("apps", "StatefulSet"): rest.STATEFULSETS,
    ("", "ReplicationController"): rest.Resource(
        "", "v1", "replicationcontrollers", True, "ReplicationController"
    ),
}

# (pod's controller reference, namespace) -> (controller UID, replicas), or None when gone.
ScaleOf = Callable[[Object, str], Awaitable[tuple[str, int] | None]]


class ExpectedCountError(Exception):
    """The expected pod count cannot be computed (a pod's controller is missing)."""


# ----- pure computation -------------------------------------------------------


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or "N%" of ``total``."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid value {text!r}")
    try:
        percent = int(text[:-1])
    except ValueError:
        raise ValueError(f"invalid value {text!r}: {text[:-1]!r} is not an integer") from None
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


@dataclasses.dataclass(frozen=True, slots=True)
class Expected:
    expected: int
    desired: int
    unmanaged: tuple[str, ...] = ()


async def expected_and_desired(pdb: Object, pods: Sequence[Object], scale_of: ScaleOf) -> Expected:
    """Upstream's getExpectedPodCount."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        expected, unmanaged = await expected_scale(pods, scale_of)
        max_unavailable = scaled_value(spec["maxUnavailable"], expected, round_up=True)
        return Expected(expected, max(expected - max_unavailable, 0), unmanaged)
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int):
        return Expected(len(pods), min_available)
    if min_available is not None:
        expected, unmanaged = await expected_scale(pods, scale_of)
        return Expected(expected, scaled_value(min_available, expected, round_up=True), unmanaged)
    return Expected(0, 0)


async def expected_scale(pods: Sequence[Object], scale_of: ScaleOf) -> tuple[int, tuple[str, ...]]:
    """The summed replicas of the pods' distinct controllers, and the pods without one."""
    total, seen, unmanaged = 0, set[str](), []
    for pod in pods:
        ref = controller_ref.controller_of(pod)
        if ref is None:
            unmanaged.append(pod["metadata"]["name"])
            continue
        if ref.get("uid") in seen:
            continue
        found = await scale_of(ref, pod["metadata"].get("namespace", ""))
        if found is None:
            raise ExpectedCountError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        uid, replicas = found
        if uid in seen:
            continue
        seen.update((uid, ref.get("uid") or ""))
        total += replicas
    return total, tuple(unmanaged)


def build_disrupted_pods(
    pdb: Object, pods: Sequence[Object], now: datetime.datetime
) -> tuple[dict[str, str], datetime.datetime | None]:
    """The ``disruptedPods`` still pending, and when the earliest of them expires."""
    by_name = {p["metadata"]["name"]: p for p in pods}
    kept: dict[str, str] = {}
    recheck: datetime.datetime | None = None
    for name, stamp in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
        pod = by_name.get(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            continue
        since = times.parse_time(stamp)
        if since is None:
            continue
        expires = since + DELETION_TIMEOUT
        if expires < now:
            log.info("pod %s was expected to be deleted by %s but was not", name, expires)
            continue
        kept[name] = stamp
        recheck = expires if recheck is None or expires < recheck else recheck
    return kept, recheck


def count_healthy(pods: Sequence[Object], disrupted: dict[str, str]) -> int:
    return sum(
        1
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and p["metadata"]["name"] not in disrupted
        and pod_util.is_ready(p)
    )


def new_status(
    pdb: Object, *, current: int, expected: Expected, disrupted: dict[str, str]
) -> Object:
    """The status the counts give ``pdb`` (conditions carried over, then updated)."""
    allowed = current - expected.desired
    if expected.expected <= 0 or allowed <= 0:
        allowed = 0
    old = pdb.get("status") or {}
    status: Object = {
        "currentHealthy": current,
        "desiredHealthy": expected.desired,
        "expectedPods": expected.expected,
        "disruptionsAllowed": allowed,
        "observedGeneration": int((pdb.get("metadata") or {}).get("generation") or 0),
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    return status


def selects(pdb: Object, pod: Object) -> bool:
    try:
        selector = labels.selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
    except labels.SelectorError:
        return False
    return selector.matches((pod.get("metadata") or {}).get("labels") or {})


# ----- the controller -----------------------------------------------------------


class DisruptionController(base.QueueController[str]):
    """Reconciles PodDisruptionBudget status with pods; ``run(workers)`` until ``shut_down``."""

    name = "disruption"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.pdb_informer = self.watch(
            informers.informer(rest.PODDISRUPTIONBUDGETS),
            on_add=self.enqueue,
            on_update=self._update_pdb,
            on_delete=self.enqueue,
        )
        self.pod_informer = self.watch(
            informers.informer(rest.PODS),
            on_add=self._enqueue_pdbs_of,
            on_update=self._update_pod,
            on_delete=self._enqueue_pdbs_of,
        )

    # ----- event handlers --------------------------------------------------------

    def _update_pdb(self, old: Object, new: Object) -> None:
        if base.resource_version_changed(old, new):
            self.enqueue(new)

    def _enqueue_pdbs_of(self, pod: Object) -> None:
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        for pdb in self.pdb_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace):
            if selects(pdb, pod):
                self.enqueue(pdb)

    def _update_pod(self, old: Object, new: Object) -> None:
        if not base.resource_version_changed(old, new):
            return
        self._enqueue_pdbs_of(new)
        if old["metadata"].get("labels") != new["metadata"].get("labels"):
            self._enqueue_pdbs_of(old)

    # ----- sync ------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.pdb_informer.indexer.get(key)
        if cached is None:
            return
        pdb = pod_util.with_kind(cached, api_version=API_VERSION, kind=KIND)
        try:
            await self._try_sync(key, pdb)
        except rest.ApiError as exc:
            if exc.conflict:
                raise
            await self._fail_safe(pdb, exc)
            raise
        except Exception as exc:
            await self._fail_safe(pdb, exc)
            raise

    async def _try_sync(self, key: str, pdb: Object) -> None:
        # Step 1: the pods.
        pods = self._pods_for(pdb)
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        # Step 2: expected and desired counts.
        try:
            expected = await expected_and_desired(pdb, pods, self._scale_of)
        except (ExpectedCountError, ValueError) as exc:
            self.recorder.event(
                pdb,
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {exc}",
            )
            raise
        if expected.unmanaged:
            self.recorder.event(pdb, "Warning", "UnmanagedPods", _unmanaged_message(pdb))
        # Steps 3 and 4.
        now = pod_util.now()
        disrupted, recheck = build_disrupted_pods(pdb, pods, now)
        current = count_healthy(pods, disrupted)
        # Step 5.
        status = new_status(pdb, current=current, expected=expected, disrupted=disrupted)
        helpers.update_disruption_allowed_condition(status)
        if (pdb.get("status") or {}) != status:
            await self._write_status(pdb, status)
        if recheck is not None:
            self.queue.add_after(key, max((recheck - now).total_seconds(), 0.0) + 1)

    def _pods_for(self, pdb: Object) -> list[Object]:
        namespace = pdb["metadata"].get("namespace", "")
        try:
            selector = labels.selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        except labels.SelectorError:
            return []
        return [
            p
            for p in self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if selector.matches(p["metadata"].get("labels") or {})
        ]

    async def _scale_of(self, ref: Object, namespace: str) -> tuple[str, int] | None:
        """The controller ``ref`` names (a Deployment for its ReplicaSets): (uid, replicas)."""
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        if ref.get("kind") == "ReplicaSet" and group == "apps":
            owner = await self._deployment_of(ref, namespace)
            if owner is not None:
                ref = owner
                group = "apps"
        resource = SCALABLE.get((group, str(ref.get("kind") or "")))
        if resource is None:
            return None
        try:
            scale = await self.client.get(
                resource, ref.get("name", ""), namespace=namespace, subresource="scale"
            )
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise
        if scale["metadata"].get("uid") != ref.get("uid"):
            return None
        return ref["uid"], int((scale.get("spec") or {}).get("replicas") or 0)

    async def _deployment_of(self, rs_ref: Object, namespace: str) -> Object | None:
        try:
            rs = await self.client.get(
                rest.REPLICASETS, rs_ref.get("name", ""), namespace=namespace
            )
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise
        if rs["metadata"].get("uid") != rs_ref.get("uid"):
            return None
        owner = controller_ref.controller_of(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            return owner
        return None

    async def _write_status(self, pdb: Object, status: Object) -> None:
        await self.client.update_status(rest.PODDISRUPTIONBUDGETS, {**pdb, "status": status})

    async def _fail_safe(self, pdb: Object, exc: Exception) -> None:
        """Upstream's failSafe: no disruptions while the budget cannot be computed."""
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        helpers.set_condition(
            status,
            {
                "type": helpers.DISRUPTION_ALLOWED,
                "status": "False",
                "reason": helpers.SYNC_FAILED,
                "message": str(exc),
                "observedGeneration": int(status.get("observedGeneration") or 0),
            },
        )
        try:
            await self._write_status(pdb, status)
        except rest.ApiError as write_error:
            log.info("disruption: fail-safe of %s failed: %s", pdb["metadata"]["name"], write_error)


def _unmanaged_message(pdb: Object) -> str:
    selector = labels.format_label_selector((pdb.get("spec") or {}).get("selector"))
    return (
        f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be "
        "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which "
        "may result in undefined behavior. To account for these pods please set "
        '".spec.minAvailable" field of the PDB to an integer value.'
    )
