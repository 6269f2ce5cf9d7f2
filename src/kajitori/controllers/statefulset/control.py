"""Deciding what a StatefulSet sync does: ``plan_update`` and ``calculate_status``, free of I/O.

Mirrors upstream's ``updateStatefulSet`` (stateful_set_control.go), split
into deciding (here) and doing (``controller.py`` runs the plan through
``pod_control.StatefulPodControl``). From one snapshot (the set, its current
and update revisions, its pods, the cached claims) ``plan_update`` returns
the ordered actions of one sync:

1. Pods are split into *replicas* (ordinal in ``[start, start+replicas)``,
   missing ones filled with new pods at the right revision) and *condemned*
   (ordinal above or below the range, highest first).
2. Replicas, lowest ordinal first: a Failed or Succeeded pod is deleted (it
   comes back on a later sync); a missing pod is created with its claims
   (unless a claim still belongs to a previous pod of that name and
   ``whenScaled: Delete`` waits for the garbage collector); a Pending
   pod's missing claims are created; a pod with the wrong identity, storage
   or claim owners is updated.
3. Condemned pods' claims get the owners the retention policy wants.
4. Condemned pods are deleted, highest ordinal first.
5. RollingUpdate (not OnDelete): pods at ordinals >= ``partition`` not at the
   update revision are deleted, highest first, while fewer than
   ``maxUnavailable`` replicas are unavailable; they come back at the update
   revision in step 2 of a later sync.

``OrderedReady`` (monotonic) stops at the first action or at the first pod
that is not Running, Ready and available (or is terminating): pod N+1 is
created only once 0..N are, and scale-down waits for each termination.
``Parallel`` does all of step 2 and 4 at once, and never waits.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from kajitori.controllers.statefulset import utils

Object = dict[str, Any]
ActionKind = Literal["create", "delete", "update", "claims", "retention"]


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """One write: ``create`` (claims, then the pod), ``delete``, ``update`` (identity,
    storage, claim owners), ``claims`` (create missing claims of a Pending pod), or
    ``retention`` (fix claim owners of a condemned pod)."""

    kind: ActionKind
    pod: Object
    reason: str = ""

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])


@dataclasses.dataclass(slots=True)
class Plan:
    actions: list[Action]
    status: Object


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a plan depends on; ``current_set``/``update_set`` carry each revision's template."""

    sts: Object
    current_set: Object
    update_set: Object
    current_revision: str
    update_revision: str
    collision_count: int
    pods: Sequence[Object]
    claims: Mapping[str, Object]
    now: datetime.datetime


def _min_ready(sts: Object) -> int:
    return int((sts.get("spec") or {}).get("minReadySeconds") or 0)


def calculate_status(snap: Snapshot, pods: Sequence[Object]) -> Object:
    """Counters over ``pods`` plus revisions, generation and collision count."""
    min_ready = _min_ready(snap.sts)
    created = [p for p in pods if utils.is_created(p)]
    ready = [p for p in created if utils.is_running_and_ready(p)]
    live = [p for p in created if not utils.is_terminating(p)]
    return {
        "observedGeneration": snap.sts["metadata"].get("generation", 0),
        "replicas": len(created),
        "readyReplicas": len(ready),
        "availableReplicas": sum(
            1 for p in ready if utils.is_running_and_available(p, min_ready, snap.now)
        ),
        "currentReplicas": sum(1 for p in live if utils.pod_revision(p) == snap.current_revision),
        "updatedReplicas": sum(1 for p in live if utils.pod_revision(p) == snap.update_revision),
        "currentRevision": snap.current_revision,
        "updateRevision": snap.update_revision,
        "collisionCount": snap.collision_count,
    }


def complete_rolling_update(sts: Object, status: Object) -> None:
    """Once every replica is updated and ready, the update revision becomes current."""
    strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
    want = utils.replicas(sts)
    if (
        strategy == "RollingUpdate"
        and status["updatedReplicas"] == want
        and status["readyReplicas"] == want
        and status["replicas"] == want
    ):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


STATUS_FIELDS = (
    "replicas",
    "readyReplicas",
    "availableReplicas",
    "currentReplicas",
    "updatedReplicas",
    "currentRevision",
    "updateRevision",
    "collisionCount",
)


def status_changed(sts: Object, status: Object) -> bool:
    """Upstream's inconsistentStatus (plus collisionCount, which it writes too)."""
    old = sts.get("status") or {}
    if status["observedGeneration"] > int(old.get("observedGeneration") or 0):
        return True
    defaults: dict[str, Any] = {"currentRevision": "", "updateRevision": ""}
    return any(old.get(f, defaults.get(f, 0)) != status[f] for f in STATUS_FIELDS)


def split_pods(snap: Snapshot) -> tuple[list[Object], list[Object]]:
    """(replicas indexed by ordinal - start, missing ones new; condemned, highest first)."""
    sts = snap.sts
    start = utils.start_ordinal(sts)
    slots: list[Object | None] = [None] * utils.replicas(sts)
    condemned = []
    for pod in snap.pods:
        ordinal = utils.ordinal_of(pod)
        if utils.in_ordinal_range(pod, sts):
            slots[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    replicas = [
        pod
        if pod is not None
        else utils.new_versioned_pod(
            snap.current_set,
            snap.update_set,
            snap.current_revision,
            snap.update_revision,
            start + index,
        )
        for index, pod in enumerate(slots)
    ]
    condemned.sort(key=utils.ordinal_of, reverse=True)
    return replicas, condemned


def _claims_missing(snap: Snapshot, pod: Object) -> bool:
    return any(
        claim["metadata"]["name"] not in snap.claims
        for _, claim in utils.claims_for(snap.sts, utils.ordinal_of(pod))
    )


def _claim_is_stale(snap: Snapshot, pod: Object) -> bool:
    """A claim still owned by a previous pod of this name blocks creation (whenScaled: Delete)."""
    if utils.retention_policy(snap.sts)[1] == utils.RETAIN:
        return False
    for _, claim in utils.claims_for(snap.sts, utils.ordinal_of(pod)):
        found = snap.claims.get(claim["metadata"]["name"])
        if found is not None and utils.has_stale_owner(found, pod):
            return True
    return False


def _retention_matches(snap: Snapshot, sts: Object, pod: Object) -> bool:
    for _, claim in utils.claims_for(sts, utils.ordinal_of(pod)):
        found = snap.claims.get(claim["metadata"]["name"])
        if found is not None and not utils.claim_owners_match(sts, pod, found):
            return False
    return True


def _process_replica(snap: Snapshot, pod: Object, monotonic: bool) -> tuple[list[Action], bool]:
    """Actions for one replica, and whether an OrderedReady set must stop here."""
    min_ready = _min_ready(snap.sts)
    if utils.phase(pod) in ("Failed", "Succeeded"):
        if utils.is_terminating(pod):
            return [], True
        return [Action("delete", pod, "failed")], True
    if not utils.is_created(pod):
        if _claim_is_stale(snap, pod):
            return [], True
        return [Action("create", pod)], monotonic
    actions = []
    if utils.phase(pod) == "Pending" and _claims_missing(snap, pod):
        actions.append(Action("claims", pod))
    if monotonic and (
        utils.is_terminating(pod)
        or not utils.is_running_and_ready(pod)
        or not utils.is_running_and_available(pod, min_ready, snap.now)
    ):
        return actions, True
    if not (
        utils.identity_matches(snap.update_set, pod)
        and utils.storage_matches(snap.update_set, pod)
        and _retention_matches(snap, snap.update_set, pod)
    ):
        actions.append(Action("update", pod))
    return actions, False


def _process_condemned(
    snap: Snapshot, pod: Object, first_unhealthy: Object | None, monotonic: bool
) -> tuple[list[Action], bool]:
    if utils.is_terminating(pod):
        return [], monotonic
    if (
        monotonic
        and pod is not first_unhealthy
        and (
            not utils.is_running_and_ready(pod)
            or not utils.is_running_and_available(pod, _min_ready(snap.sts), snap.now)
        )
    ):
        return [], True
    return [Action("delete", pod, "scale-down")], monotonic


def _first_unhealthy(replicas: list[Object], condemned: list[Object]) -> Object | None:
    for pod in [*replicas, *reversed(condemned)]:
        if not utils.is_healthy(pod):
            return pod
    return None


def plan_update(snap: Snapshot) -> Plan:
    """The actions of one sync and the status to write (see the module docstring)."""
    sts = snap.sts
    replicas, condemned = split_pods(snap)
    status = calculate_status(snap, [p for p in [*replicas, *condemned] if utils.is_created(p)])
    actions: list[Action] = []
    if (sts.get("metadata") or {}).get("deletionTimestamp"):
        return Plan(actions, status)
    monotonic = (sts.get("spec") or {}).get("podManagementPolicy") != "Parallel"
    # Step 2: replicas, lowest ordinal first.
    for pod in replicas:
        found, stop = _process_replica(snap, pod, monotonic)
        actions.extend(found)
        if stop and monotonic:
            return Plan(actions, status)
    # Step 3: claim owners of condemned pods.
    for pod in condemned:
        if not _retention_matches(snap, snap.update_set, pod):
            actions.append(Action("retention", pod))
    # Step 4: condemned pods, highest ordinal first.
    first_unhealthy = _first_unhealthy(replicas, condemned)
    for pod in condemned:
        found, stop = _process_condemned(snap, pod, first_unhealthy, monotonic)
        actions.extend(found)
        if stop and monotonic:
            return Plan(actions, status)
    if ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type") == "OnDelete":
        return Plan(actions, status)
    # Step 5: the rolling update.
    doomed = plan_rolling_deletions(snap, replicas)
    status["currentReplicas"] -= len(doomed)
    actions.extend(Action("delete", pod, "update") for pod in doomed)
    return Plan(actions, status)


def plan_rolling_deletions(snap: Snapshot, replicas: Sequence[Object]) -> list[Object]:
    """Old-revision pods at or above the partition to delete now, highest ordinal first.

    At most ``maxUnavailable`` replicas may be unavailable. OrderedReady
    spends the remaining budget from the top; Parallel (as upstream 1.36)
    first replaces old pods that are unavailable anyway, then spends the
    budget on available ones.
    """
    sts = snap.sts
    min_ready = _min_ready(sts)
    budget = utils.max_unavailable(sts)
    parallel = (sts.get("spec") or {}).get("podManagementPolicy") == "Parallel"
    unavailable = [p for p in replicas if utils.is_unavailable(p, min_ready, snap.now)]

    def outdated(pod: Object) -> bool:
        return (
            utils.is_created(pod)
            and utils.pod_revision(pod) != snap.update_revision
            and not utils.is_terminating(pod)
        )

    stale_unavailable = [p for p in unavailable if outdated(p)] if parallel else []
    if len(unavailable) >= budget and not stale_unavailable:
        return []
    candidates = list(reversed(replicas[utils.partition(sts) :]))
    doomed: list[Object] = []
    if parallel:
        doomed = [
            p
            for p in candidates
            if outdated(p) and not utils.is_running_and_available(p, min_ready, snap.now)
        ]
        candidates = [
            p for p in candidates if utils.is_running_and_available(p, min_ready, snap.now)
        ]
    remaining = budget - len(unavailable)
    for pod in candidates:
        if remaining <= 0:
            break
        if outdated(pod):
            doomed.append(pod)
            remaining -= 1
    return doomed


def truncate_history(
    sts: Object, revisions: Sequence[Object], pods: Sequence[Object], live: Sequence[str]
) -> list[Object]:
    """Oldest non-live revisions beyond ``revisionHistoryLimit`` (``revisions`` sorted oldest first).

    Live: the current and update revisions and any revision a pod was made from.
    """
    in_use = set(live) | {utils.pod_revision(p) for p in pods}
    old = [r for r in revisions if r["metadata"]["name"] not in in_use]
    limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    return old[: max(0, len(old) - limit)]
