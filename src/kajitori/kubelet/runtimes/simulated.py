"""The ``simulated`` runtime: containers that follow a timeline instead of running.

Like KWOK, nothing executes. A pod's containers are a pure function of
time from the moment the kubelet first synced the pod (``t0``):

* init containers complete at once (exit 0, reason Completed);
* each container waits in ``ContainerCreating`` for ``start_delay`` seconds,
  then runs;
* a container runs forever unless the pod carries
  ``kajitori.io/simulate-runtime-seconds`` and/or
  ``kajitori.io/simulate-exit-code`` (either one makes it exit; runtime
  defaults to 0 s, exit code to 0). It then terminates with that code,
  reason ``Completed`` for 0 and ``Error`` otherwise;
* ``restartPolicy`` decides what follows: ``Always`` (and ``OnFailure`` for a
  non-zero code) restarts it after a back-off of ``backoff_base * 2**n``
  seconds capped at ``backoff_cap`` (upstream: 10 s doubling to 300 s),
  shown as waiting ``CrashLoopBackOff`` with the run in ``lastState``, and
  the next run counts ``restartCount + 1``; otherwise it stays terminated;
* ``kill_pod`` terminates running containers at that moment with exit code
  0 (a process that honours SIGTERM);
* ephemeral containers (``kubectl debug``) added to a running pod are
  created at the first sync that sees them, wait ``start_delay`` like the
  others, then run until the pod is killed; they never exit by themselves
  and are never restarted.

Events are upstream kubelet's, through ``KubeletHooks.record_event`` (the
one path the real runtime and the prober use), as each step is first seen
by a sync: ``Pulling`` when the pod is first synced and its node does not
have the image yet (or the policy is ``Always``), then, once the container
runs, ``Pulled`` (``Successfully pulled image ... in <start delay>`` after a
pull, ``Container image ... already present on machine`` otherwise),
``Created`` and ``Started``; a restart repeats Pulled/Created/Started, a
back-off records ``BackOff`` once per exit, ``kill_pod`` records ``Killing``
for each running container. That is three events per container (four on
a node's first pull of its image), every pod's, as the real kubelet emits
them for the pods it runs (decision 0058; KWOK's default stages write none).
They go through the kubelet's per-node event recorders,
upstream's EventCorrelator (``client/events.py``), whose queue of 1,000
pending events per node is the only drop, as upstream's broadcaster's.
The count per pod is therefore a function of the pods alone, the same in
``kajitori up`` and in ``kajitori kubelet --nodes N``: an earlier shared
token bucket told only as many pods as wall-clock time allowed, so a slower
run wrote more Events per pod.

Because status is computed, not stored, thousands of pods cost one small
record each and no timers: the kubelet asks ``next_change`` and looks again
then.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, NamedTuple

from kajitori.kubelet.runtimes import interface

Object = dict[str, Any]

RUNTIME_SECONDS_ANNOTATION = "kajitori.io/simulate-runtime-seconds"
EXIT_CODE_ANNOTATION = "kajitori.io/simulate-exit-code"
# Upstream's container restart back-off (kubelet/pod_workers, backOffPeriod and MaxContainerBackOff).
DEFAULT_BACKOFF_BASE = 10.0
DEFAULT_BACKOFF_CAP = 300.0
# A guard against a timeline that never advances (zero runtime and zero back-off).
_MIN_CYCLE = 1e-3


@dataclasses.dataclass(frozen=True, slots=True)
class _Exit:
    runtime: float
    code: int


@dataclasses.dataclass(slots=True)
class _Pod:
    uid: str
    name: str
    namespace: str
    started: float
    restart_policy: str
    exit: _Exit | None
    init_containers: list[Object]
    containers: list[Object]
    killed_at: float | None = None
    node: str = ""
    # Ephemeral containers with the time the runtime first saw each.
    ephemeral: list[tuple[Object, float]] = dataclasses.field(default_factory=list)
    # What the events told so far, per container (only with hooks: no cost otherwise).
    announced: dict[str, _Announced] | None = None
    # Containers restarted by an in-place resize (resizePolicy RestartContainer):
    # name → (when their new run starts, its run number, how the previous run ended).
    resize_restarts: dict[str, tuple[float, int, interface.Termination]] = dataclasses.field(
        default_factory=dict
    )


class _Announced(NamedTuple):
    """A container's events so far: its last run announced (-1: none), the last run whose
    exit's back-off was announced (-1: none), and when its pull began (``None``: no pull)."""

    run: int = -1
    backoff: int = -1
    pull_started: float | None = None


def normalize_image(image: str) -> str:
    """The image as a runtime reports it: registry, repository and tag spelled out."""
    name, tag = image, ""
    if "@" not in image and ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    if "@" not in image and not tag:
        tag = "latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}" if tag else name


def image_id(image: str) -> str:
    """A stable, digest-shaped image ID (``<repository>@sha256:<hex>``)."""
    normalized = normalize_image(image)
    repository = normalized.rsplit(":", 1)[0] if "@" not in normalized else normalized
    digest = hashlib.sha256(normalized.encode()).hexdigest()
    return f"{repository.split('@')[0]}@sha256:{digest}"


def image_size(image: str) -> int:
    """A stable, plausible size for a simulated image (1 to 65 MiB), for its Pulled event."""
    digest = hashlib.sha256(normalize_image(image).encode()).digest()
    return (1 << 20) + int.from_bytes(digest[:4], "big") % (64 << 20)


def _exit_of(pod: Object) -> _Exit | None:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    runtime = annotations.get(RUNTIME_SECONDS_ANNOTATION)
    code = annotations.get(EXIT_CODE_ANNOTATION)
    if runtime is None and code is None:
        return None
    try:
        return _Exit(max(float(runtime or 0), 0.0), int(code or 0))
    except ValueError:
        return None  # a malformed annotation leaves the container running, as KWOK ignores it


def restarts(policy: str, exit_code: int) -> bool:
    """Whether ``restartPolicy`` restarts a container that exited with ``exit_code``."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class SimulatedRuntime:
    """Pods as timelines; see the module docstring for the rules."""

    type = "simulated"

    def __init__(
        self,
        *,
        start_delay: float = 0.0,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
    ) -> None:
        self.start_delay = start_delay
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._pods: dict[str, _Pod] = {}
        self.hooks: interface.KubeletHooks | None = None
        self._node_images: set[tuple[str, str]] = set()  # (node, image) pulled, for Pulled events

    def set_kubelet_hooks(self, hooks: interface.KubeletHooks) -> None:
        self.hooks = hooks

    def sync_pod(self, pod: Object, *, now: float) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid") or ""
        known = self._pods.get(uid)
        if known is not None:
            if known.killed_at is None:
                self._add_ephemeral(known, pod, now)
            if known.announced is not None and known.killed_at is None:
                self._announce(known, now)
            return
        spec = pod.get("spec") or {}
        record = self._pods[uid] = _Pod(
            uid=uid,
            name=meta.get("name") or "",
            namespace=meta.get("namespace") or "",
            started=now,
            restart_policy=spec.get("restartPolicy") or "Always",
            exit=_exit_of(pod),
            init_containers=list(spec.get("initContainers") or ()),
            containers=list(spec.get("containers") or ()),
            node=str(spec.get("nodeName") or ""),
        )
        if self.hooks is None:
            return
        record.announced = {}
        for container in record.init_containers:  # they ran at once
            self._announce_run(record, container, now, self._pull(record, container, now))
        self._announce(record, now)

    def _add_ephemeral(self, record: _Pod, pod: Object, now: float) -> None:
        """Take on the ephemeral containers added to the pod since the last sync."""
        spec = pod.get("spec") or {}
        known = {container.get("name") for container, _ in record.ephemeral}
        for container in spec.get("ephemeralContainers") or ():
            if isinstance(container, dict) and container.get("name") not in known:
                record.ephemeral.append((container, now))

    def kill_pod(self, uid: str, *, now: float, grace_period: float | None = None) -> None:
        record = self._pods.get(uid)
        if record is None or record.killed_at is not None:
            return
        if record.announced is not None:
            running = [
                c for c in record.containers if self._timeline(record, c, now)[0].state == "running"
            ]
            running += [
                c
                for c, added in record.ephemeral
                if self._ephemeral_timeline(record, c, added, now)[0].state == "running"
            ]
            for container in running:
                name = container.get("name") or ""
                self._event(record, name, "Normal", "Killing", f"Stopping container {name}")
        record.killed_at = now

    async def resize_container(
        self, uid: str, name: str, resources: Object, *, restart: bool, now: float
    ) -> str | None:
        """Apply ``resources`` to a running container: at once, or by restarting it.

        A simulated container has no cgroup, so a resize in place is done as
        soon as it is asked for; with ``restart`` (its resizePolicy says
        RestartContainer) the current run ends now and the next starts at
        once, counted as a restart. ``None``: done (kubelet/resize.py).
        """
        record = self._pods.get(uid)
        if record is None or not restart:
            return None
        container = next((c for c in record.containers if c.get("name") == name), None)
        if container is None:
            return None
        current, _ = self._timeline(record, container, now)
        if current.state != "running":
            return None
        assert current.started_at is not None
        ended = interface.Termination(0, "Completed", current.started_at, now, current.container_id)
        record.resize_restarts[name] = (now, current.restart_count + 1, ended)
        if record.announced is not None:
            message = f"Container {name} resize requires restart"
            self._event(record, name, "Normal", "Killing", message)
        return None

    def remove_pod(self, uid: str) -> None:
        self._pods.pop(uid, None)

    def get_pods(self) -> list[str]:
        return list(self._pods)

    def get_pod_status(self, uid: str, *, now: float) -> interface.PodStatus | None:
        record = self._pods.get(uid)
        if record is None:
            return None
        at = now if record.killed_at is None else min(now, record.killed_at)
        inits = tuple(self._init_status(record, c) for c in record.init_containers)
        timelines = [self._timeline(record, c, at) for c in record.containers]
        statuses = tuple(status for status, _ in timelines)
        debug = [self._ephemeral_timeline(record, c, added, at) for c, added in record.ephemeral]
        ephemeral = tuple(status for status, _ in debug)
        if record.killed_at is not None and now >= record.killed_at:
            statuses = tuple(self._killed(status, record.killed_at) for status in statuses)
            ephemeral = tuple(self._killed(status, record.killed_at) for status in ephemeral)
            return interface.PodStatus(
                uid, False, inits, statuses, None, ephemeral_containers=ephemeral
            )
        changes = [change for _, change in (*timelines, *debug) if change is not None]
        if record.killed_at is not None:
            changes.append(record.killed_at)
        return interface.PodStatus(
            uid, True, inits, statuses, min(changes, default=None), ephemeral_containers=ephemeral
        )

    # ----- events ------------------------------------------------------------

    def _event(
        self, record: _Pod, container: str, event_type: str, reason: str, message: str
    ) -> None:
        """An event about ``record``'s ``container`` (all of this runtime's are a container's)."""
        assert self.hooks is not None
        meta = {"name": record.name, "namespace": record.namespace, "uid": record.uid}
        spec = {
            "nodeName": record.node,
            "initContainers": record.init_containers,
            "containers": record.containers,
            "ephemeralContainers": [container for container, _ in record.ephemeral],
        }
        pod = {"metadata": meta, "spec": spec}
        field_path = interface.container_field_path(pod, container)
        self.hooks.record_event(pod, event_type, reason, message, field_path=field_path)

    def _announce(self, record: _Pod, now: float) -> None:
        """Record the events of every step taken since the last sync (see the module docstring)."""
        assert record.announced is not None
        for container in record.containers:
            name = container.get("name") or ""
            status, _ = self._timeline(record, container, now)
            seen = record.announced.get(name)
            if seen is None:  # first sync: the pull (if any) takes the start delay
                seen = record.announced[name] = _Announced(
                    -1, -1, self._pull(record, container, now)
                )
            run = status.restart_count
            if status.state in ("running", "terminated") and run > seen.run:
                began = seen.pull_started
                if seen.run >= 0:  # a restart: pulled again (at once) only under Always
                    began = self._pull(record, container, status.started_at or now)
                record.announced[name] = seen._replace(run=run, pull_started=None)
                self._announce_run(record, container, status.started_at or now, began)
            elif status.reason == "CrashLoopBackOff" and run > seen.backoff:
                record.announced[name] = seen._replace(backoff=run)
                message = (
                    f"Back-off restarting failed container {name} in pod "
                    f"{record.name}_{record.namespace}({record.uid})"
                )
                self._event(record, name, "Warning", "BackOff", message)
        self._announce_ephemeral(record, now)

    def _announce_ephemeral(self, record: _Pod, now: float) -> None:
        """Pulling when first seen, then Pulled/Created/Started once it runs (it runs once)."""
        assert record.announced is not None
        for container, added in record.ephemeral:
            name = container.get("name") or ""
            status, _ = self._ephemeral_timeline(record, container, added, now)
            seen = record.announced.get(name)
            if seen is None:
                seen = record.announced[name] = _Announced(
                    -1, -1, self._pull(record, container, now)
                )
            if status.state == "running" and seen.run < 0:
                record.announced[name] = seen._replace(run=0, pull_started=None)
                self._announce_run(record, container, status.started_at or now, seen.pull_started)

    def _pull(self, record: _Pod, container: Object, now: float) -> float | None:
        """``Pulling`` when the node lacks the image or the policy is Always: when it began."""
        image = container.get("image") or ""
        policy = container.get("imagePullPolicy") or "IfNotPresent"
        key = (record.node, normalize_image(image))
        if policy == "Never" or (policy != "Always" and key in self._node_images):
            return None
        self._node_images.add(key)
        name = container.get("name") or ""
        self._event(record, name, "Normal", "Pulling", f'Pulling image "{image}"')
        return now

    def _announce_run(
        self, record: _Pod, container: Object, started: float, began: float | None
    ) -> None:
        """Pulled (after a pull that ``began``, or already present), Created and Started."""
        name = container.get("name") or ""
        image = container.get("image") or ""
        if began is None:
            message = f'Container image "{image}" already present on machine'
            self._event(record, name, "Normal", "Pulled", message)
        else:
            from kajitori.kubelet.images.puller import go_duration  # only once a pull is shown

            took = go_duration(max(started - began, 0.0))
            self._event(
                record,
                name,
                "Normal",
                "Pulled",
                f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                f"Image size: {image_size(image)} bytes.",
            )
        self._event(record, name, "Normal", "Created", f"Created container: {name}")
        self._event(record, name, "Normal", "Started", f"Started container {name}")

    # ----- status -------------------------------------------------------------

    def _container_id(self, record: _Pod, name: str, run: int) -> str:
        digest = hashlib.sha256(f"{record.uid}/{name}/{run}".encode()).hexdigest()
        return f"simulated://{digest}"

    def _init_status(self, record: _Pod, container: Object) -> interface.ContainerStatus:
        name = container.get("name") or ""
        cid = self._container_id(record, name, 0)
        done = interface.Termination(0, "Completed", record.started, record.started, cid)
        return self._status(container, cid, "terminated", termination=done)

    def _status(
        self, container: Object, cid: str, state: interface.State, **fields: Any
    ) -> interface.ContainerStatus:
        image = container.get("image") or ""
        return interface.ContainerStatus(
            name=container.get("name") or "",
            image=normalize_image(image),
            image_id="" if fields.get("reason") == "ContainerCreating" else image_id(image),
            container_id=cid if state != "waiting" else "",
            state=state,
            **fields,
        )

    def _timeline(
        self, record: _Pod, container: Object, now: float
    ) -> tuple[interface.ContainerStatus, float | None]:
        """The container at ``now`` and when it next changes (``None``: never by itself)."""
        name = container.get("name") or ""
        start = record.started + self.start_delay
        if now < start:
            return self._status(container, "", "waiting", reason="ContainerCreating"), start
        run, last = 0, None
        restarted = record.resize_restarts.get(name)
        if restarted is not None and now >= restarted[0]:
            start, run, last = restarted  # the timeline begins again at the restart
        while True:
            cid = self._container_id(record, name, run)
            end = None if record.exit is None else start + record.exit.runtime
            if end is None or now < end:
                running = self._status(
                    container,
                    cid,
                    "running",
                    started_at=start,
                    last_termination=last,
                    restart_count=run,
                )
                return running, end
            code = record.exit.code  # type: ignore[union-attr]
            done = interface.Termination(
                code, "Completed" if code == 0 else "Error", start, end, cid
            )
            if not restarts(record.restart_policy, code):
                fields = {"termination": done, "last_termination": last, "restart_count": run}
                return self._status(container, cid, "terminated", **fields), None
            backoff = max(min(self.backoff_base * 2**run, self.backoff_cap), _MIN_CYCLE)
            resume = end + backoff
            if now < resume:
                message = (
                    f"back-off {backoff:g}s restarting failed container={name} "
                    f"pod={record.name}_{record.namespace}({record.uid})"
                )
                waiting = self._status(
                    container,
                    cid,
                    "waiting",
                    reason="CrashLoopBackOff",
                    message=message,
                    last_termination=done,
                    restart_count=run,
                )
                return waiting, resume
            start, run, last = resume, run + 1, done

    def _ephemeral_timeline(
        self, record: _Pod, container: Object, added: float, now: float
    ) -> tuple[interface.ContainerStatus, float | None]:
        """An ephemeral container: created when first seen, then running (never restarted)."""
        start = added + self.start_delay
        if now < start:
            return self._status(container, "", "waiting", reason="ContainerCreating"), start
        cid = self._container_id(record, container.get("name") or "", 0)
        return self._status(container, cid, "running", started_at=start), None

    def _killed(self, status: interface.ContainerStatus, at: float) -> interface.ContainerStatus:
        if status.state != "running":
            return status
        assert status.started_at is not None
        done = interface.Termination(0, "Completed", status.started_at, at, status.container_id)
        return dataclasses.replace(status, state="terminated", termination=done)
