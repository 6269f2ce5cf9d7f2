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
from collections.abc import Awaitable, Callable
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
    # Set by the kubelet's prober (prober.py) for runtimes it probes; ``None``
    # means "as running": a container without probes is ready once it runs.
    ready: bool | None = None
    started: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PodStatus:
    """A pod's sandbox and containers; ``next_change`` is when any of them next changes.

    ``pod_ip`` is the sandbox's address from its network (CNI), ``""`` while
    it has none yet; ``None`` means the runtime gives pods no addresses and
    the kubelet allocates one from the node's podCIDR itself (simulated).
    """

    uid: str
    sandbox_ready: bool
    init_containers: tuple[ContainerStatus, ...]
    containers: tuple[ContainerStatus, ...]
    next_change: float | None = None
    pod_ip: str | None = None
    # Ephemeral containers (``kubectl debug``): started once added, never restarted.
    ephemeral_containers: tuple[ContainerStatus, ...] = ()


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


class RecordEvent(Protocol):
    """Records an Event about ``pod``; ``field_path`` names its container (see below)."""

    def __call__(
        self,
        pod: Object,
        event_type: str,
        reason: str,
        message: str,
        /,
        *,
        field_path: str = "",
    ) -> None: ...


def container_field_path(pod: Object, name: str) -> str:
    """The fieldPath of container ``name`` in ``pod``, as upstream's GenerateContainerRef.

    ``spec.containers{name}``, ``spec.initContainers{name}`` or
    ``spec.ephemeralContainers{name}``, looked up in that order; a container
    the spec does not hold is "implicitly required", as upstream names it.
    """
    spec = pod.get("spec") or {}
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for index, container in enumerate(spec.get(field) or ()):
            if (container.get("name") or "") == name:
                return f"spec.{field}{{{name}}}" if name else f"spec.{field}[{index}]"
    return f"implicitly required container {name}"


@dataclasses.dataclass(frozen=True, slots=True)
class KubeletHooks:
    """What a runtime may ask of the kubelet that runs it (never of the API directly).

    ``record_event(pod, type, reason, message, field_path=...)`` records an
    Event about the pod, or one of its containers when ``field_path`` (from
    ``container_field_path``) is given (upstream's kubelet records image
    pulls this way); ``get_secret(node,
    namespace, name)`` reads a Secret as the pod's node (``None`` when it does
    not exist); ``pod_cidr(node)`` is the node's ``spec.podCIDR`` (``""`` while
    node IPAM has not set it).
    """

    record_event: RecordEvent
    get_secret: Callable[[str, str, str], Awaitable[Object | None]]
    pod_cidr: Callable[[str], str]


@runtime_checkable
class HookedRuntime(Protocol):
    """A runtime that uses the kubelet's hooks; the kubelet sets them once, before any sync."""

    def set_kubelet_hooks(self, hooks: KubeletHooks) -> None: ...


@runtime_checkable
class ProbingRuntime(Protocol):
    """A runtime that can run a container's probes (kubelet/prober.py decides when).

    ``probe`` runs one probe action (the ``exec``/``httpGet``/``tcpSocket``/
    ``grpc`` part of a probe) against the container's current run, within
    ``timeout`` seconds: ``(succeeded, output)``, the output being what the
    ``Unhealthy`` event shows; ``LookupError`` when the container is not
    running. ``kill_container`` stops the current run (liveness failure) with
    ``grace_period`` (``None``: the pod's); the runtime restarts it per the
    pod's ``restartPolicy``.
    """

    async def probe(
        self, uid: str, container: str, action: Object, *, timeout: float
    ) -> tuple[bool, str]: ...

    def kill_container(
        self, uid: str, container: str, *, grace_period: float | None, reason: str
    ) -> None: ...
