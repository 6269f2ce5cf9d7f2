"""What a DaemonSet sync should do, decided without I/O.

Pure planners over the cached nodes and the DaemonSet's claimed pods, in
upstream's terms (pkg/controller/daemon daemon_controller.go and update.go):

* ``plan_manage`` — per node, upstream's ``podsShouldBeOnNode``: a node that
  wants a pod and has none gets one; a node that may keep its pods loses the
  Succeeded ones, has its Failed ones reported (the controller deletes them
  under a backoff), and keeps only the oldest running pod — or, while
  surging, the oldest new and the oldest old pod until the new one is
  available; a node that may no longer run the daemon loses all of them.
  Unbound pods meant for nodes that no longer exist are deleted too (the pod
  garbage collector only handles bound ones).
* ``plan_rolling_update`` — without surge, delete old pods while fewer than
  ``maxUnavailable`` desired nodes are unavailable (old pods that are not
  available anyway go first and do not count); with surge, start new pods
  beside old ones on at most ``maxSurge`` nodes at a time and delete an old
  pod once its node's new pod is available.
* ``calculate_status`` — the counters of ``DaemonSetStatus``.

A node's pods are keyed by the node they target (``placement.target_node``):
a pod is counted for its node before the scheduler binds it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kajitori.controllers.common import deployment_util, pod_util
from kajitori.controllers.daemonset import placement

Object = dict[str, Any]
NodePods = Mapping[str, Sequence[Object]]


def _name(obj: Object) -> str:
    return str(obj["metadata"]["name"])


def _deleting(pod: Object) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def group_by_node(
    pods: Iterable[Object], *, include_deleted_terminal: bool
) -> dict[str, list[Object]]:
    """Claimed pods by target node; pods with no target are skipped.

    Without ``include_deleted_terminal``, a finished pod already being deleted
    is left out: nothing remains to do with it (upstream's getNodesToDaemonPods).
    """
    grouped: dict[str, list[Object]] = {}
    for pod in pods:
        terminal = _phase(pod) in ("Succeeded", "Failed")
        if not include_deleted_terminal and terminal and _deleting(pod):
            continue
        node = placement.target_node(pod)
        if node is not None:
            grouped.setdefault(node, []).append(pod)
    return grouped


def by_creation_and_phase(pods: Iterable[Object]) -> list[Object]:
    """Bound pods first, then oldest first, then by name (upstream's podByCreationTimestampAndPhase)."""

    def key(pod: Object) -> tuple[bool, str, str]:
        meta = pod.get("metadata") or {}
        bound = bool((pod.get("spec") or {}).get("nodeName"))
        return (not bound, meta.get("creationTimestamp") or "", meta.get("name") or "")

    return sorted(pods, key=key)


# ----- rolling update knobs ----------------------------------------------------------


def _rolling(ds: Object) -> Object | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    rolling: Object | None = strategy.get("rollingUpdate")
    return rolling


def surge_count(ds: Object, desired: int) -> int:
    """``maxSurge`` of ``desired`` nodes, rounded up; 0 unless RollingUpdate asks for it."""
    rolling = _rolling(ds)
    if rolling is None or rolling.get("maxSurge") is None:
        return 0
    return deployment_util.scaled_value(rolling["maxSurge"], desired, round_up=True)


def unavailable_count(ds: Object, desired: int) -> int:
    rolling = _rolling(ds)
    if rolling is None:
        return 0
    return deployment_util.scaled_value(rolling.get("maxUnavailable"), desired, round_up=True)


def allows_surge(ds: Object) -> bool:
    """A node may hold an old and a new pod at once (upstream's AllowsSurge)."""
    return surge_count(ds, 1) > 0


def min_ready_seconds(ds: Object) -> int:
    return int((ds.get("spec") or {}).get("minReadySeconds") or 0)


def _available(pod: Object, ds: Object, now: datetime.datetime) -> bool:
    return pod_util.is_available(pod, min_ready_seconds(ds), now)


# ----- manage: which nodes need a pod, which pods must go -------------------------------


@dataclasses.dataclass(slots=True)
class ManagePlan:
    """Nodes to create a pod for, pods to delete, and finished pods by node.

    Succeeded pods are already in ``delete`` (listed again for their event);
    Failed ones are not: the controller deletes them under a per-node backoff,
    since a kubelet that keeps rejecting a pod would otherwise make it loop.
    """

    create: list[str] = dataclasses.field(default_factory=list)
    delete: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, Object]] = dataclasses.field(default_factory=list)
    succeeded: list[tuple[str, Object]] = dataclasses.field(default_factory=list)


def _surplus_when_surging(
    running: list[Object], ds: Object, hash_: str, now: datetime.datetime
) -> list[str]:
    """Keep the oldest new and oldest old pod; the old one goes once the new one is available."""
    oldest_new: Object | None = None
    oldest_old: Object | None = None
    doomed: list[str] = []
    for pod in by_creation_and_phase(running):
        if placement.is_updated(pod, hash_):
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        doomed.append(_name(pod))
    if oldest_new is not None and oldest_old is not None:
        if not pod_util.is_ready(oldest_old) or _available(oldest_new, ds, now):
            doomed.append(_name(oldest_old))
    return doomed


def plan_node(
    plan: ManagePlan,
    node_name: str,
    fit: placement.Fit,
    pods: Sequence[Object] | None,
    *,
    ds: Object,
    hash_: str,
    now: datetime.datetime,
) -> None:
    """Add one node's creations and deletions to ``plan`` (upstream's podsShouldBeOnNode)."""
    if fit.should_run and pods is None:
        plan.create.append(node_name)
    elif fit.should_continue_running:
        running: list[Object] = []
        for pod in pods or ():
            if _deleting(pod):
                continue
            if _phase(pod) == "Failed":
                plan.failed.append((node_name, pod))
            elif _phase(pod) == "Succeeded":
                plan.succeeded.append((node_name, pod))
                plan.delete.append(_name(pod))
            else:
                running.append(pod)
        if not allows_surge(ds):
            plan.delete.extend(_name(p) for p in by_creation_and_phase(running)[1:])
        elif len(running) <= 1:
            if not running and fit.should_run:
                plan.create.append(node_name)
        else:
            plan.delete.extend(_surplus_when_surging(running, ds, hash_, now))
    elif pods is not None:
        plan.delete.extend(_name(p) for p in pods if not _deleting(p))


def plan_manage(
    ds: Object,
    nodes: Sequence[Object],
    fits: Mapping[str, placement.Fit],
    node_pods: NodePods,
    *,
    hash_: str,
    now: datetime.datetime,
) -> ManagePlan:
    """Every node's plan, plus unbound pods aimed at nodes that no longer exist."""
    plan = ManagePlan()
    for node in nodes:
        name = _name(node)
        plan_node(plan, name, fits[name], node_pods.get(name), ds=ds, hash_=hash_, now=now)
    existing = {_name(n) for n in nodes}
    for node_name, pods in node_pods.items():
        if node_name not in existing:
            plan.delete.extend(_name(p) for p in pods if not (p.get("spec") or {}).get("nodeName"))
    return plan


# ----- rolling update -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class NodeRevisions:
    """A node's one new and one old pod; ``ok`` False when it has more (manage cleans up)."""

    new: Object | None
    old: Object | None
    ok: bool


def updated_pods_on_node(pods: Sequence[Object], hash_: str) -> NodeRevisions:
    new: Object | None = None
    old: Object | None = None
    for pod in pods:
        if _deleting(pod):
            continue
        if placement.is_updated(pod, hash_):
            if new is not None:
                return NodeRevisions(None, None, False)
            new = pod
        else:
            if old is not None:
                return NodeRevisions(None, None, False)
            old = pod
    return NodeRevisions(new, old, True)


@dataclasses.dataclass(frozen=True, slots=True)
class RollingPlan:
    delete: list[str]
    create: list[str]


def rolling_limits(ds: Object, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable); an impossible 0/0 falls back to unavailability 1."""
    surge, unavailable = surge_count(ds, desired), unavailable_count(ds, desired)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def plan_rolling_update(
    ds: Object,
    nodes: Sequence[Object],
    fits: Mapping[str, placement.Fit],
    node_pods: NodePods,
    *,
    hash_: str,
    now: datetime.datetime,
) -> RollingPlan:
    """The old pods to delete (and, when surging, nodes to start new pods on) this sync."""
    pods_by_node: dict[str, Sequence[Object]] = dict(node_pods)
    desired = 0
    for node in nodes:
        if fits[_name(node)].should_run:
            desired += 1
            pods_by_node.setdefault(_name(node), ())
    surge, unavailable = rolling_limits(ds, desired)
    if surge == 0:
        return _plan_without_surge(ds, pods_by_node, unavailable, hash_=hash_, now=now)
    return _plan_with_surge(ds, pods_by_node, fits, surge, desired, hash_=hash_, now=now)


def _plan_without_surge(
    ds: Object,
    pods_by_node: Mapping[str, Sequence[Object]],
    max_unavailable: int,
    *,
    hash_: str,
    now: datetime.datetime,
) -> RollingPlan:
    unavailable = 0
    replace: list[str] = []
    candidates: list[str] = []
    for node_name in sorted(pods_by_node):
        found = updated_pods_on_node(pods_by_node[node_name], hash_)
        if not found.ok or (found.new is None) == (found.old is None):
            # Nothing, or both: manage creates or prunes; it counts as unavailable.
            unavailable += 1
        elif found.new is not None:
            if not _available(found.new, ds, now):
                unavailable += 1
        elif found.old is not None:
            if not _available(found.old, ds, now):
                replace.append(_name(found.old))
            elif unavailable < max_unavailable:
                candidates.append(_name(found.old))
    room = max(0, min(max_unavailable - unavailable, len(candidates)))
    return RollingPlan(delete=replace + candidates[:room], create=[])


def _plan_with_surge(
    ds: Object,
    pods_by_node: Mapping[str, Sequence[Object]],
    fits: Mapping[str, placement.Fit],
    max_surge: int,
    desired: int,
    *,
    hash_: str,
    now: datetime.datetime,
) -> RollingPlan:
    delete: list[str] = []
    not_wanted: list[str] = []
    allowed: list[str] = []
    candidates: list[str] = []
    surging = available = 0
    for node_name in sorted(pods_by_node):
        found = updated_pods_on_node(pods_by_node[node_name], hash_)
        if not found.ok:
            surging += 1
            continue
        current = found.old if found.old is not None else found.new
        if current is not None and _available(current, ds, now):
            available += 1
        fit = fits.get(node_name, placement.Fit(False, False))
        if found.old is None:
            continue
        if found.new is None:
            if not _available(found.old, ds, now):
                # An unavailable old pod is replaced at once (or just goes,
                # when the node no longer wants the daemon).
                if fit.should_run:
                    allowed.append(node_name)
                else:
                    delete.append(_name(found.old))
            elif not fit.should_run:
                not_wanted.append(_name(found.old))
            elif surging < max_surge:
                candidates.append(node_name)
        elif not _available(found.new, ds, now):
            surging += 1
        else:
            delete.append(_name(found.old))
    # Surge promises full availability: a pod on a node the DaemonSet left only
    # goes once enough pods elsewhere are available.
    deletable = max(0, min(available - desired, len(not_wanted)))
    delete.extend(not_wanted[:deletable])
    room = max(0, min(max_surge - surging, len(candidates)))
    return RollingPlan(delete=delete, create=allowed + candidates[:room])


# ----- status ---------------------------------------------------------------------------

STATUS_COUNTERS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberMisscheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
)


def calculate_status(
    ds: Object,
    nodes: Sequence[Object],
    fits: Mapping[str, placement.Fit],
    node_pods: NodePods,
    *,
    hash_: str,
    now: datetime.datetime,
) -> dict[str, int]:
    """The DaemonSet's counters; a node's oldest (bound first) pod stands for it."""
    counts = dict.fromkeys(STATUS_COUNTERS, 0)
    for node in nodes:
        pods = node_pods.get(_name(node)) or ()
        if not fits[_name(node)].should_run:
            counts["numberMisscheduled"] += 1 if pods else 0
            continue
        counts["desiredNumberScheduled"] += 1
        if not pods:
            continue
        counts["currentNumberScheduled"] += 1
        pod = by_creation_and_phase(pods)[0]
        if pod_util.is_ready(pod):
            counts["numberReady"] += 1
            if _available(pod, ds, now):
                counts["numberAvailable"] += 1
        if placement.is_updated(pod, hash_):
            counts["updatedNumberScheduled"] += 1
    counts["numberUnavailable"] = counts["desiredNumberScheduled"] - counts["numberAvailable"]
    return counts
