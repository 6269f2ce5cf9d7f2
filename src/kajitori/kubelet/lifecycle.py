"""Pod admission on the node: what upstream's kubelet checks before it runs a new pod.

Upstream's kubelet admits each pod it is given (pkg/kubelet/lifecycle/
predicate.go, ``predicateAdmitHandler``) against the pods it already runs,
with the scheduler's own filters, since a pod can reach a node without the
scheduler (``spec.nodeName`` set by its author). A pod that does not fit is
rejected (``Kubelet.rejectPod``): a Warning event with the reason, and the
pod's status set to phase ``Failed`` with that reason and the message
``Pod was rejected: <message>``; it never reaches the runtime.

Only the host port filter (the scheduler's NodePorts plugin) is checked
here: two pods of one node asking for the same ``hostPort`` and protocol on
overlapping host IPs. Resources, taints and affinity are the scheduler's
alone in kajitori.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

Object = dict[str, Any]

NODE_PORTS = "NodePorts"  # the scheduler plugin's name, upstream's rejection reason
NODE_PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"
REJECTED_PREFIX = "Pod was rejected: "
ANY_IP = "0.0.0.0"

HostPort = tuple[str, str, int]  # (host IP, protocol, port)


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """Why a pod may not run here: the event's reason and message."""

    reason: str
    message: str

    @property
    def status_message(self) -> str:
        return REJECTED_PREFIX + self.message


def host_ports(pod: Object) -> set[HostPort]:
    """The ``(hostIP, protocol, hostPort)`` triples the pod's containers ask for."""
    spec = pod.get("spec") or {}
    found: set[HostPort] = set()
    for container in (*(spec.get("initContainers") or ()), *(spec.get("containers") or ())):
        for port in container.get("ports") or ():
            number = int(port.get("hostPort") or 0)
            if number > 0:
                ip = str(port.get("hostIP") or ANY_IP)
                found.add((ip, str(port.get("protocol") or "TCP"), number))
    return found


def _conflict(a: HostPort, b: HostPort) -> bool:
    """Same protocol and port on the same host IP, or on any IP (0.0.0.0) for either."""
    return a[1:] == b[1:] and (a[0] == b[0] or ANY_IP in (a[0], b[0]))


def admit(pod: Object, admitted: Iterable[Object]) -> Rejection | None:
    """``None`` when ``pod`` may run beside the ``admitted`` pods of its node."""
    wanted = host_ports(pod)
    if not wanted:
        return None
    used = {port for other in admitted for port in host_ports(other)}
    if any(_conflict(a, b) for a in wanted for b in used):
        # PredicateFailureError.Error(): "Predicate <name> failed: <description>".
        return Rejection(NODE_PORTS, f"Predicate {NODE_PORTS} failed: {NODE_PORTS_REASON}")
    return None


def rejected_status(pod: Object, rejection: Rejection, *, start_time: str) -> Object:
    """The status upstream's status manager writes for a rejected pod."""
    old = pod.get("status") or {}
    status: Object = {
        "phase": "Failed",
        "reason": rejection.reason,
        "message": rejection.status_message,
        "startTime": old.get("startTime") or start_time,
    }
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    generation = (pod.get("metadata") or {}).get("generation")
    if generation:  # upstream's SetPodStatus stamps every status it writes (KEP-5067)
        status["observedGeneration"] = generation
    return status
