"""Liveness, readiness and startup probes, runtime-independent (upstream's pkg/kubelet/prober).

The kubelet owns one ``ProberManager``. On every pod sync it hands the
manager the pod and the runtime's ``PodStatus`` (``update``); the manager
keeps one asyncio worker per running container and probe type, keyed by
the container's run (``container_id``), so a restarted container starts
over with fresh results. A worker:

* waits ``initialDelaySeconds`` after the container started, then probes
  every ``periodSeconds`` with ``timeoutSeconds``;
* counts consecutive equal outcomes and only changes its cached result once
  ``successThreshold`` / ``failureThreshold`` is reached (``Worker``, a pure
  state machine tested with a fake clock);
* leaves liveness and readiness alone until the startup probe has
  succeeded, and stops once startup succeeded;
* on a liveness or startup failure asks the runtime to kill the container
  (it restarts under the pod's ``restartPolicy``) and holds until a new
  run appears, as upstream's ``onHold``.

Whenever a cached result changes the manager calls ``on_change(uid)`` and the
kubelet syncs the pod, whose status then takes the container's ``ready`` and
``started`` from ``apply``. The probe itself (exec, httpGet, tcpSocket,
grpc) is the runtime's (``interface.ProbingRuntime``), since only it can
reach the container and its network namespace. Events are upstream's:
``Unhealthy`` (``Liveness probe failed: ...``) on every failed probe and
``Killing`` (``Container c failed liveness probe, will be restarted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from kajitori.kubelet.runtimes import interface

log = logging.getLogger(__name__)

Object = dict[str, Any]
Kind = Literal["liveness", "readiness", "startup"]
KINDS: tuple[Kind, ...] = ("startup", "liveness", "readiness")
Recorder = interface.RecordEvent  # (pod, type, reason, message, field_path=...)

MAX_OUTPUT = 10 * 1024  # upstream's maxProbeOutputLength: longer output is trimmed


class Result(enum.Enum):
    UNKNOWN = "Unknown"
    SUCCESS = "Success"
    FAILURE = "Failure"


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeSpec:
    """A container's probe with upstream's defaults (pkg/apis/core/v1/defaults.go)."""

    action: Object
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None

    @classmethod
    def from_probe(cls, probe: Object) -> ProbeSpec:
        grace = probe.get("terminationGracePeriodSeconds")
        return cls(
            action={k: probe[k] for k in ("exec", "httpGet", "tcpSocket", "grpc") if k in probe},
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
            termination_grace=None if grace is None else float(grace),
        )


def probes_of(container: Object) -> dict[Kind, ProbeSpec]:
    """The probes a container spec declares."""
    found: dict[Kind, ProbeSpec] = {}
    for kind in KINDS:
        probe = container.get(f"{kind}Probe")
        if probe:
            found[kind] = ProbeSpec.from_probe(probe)
    return found


def initial_result(kind: Kind) -> Result:
    """Before the first verdict: not ready, alive, not yet started (upstream's worker.go)."""
    return {
        "readiness": Result.FAILURE,
        "liveness": Result.SUCCESS,
        "startup": Result.UNKNOWN,
    }[kind]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What one probe outcome means: the cached result moved; the container must be killed."""

    changed: bool
    kill: bool


class Worker:
    """The state of one probe of one container run, without I/O or a clock of its own."""

    def __init__(self, kind: Kind, spec: ProbeSpec, started_at: float) -> None:
        self.kind = kind
        self.spec = spec
        self.started_at = started_at
        self.result = initial_result(kind)
        self.last_outcome: Result | None = None
        self.run = 0  # consecutive probes with ``last_outcome``
        self.on_hold = False  # killed the container; wait for a new run
        self.next_at = started_at + spec.initial_delay

    def due(self, now: float) -> bool:
        return not self.on_hold and now >= self.next_at

    def wait(self, now: float) -> float | None:
        """Seconds until the next probe; ``None`` while on hold."""
        return None if self.on_hold else max(self.next_at - now, 0.0)

    def skip(self, now: float) -> None:
        """Not probed this period (the container has not started yet)."""
        self.next_at = now + self.spec.period

    def record(self, outcome: Result, now: float) -> Verdict:
        """Count ``outcome`` (observed at ``now``) against the thresholds."""
        self.next_at = now + self.spec.period
        if outcome == self.last_outcome:
            self.run += 1
        else:
            self.last_outcome, self.run = outcome, 1
        threshold = (
            self.spec.failure_threshold
            if outcome == Result.FAILURE
            else self.spec.success_threshold
        )
        if self.run < threshold:
            return Verdict(changed=False, kill=False)
        changed = self.result != outcome
        self.result = outcome
        kill = outcome == Result.FAILURE and self.kind in ("liveness", "startup")
        if kill:
            self.on_hold, self.run = True, 0
        return Verdict(changed=changed, kill=kill)


def container_started(workers: dict[Kind, Worker], running: bool) -> bool:
    """Upstream's ``started``: running, and past its startup probe if it has one."""
    startup = workers.get("startup")
    return running and (startup is None or startup.result == Result.SUCCESS)


def container_ready(workers: dict[Kind, Worker], running: bool) -> bool:
    """Upstream's ``ready``: started, and its readiness probe (if any) succeeding."""
    readiness = workers.get("readiness")
    started = container_started(workers, running)
    return started and (readiness is None or readiness.result == Result.SUCCESS)


@dataclasses.dataclass(slots=True)
class _Probed:
    """One container run's workers and their tasks."""

    container_id: str
    workers: dict[Kind, Worker]
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)


class ProberManager:
    """Workers for every probed container of the kubelet's pods; see the module docstring."""

    def __init__(
        self,
        runtime: interface.ProbingRuntime,
        *,
        on_change: Callable[[str], None],
        record: Recorder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.record = record
        self.clock = clock
        self._pods: dict[str, dict[str, _Probed]] = {}  # uid → container name → run
        self._specs: dict[str, Object] = {}  # uid → pod, for events

    def update(self, pod: Object, status: interface.PodStatus) -> None:
        """Start workers for new runs of probed containers; stop those of runs that ended."""
        uid = status.uid
        self._specs[uid] = pod
        probed = self._pods.setdefault(uid, {})
        specs = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or ()}
        for container in status.containers:
            current = probed.get(container.name)
            running = container.state == "running" and container.started_at is not None
            if current is not None and (
                not running or current.container_id != container.container_id
            ):
                self._cancel(probed.pop(container.name))
                current = None
            probes = probes_of(specs.get(container.name) or {})
            if current is None and running and probes:
                assert container.started_at is not None
                workers = {k: Worker(k, s, container.started_at) for k, s in probes.items()}
                probed[container.name] = current = _Probed(container.container_id, workers)
                for kind in workers:
                    current.tasks.append(
                        asyncio.ensure_future(self._loop(uid, container.name, current, kind))
                    )

    def apply(self, status: interface.PodStatus) -> interface.PodStatus:
        """``status`` with each regular container's ``ready`` and ``started`` from the probes."""
        probed = self._pods.get(status.uid) or {}
        containers = []
        for container in status.containers:
            running = container.state == "running"
            current = probed.get(container.name)
            workers = (
                current.workers
                if current is not None and current.container_id == container.container_id
                else {}
            )
            containers.append(
                dataclasses.replace(
                    container,
                    ready=container_ready(workers, running),
                    started=container_started(workers, running),
                )
            )
        return dataclasses.replace(status, containers=tuple(containers))

    def remove_pod(self, uid: str) -> None:
        """Stop probing pod ``uid`` (terminating or gone)."""
        for current in (self._pods.pop(uid, None) or {}).values():
            self._cancel(current)
        self._specs.pop(uid, None)

    async def aclose(self) -> None:
        tasks = [t for pod in self._pods.values() for c in pod.values() for t in c.tasks]
        for uid in list(self._pods):
            self.remove_pod(uid)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @staticmethod
    def _cancel(current: _Probed) -> None:
        for task in current.tasks:
            task.cancel()

    async def _loop(self, uid: str, name: str, current: _Probed, kind: Kind) -> None:
        worker = current.workers[kind]
        try:
            while True:
                delay = worker.wait(self.clock())
                if delay is None:
                    return  # killed the container; its next run gets new workers
                await asyncio.sleep(delay)
                if kind == "startup" and worker.result == Result.SUCCESS:
                    return  # upstream stops the startup worker once started
                if kind != "startup" and not container_started(current.workers, True):
                    worker.skip(self.clock())
                    continue
                await self._probe_once(uid, name, current, worker)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s container %s: %s prober failed", uid, name, kind)

    async def _probe_once(self, uid: str, name: str, current: _Probed, worker: Worker) -> None:
        try:
            ok, output = await self.runtime.probe(
                uid, name, worker.spec.action, timeout=worker.spec.timeout
            )
        except LookupError:
            return  # the container is gone; the next sync cancels this worker
        outcome = Result.SUCCESS if ok else Result.FAILURE
        verdict = worker.record(outcome, self.clock())
        title = worker.kind.capitalize()
        if not ok:
            message = f"{title} probe failed: {output[:MAX_OUTPUT]}"
            self._event(uid, name, "Warning", "Unhealthy", message)
        if verdict.kill:
            self._event(
                uid,
                name,
                "Normal",
                "Killing",
                f"Container {name} failed {worker.kind} probe, will be restarted",
            )
            self.runtime.kill_container(
                uid, name, grace_period=self._grace(uid, worker), reason="Unhealthy"
            )
        if verdict.changed or verdict.kill:
            self.on_change(uid)

    def _grace(self, uid: str, worker: Worker) -> float | None:
        """The probe's own terminationGracePeriodSeconds, else the pod's (runtime default)."""
        if worker.spec.termination_grace is not None:
            return worker.spec.termination_grace
        grace = ((self._specs.get(uid) or {}).get("spec") or {}).get(
            "terminationGracePeriodSeconds"
        )
        return None if grace is None else float(grace)

    def _event(self, uid: str, container: str, kind: str, reason: str, message: str) -> None:
        pod = self._specs.get(uid)
        if self.record is not None and pod is not None:
            field_path = interface.container_field_path(pod, container)
            self.record(pod, kind, reason, message, field_path=field_path)
