"""The Runtime protocol: what the kubelet asks of a container runtime.

Modelled on upstream's pkg/kubelet/container/runtime.go (``Runtime``:
``SyncPod``, ``KillPod``, ``GetPodStatus``, ``GetPods``), reduced to what
the kubelet here needs. Every method takes ``now`` (seconds since the
epoch) so a runtime whose containers follow a timeline, like
``simulated``, is a pure function of time and can be tested without
sleeping. The runtime never talks to the API: the kubelet turns a
``PodStatus`` into ``pod.status`` (kubelet/status.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

Object = dict[str, Any]
State = Literal["waiting", "running", "terminated"]


@dataclasses.dataclass(frozen=True, slots=True)
class Termination:
    """How one run of a container ended."""

    exit_code: int
    reason: str
    started_at: float
    finished_at: float
    container_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One container as the runtime sees it at a moment.

    ``state`` is ``waiting`` (``reason`` ContainerCreating, CrashLoopBackOff),
    ``running`` (since ``started_at``) or ``terminated`` (``termination``).
    ``last_termination`` is the previous run, once the container restarted
    or is backing off before a restart.
    """

    name: str
    image: str
    image_id: str
    container_id: str
    state: State
    reason: str = ""
    message: str = ""
    started_at: float | None = None
    termination: Termination | None = None
    last_termination: Termination | None = None
    restart_count: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class PodStatus:
    """A pod's sandbox and containers; ``next_change`` is when any of them next changes."""

    uid: str
    sandbox_ready: bool
    init_containers: tuple[ContainerStatus, ...]
    containers: tuple[ContainerStatus, ...]
    next_change: float | None = None


class Runtime(Protocol):
    """A container runtime. Methods are cheap and never block the event loop."""

    type: str

    def sync_pod(self, pod: Object, *, now: float) -> None:
        """Make the pod's sandbox and containers exist (idempotent); called on every pod sync."""

    def kill_pod(self, uid: str, *, now: float, grace_period: float | None = None) -> None:
        """Stop every container of pod ``uid`` at ``now``; a no-op for an unknown pod.

        ``grace_period`` (the pod's ``deletionGracePeriodSeconds``) overrides
        ``spec.terminationGracePeriodSeconds``. A runtime whose containers take
        time to stop reports them running until they have; the kubelet looks
        again when it is told of a change.
        """

    def get_pod_status(self, uid: str, *, now: float) -> PodStatus | None:
        """The pod's status at ``now``; ``None`` when the runtime has never started it."""

    def remove_pod(self, uid: str) -> None:
        """Forget pod ``uid`` (it is gone from the API); a no-op for an unknown pod."""

    def get_pods(self) -> list[str]:
        """UIDs of every pod the runtime holds."""


@runtime_checkable
class NotifyingRuntime(Protocol):
    """A runtime whose pods change on their own (real containers), not on a timeline.

    The kubelet registers ``callback`` once; the runtime calls it with a
    pod's UID, on the event loop, whenever that pod's status may have
    changed, and the kubelet then syncs the pod again.
    """

    def set_on_change(self, callback: Callable[[str], None]) -> None: ...
