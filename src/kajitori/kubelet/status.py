"""From a runtime's ``PodStatus`` to the API's ``pod.status``, as upstream's kubelet does.

Mirrors pkg/kubelet/kubelet_pods.go (``generateAPIPodStatus``, ``getPhase``)
and pkg/kubelet/status/generate.go: the phase from the containers and the
restart policy; conditions ``PodReadyToStartContainers``, ``Initialized``,
``Ready``, ``ContainersReady`` and ``PodScheduled`` with upstream's reasons;
container statuses with ``state``, ``lastState``, ``ready``, ``started``,
``restartCount``, ``image``, ``imageID`` and ``containerID``; the pod's
generation as ``observedGeneration`` of the status and of each of those
conditions (upstream's status manager, KEP-5067). A condition
keeps its ``lastTransitionTime`` while its status is unchanged, and
``startTime`` is set once, so re-generating an unchanged pod yields an
identical status (the kubelet writes only when it differs).
"""

from __future__ import annotations

import functools
from typing import Any

from kajitori.api import definitions
from kajitori.kubelet.runtimes import interface
from kajitori.machinery import times
from kajitori.machinery.patching import two_way
from kajitori.machinery.schema import SchemaNode

Object = dict[str, Any]


def rfc3339(seconds: float) -> str:
    """A metav1.Time (whole seconds, UTC)."""
    # A status is generated at every pod sync, several times over, and most of
    # its times fall on the same few seconds: ``times`` formats each once.
    return times.rfc3339(int(seconds))


def _termination(term: interface.Termination) -> Object:
    return {
        "exitCode": term.exit_code,
        "reason": term.reason,
        "startedAt": rfc3339(term.started_at),
        "finishedAt": rfc3339(term.finished_at),
        "containerID": term.container_id,
    }


def _state(status: interface.ContainerStatus) -> Object:
    if status.state == "running":
        assert status.started_at is not None
        return {"running": {"startedAt": rfc3339(status.started_at)}}
    if status.state == "terminated":
        assert status.termination is not None
        terminated = _termination(status.termination)
        if status.message:  # e.g. runc's error for a StartError
            terminated["message"] = status.message
        return {"terminated": terminated}
    waiting: Object = {"reason": status.reason}
    if status.message:
        waiting["message"] = status.message
    return {"waiting": waiting}


def is_ready(status: interface.ContainerStatus) -> bool:
    """The prober's verdict when there is one; otherwise running means ready."""
    return status.ready if status.ready is not None else status.state == "running"


def is_started(status: interface.ContainerStatus) -> bool:
    return status.started if status.started is not None else status.state == "running"


def container_status(status: interface.ContainerStatus) -> Object:
    """One entry of ``containerStatuses``; ``ready``/``started`` from the prober if it ran."""
    out: Object = {
        "name": status.name,
        "state": _state(status),
        "lastState": (
            {"terminated": _termination(status.last_termination)} if status.last_termination else {}
        ),
        "ready": is_ready(status),
        "restartCount": status.restart_count,
        "image": status.image,
        "imageID": status.image_id,
        "started": is_started(status),
    }
    if status.container_id:
        out["containerID"] = status.container_id
    return out


def ephemeral_container_status(status: interface.ContainerStatus) -> Object:
    """An entry of ``ephemeralContainerStatuses``: never ready, no ``started``.

    Upstream's prober sets both only for regular and init containers, so an
    ephemeral container's stay at their zero values (false, unset).
    """
    out = container_status(status)
    out["ready"] = False
    del out["started"]
    return out


def pod_phase(pod: Object, runtime: interface.PodStatus) -> str:
    """Upstream's getPhase for a pod whose init containers have completed."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    containers = runtime.containers
    waiting = [c for c in containers if c.state == "waiting" and c.last_termination is None]
    if not containers or waiting:
        return "Pending"
    if any(c.state == "running" or c.state == "waiting" for c in containers):
        return "Running"  # waiting here means backing off before a restart
    failed = any(c.termination and c.termination.exit_code != 0 for c in containers)
    if policy == "Always" or (policy == "OnFailure" and failed):
        return "Running"
    return "Failed" if failed else "Succeeded"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Object:
    condition: Object = {"type": kind, "status": "True" if ok else "False"}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def observed_generation(pod: Object) -> int:
    """The generation this status speaks for: the synced copy's (KEP-5067, GA in 1.35).

    Upstream's CalculatePodStatusObservedGeneration and, for the conditions
    the kubelet owns, CalculatePodConditionObservedGeneration: with the gate
    locked on both are the pod's ``metadata.generation`` (0, i.e. unset, for
    a pod that has none).
    """
    generation = (pod.get("metadata") or {}).get("generation")
    return generation if isinstance(generation, int) and generation > 0 else 0


def _observe(conditions: list[Object], generation: int) -> list[Object]:
    if generation:
        for condition in conditions:
            condition["observedGeneration"] = generation
    return conditions


def pod_conditions(phase: str, runtime: interface.PodStatus) -> list[Object]:
    """The kubelet's conditions, in upstream's order."""
    done = phase in ("Succeeded", "Failed")
    unready = [c.name for c in runtime.containers if not is_ready(c)]
    if done:
        ready = _condition("ContainersReady", False, "PodCompleted")
    elif unready:
        names = " ".join(unready)
        ready = _condition(
            "ContainersReady",
            False,
            "ContainersNotReady",
            f"containers with unready status: [{names}]",
        )
    else:
        ready = _condition("ContainersReady", True)
    pod_ready = {**ready, "type": "Ready"}
    return [
        _condition("PodReadyToStartContainers", runtime.sandbox_ready),
        _condition("Initialized", True),
        pod_ready,
        ready,
        _condition("PodScheduled", True),
    ]


def generate_pod_status(
    pod: Object,
    runtime: interface.PodStatus,
    *,
    now: float,
    pod_ip: str,
    host_ip: str,
) -> Object:
    """The pod's new ``status``; times carried over from the current one when unchanged."""
    old = pod.get("status") or {}
    phase = pod_phase(pod, runtime)
    generation = observed_generation(pod)
    conditions = _observe(pod_conditions(phase, runtime), generation)
    status: Object = {
        "phase": phase,
        "conditions": _keep_transition_times(conditions, old, now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": old.get("startTime") or rfc3339(now),
        "containerStatuses": [container_status(c) for c in runtime.containers],
    }
    if generation:
        status["observedGeneration"] = generation
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if runtime.init_containers:
        status["initContainerStatuses"] = [container_status(c) for c in runtime.init_containers]
    if runtime.ephemeral_containers:
        # Upstream reports them as any container, but they count for neither
        # the phase nor readiness (they are never probed).
        status["ephemeralContainerStatuses"] = [
            ephemeral_container_status(c) for c in runtime.ephemeral_containers
        ]
    for key in ("qosClass", "nominatedNodeName", "resize"):
        if key in old:
            status[key] = old[key]
    # Conditions other components own (e.g. DisruptionTarget) are kept as they are.
    ours = {c["type"] for c in status["conditions"]}
    status["conditions"] += [c for c in old.get("conditions") or () if c.get("type") not in ours]
    return status


def _keep_transition_times(conditions: list[Object], old: Object, now: float) -> list[Object]:
    previous = {c.get("type"): c for c in old.get("conditions") or ()}
    for condition in conditions:
        before = previous.get(condition["type"])
        if before is not None and before.get("status") == condition["status"]:
            condition["lastTransitionTime"] = before.get("lastTransitionTime") or rfc3339(now)
        else:
            condition["lastTransitionTime"] = rfc3339(now)
        condition["lastProbeTime"] = None
    return conditions


@functools.cache
def _pod_schema() -> SchemaNode | None:
    return definitions.schema_for("", "v1", "Pod")


def status_patch(pod: Object, new: Object) -> Object:
    """The strategic merge patch of ``pods/status`` from ``pod``'s status to ``new``.

    Upstream's PatchPodStatus: the two-way patch from ``{status: old}`` to
    ``{metadata: {uid}, status: new}``, so the uid is in the patch and the
    server refuses it (409, "Precondition failed: UID in precondition") for
    another pod of that name.
    Upstream computes it against a pod it has just read; ours is the
    informer's copy, which may lag our own last write, and a patch is right
    only on the version it was computed from (a field it does not name keeps
    the server's value). So the copy's ``resourceVersion`` goes with it as a
    precondition (409 otherwise, as the PUT it replaces). ``{}``: unchanged.
    """
    old = pod.get("status") or {}
    diff = two_way.create_two_way_merge_patch({"status": old}, {"status": new}, _pod_schema())
    if not diff:
        return {}
    meta = pod["metadata"]
    diff["metadata"] = {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
    return diff
