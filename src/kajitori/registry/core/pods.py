"""Pods in the API server: create/update/delete rules, pods/status, field selectors, table.

Owns: a new pod gets ``status {phase: Pending, qosClass}`` and generation 1;
a changed spec and the first graceful deletion bump the generation, a status
write never does and cannot clear ``observedGeneration`` (KEP-5067); the spec
is immutable except for images, activeDeadlineSeconds, tolerations
(additions) and scheduling gates (removals); graceful deletion waits
``terminationGracePeriodSeconds`` only for scheduled, non-terminal pods; the
``kubectl get pods`` columns (READY, STATUS with upstream's phase/reason
rules, RESTARTS "3 (5m ago)"). Mirrors pkg/registry/core/pod/strategy.go and
printPod in pkg/printers/internalversion/printers.go.

``pods/binding`` is a create-only subresource (``pod_binding.py``); the
streaming subresources (log, exec) and eviction are not declared here.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults, qos
from kajitori.api.core_v1.validation import pods as validation
from kajitori.machinery import field, shapes
from kajitori.registry import resource
from kajitori.registry.core import pod_binding, pod_ephemeralcontainers, pod_resize
from kajitori.registry.core.pod_updates import update_pod_generation
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]

SCHEDULING_GATED = "SchedulingGated"
TERMINAL_PHASES = ("Succeeded", "Failed")
NODE_UNREACHABLE_REASON = "NodeLost"


# --- strategy -----------------------------------------------------------------------


def _scheduling_gated_condition(pod: Object) -> None:
    """Gated pods are created with PodScheduled=False/SchedulingGated, as upstream does."""
    if not (pod.get("spec") or {}).get("schedulingGates"):
        return
    conditions = pod["status"].setdefault("conditions", [])
    if any(c.get("type") == "PodScheduled" for c in conditions):
        return
    conditions.append(
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": SCHEDULING_GATED,
            "message": "Scheduling is blocked due to non-empty scheduling gates",
            "lastProbeTime": None,
            "lastTransitionTime": None,
        }
    )


# Defaulted pod specs (JSON) by the spec's JSON. ``defaults.set_defaults_pod``
# is a pure function of the spec, and the pods of a ReplicaSet, Job or
# StatefulSet arrive with their template's spec byte for byte: a repeat costs
# an encode and a decode of the spec instead of the defaulting walk, and gets
# a fresh object. A spec that defaulting leaves as it was (a template's, which
# the workload's own defaulting filled) is remembered as ``shapes.UNCHANGED``
# and kept: no decode either.
_DEFAULTED_SPECS = shapes.JsonMemo(digest=True)


def _defaulted_spec(pod: Object) -> Object:
    """``pod``'s spec defaulted: the same object defaulted in place, or a remembered copy."""
    spec: Object = pod["spec"]
    key = _DEFAULTED_SPECS.key(spec)
    known = None if key is None else _DEFAULTED_SPECS.get(key)
    if known is shapes.UNCHANGED:
        return spec
    if known is not None:
        remembered: Object = orjson.loads(known)
        return remembered
    defaults.set_defaults_pod(pod)
    if key is not None:
        text = orjson.dumps(spec)
        _DEFAULTED_SPECS.put(key, shapes.UNCHANGED if text == key else text)
    return spec


class PodStrategy(strategies.Strategy):
    """Create/update/delete rules of ``pods``."""

    graceful = True

    def set_defaults(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        # Pod defaulting reads and writes the spec alone: every pod a workload
        # creates from one template is defaulted once (see ``_DEFAULTED_SPECS``).
        obj["spec"] = _defaulted_spec(obj)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": qos.compute_pod_qos(obj)}
        obj.setdefault("metadata", {})["generation"] = 1
        _scheduling_gated_condition(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)
        update_pod_generation(obj, old)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_pod(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_update(obj, old)

    def warnings_on_create(self, obj: Object) -> list[str]:
        return pod_warnings(obj)

    def graceful_deletion_seconds(self, obj: Object, requested: int | None) -> int:
        """CheckGracefulDelete: the requested or spec'd grace, 0 if unscheduled or terminal."""
        spec = obj.get("spec") or {}
        period = requested
        if period is None:
            period = spec.get("terminationGracePeriodSeconds") or 0
        if not spec.get("nodeName"):
            period = 0
        if (obj.get("status") or {}).get("phase") in TERMINAL_PHASES:
            period = 0
        # A negative grace period means "as soon as possible", which the kubelet needs > 0 for.
        return 1 if period < 0 else period

    def prepare_for_delete(self, obj: Object) -> None:
        # Upstream's BeforeDelete: the first graceful deletion changes what the
        # pod's controllers and kubelet must do, so a pod that has a generation
        # gets the next one (even with a grace period of 0).
        meta = obj["metadata"]
        if meta.get("generation", 0) > 0:
            meta["generation"] += 1


def _keep_generation(meta: Object, old_meta: Object) -> None:
    if "generation" in old_meta:
        meta["generation"] = old_meta["generation"]
    else:
        meta.pop("generation", None)


def preserve_observed_generation(status: Object, old_status: Object) -> None:
    """Upstream's preserveOldObservedGeneration: a status write cannot clear them.

    An unset (or 0) ``status.observedGeneration`` keeps the stored one; each
    condition without one takes the stored value of the stored condition of
    its type in the same position among that type's conditions (validation
    lets a type repeat).
    """
    if not status.get("observedGeneration") and old_status.get("observedGeneration"):
        status["observedGeneration"] = old_status["observedGeneration"]
    stored: dict[Any, list[Any]] = {}
    for condition in _conditions(old_status):
        stored.setdefault(condition.get("type"), []).append(condition.get("observedGeneration"))
    for condition in _conditions(status):
        same_type = stored.get(condition.get("type"))
        previous = same_type.pop(0) if same_type else None
        if not condition.get("observedGeneration") and previous:
            condition["observedGeneration"] = previous


def _conditions(status: Object) -> list[Object]:
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return []
    return [c for c in conditions if isinstance(c, dict)]


def pod_warnings(pod: Object) -> list[str]:
    """A few of upstream's GetWarningsForPod (the ones typical manifests trigger)."""
    warnings = []
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(key) or ()):
            ports = container.get("ports") or ()
            seen: set[tuple[Any, Any]] = set()
            for j, port in enumerate(ports):
                identity = (port.get("containerPort"), port.get("protocol"))
                if identity in seen:
                    warnings.append(
                        f"spec.{key}[{i}].ports[{j}]: duplicate port definition with "
                        f"{identity[0]}/{identity[1]}"
                    )
                seen.add(identity)
    return warnings


class PodStatusStrategy(PodStrategy):
    """``pods/status``: the spec and owner references stay as stored; QoS is backfilled."""

    def set_defaults_for_update(self, obj: Object, old: Object) -> None:
        # Pod defaulting touches only the spec, which ``prepare_for_update``
        # replaces by the stored one. A kubelet sends the spec back as it read
        # it, and defaulting the stored (already defaulted) spec changes
        # nothing, so only a spec that differs is defaulted, for the admission
        # plugins that run in between to see what they saw before.
        if obj.get("spec") != old.get("spec"):
            self.set_defaults(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        obj["spec"] = old.get("spec")
        meta = obj.setdefault("metadata", {})
        old_meta = old.get("metadata") or {}
        for key in ("ownerReferences", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        _keep_generation(meta, old_meta)
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        old_status = old.get("status") or {}
        if not status.get("qosClass") and old_status.get("qosClass"):
            status["qosClass"] = old_status["qosClass"]
        preserve_observed_generation(status, old_status)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_pod_status_update(obj, old)

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        return False

    def warnings_on_create(self, obj: Object) -> list[str]:
        return []


# --- table --------------------------------------------------------------------------


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column(
        "Ready", description="The aggregate readiness state of this pod for accepting traffic."
    ),
    tables.Column("Status", description="The aggregate status of the containers in this pod."),
    tables.Column(
        "Restarts",
        description="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    tables.AGE_COLUMN,
    tables.Column("IP", priority=1, description=_doc("PodStatus", "podIP")),
    tables.Column("Node", priority=1, description=_doc("PodSpec", "nodeName")),
    tables.Column("Nominated Node", priority=1, description=_doc("PodStatus", "nominatedNodeName")),
    tables.Column("Readiness Gates", priority=1, description=_doc("PodSpec", "readinessGates")),
)


def _terminated_reason(terminated: Mapping[str, Any], prefix: str) -> str:
    if terminated.get("reason"):
        return f"{prefix}{terminated['reason']}"
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _last_termination(status: Mapping[str, Any]) -> datetime.datetime | None:
    terminated = (status.get("lastState") or {}).get("terminated") or {}
    return tables.parse_time(terminated.get("finishedAt"))


def _later(a: datetime.datetime | None, b: datetime.datetime | None) -> datetime.datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class _PodSummary:
    """The counters printPod accumulates while walking container statuses."""

    def __init__(self, pod: Object) -> None:
        self.spec: Mapping[str, Any] = pod.get("spec") or {}
        self.status: Mapping[str, Any] = pod.get("status") or {}
        self.reason: str = self.status.get("reason") or self.status.get("phase") or ""
        self.ready = 0
        self.total = len(self.spec.get("containers") or ())
        self.restarts = 0
        self.last_restart: datetime.datetime | None = None
        self.sidecars = {
            c.get("name")
            for c in self.spec.get("initContainers") or ()
            if c.get("restartPolicy") == "Always"
        }
        self.total += len(self.sidecars)
        for condition in self.status.get("conditions") or ():
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("reason") == SCHEDULING_GATED
            ):
                self.reason = SCHEDULING_GATED

    def walk_init_containers(self) -> bool:
        """Init container statuses; True while the pod is still initializing."""
        sidecar_restarts, sidecar_last = 0, None
        initializing = False
        statuses = self.status.get("initContainerStatuses") or ()
        for i, status in enumerate(statuses):
            self.restarts += status.get("restartCount") or 0
            self.last_restart = _later(self.last_restart, _last_termination(status))
            is_sidecar = status.get("name") in self.sidecars
            if is_sidecar:
                sidecar_restarts += status.get("restartCount") or 0
                sidecar_last = _later(sidecar_last, _last_termination(status))
            state = status.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if terminated is not None and (terminated.get("exitCode") or 0) == 0:
                continue
            if is_sidecar and status.get("started"):
                self.ready += 1 if status.get("ready") else 0
                continue
            initializing = True
            if terminated is not None:
                self.reason = _terminated_reason(terminated, "Init:")
            elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
                self.reason = f"Init:{waiting['reason']}"
            else:
                self.reason = f"Init:{i}/{len(self.spec.get('initContainers') or ())}"
            break
        self._sidecar_restarts, self._sidecar_last = sidecar_restarts, sidecar_last
        return initializing

    def walk_containers(self) -> None:
        self.restarts, self.last_restart = self._sidecar_restarts, self._sidecar_last
        has_running = False
        for status in reversed(self.status.get("containerStatuses") or ()):
            self.restarts += status.get("restartCount") or 0
            self.last_restart = _later(self.last_restart, _last_termination(status))
            state = status.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                self.reason = waiting["reason"]
            elif terminated is not None:
                self.reason = _terminated_reason(terminated, "")
            elif status.get("ready") and state.get("running") is not None:
                has_running = True
                self.ready += 1
        if self.reason == "Completed" and has_running:
            self.reason = "Running" if _condition_true(self.status, "Ready") else "NotReady"


def _condition_true(status: Mapping[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or ()
    )


def _has_condition(status: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind for c in status.get("conditions") or ())


def _readiness_gates(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    gates = spec.get("readinessGates") or ()
    if not gates:
        return "<none>"
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
    true = sum(1 for gate in gates if conditions.get(gate.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


def pod_row(pod: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    summary = _PodSummary(pod)
    initializing = summary.walk_init_containers()
    if not initializing or _condition_true(summary.status, "Initialized"):
        summary.walk_containers()
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp") is not None
    if deleting and summary.status.get("reason") == NODE_UNREACHABLE_REASON:
        summary.reason = "Unknown"
    elif deleting and summary.status.get("phase") not in TERMINAL_PHASES:
        summary.reason = "Terminating"
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts = f"{summary.restarts} ({tables.human_duration(now - summary.last_restart)} ago)"
    pod_ips = summary.status.get("podIPs") or ()
    return [
        tables.name(pod),
        f"{summary.ready}/{summary.total}",
        summary.reason,
        restarts,
        tables.age(pod, now),
        (pod_ips[0].get("ip") if pod_ips else "") or "<none>",
        summary.spec.get("nodeName") or "<none>",
        summary.status.get("nominatedNodeName") or "<none>",
        _readiness_gates(summary.spec, summary.status),
    ]


# --- field selectors ----------------------------------------------------------------


def _host_network(pod: Object) -> str:
    return "true" if (pod.get("spec") or {}).get("hostNetwork") else "false"


def _pod_ip(pod: Object) -> str:
    ips = (pod.get("status") or {}).get("podIPs") or ()
    return str(ips[0].get("ip", "")) if ips else ""


SELECTABLE_FIELDS: Mapping[str, resource.FieldExtractor] = {
    "spec.nodeName": resource.nested_str("spec", "nodeName"),
    "spec.restartPolicy": resource.nested_str("spec", "restartPolicy"),
    "spec.schedulerName": resource.nested_str("spec", "schedulerName"),
    "spec.serviceAccountName": resource.nested_str("spec", "serviceAccountName"),
    "spec.hostNetwork": _host_network,
    "status.phase": resource.nested_str("status", "phase"),
    "status.podIP": _pod_ip,
    "status.podIPs": _pod_ip,
    "status.nominatedNodeName": resource.nested_str("status", "nominatedNodeName"),
}

STRATEGY = PodStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Pod",
    # Upstream's storage sets ReturnDeletedObject: DELETE answers with the object.
    return_deleted_object=True,
    plural="pods",
    namespaced=True,
    short_names=("po",),
    categories=("all",),
    strategy=STRATEGY,
    status=PodStatusStrategy(),
    selectable_fields=SELECTABLE_FIELDS,
    table=tables.Table(columns=COLUMNS, row=pod_row),
    extra_subresources=("binding", pod_ephemeralcontainers.SUBRESOURCE, pod_resize.SUBRESOURCE),
    extra_strategies={
        pod_ephemeralcontainers.SUBRESOURCE: pod_ephemeralcontainers.STRATEGY,
        pod_resize.SUBRESOURCE: pod_resize.STRATEGY,
    },
    subresource_create={"binding": pod_binding.create},
)
