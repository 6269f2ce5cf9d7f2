"""In-place resize of a runc container (upstream's doPodResizeAction, for runc).

Owns how the oci runtime applies a container's new resources
(kubelet/resize.py decides when): the container's kept spec takes them,
so that its next run starts with them; then either

* in place: ``runc update --resources <file>`` with the ``linux.resources``
  ``spec.resources`` builds (cpu shares, CFS quota and period, memory
  limit); before a memory limit goes down, the container's usage is read
  (``runc events --stats``) and a limit below it is refused with
  upstream's message, as the kubelet's best-effort guard against an OOM
  kill (since 1.34);
* or, when its resizePolicy says RestartContainer, by stopping the run
  (``Killing``: "Container <name> resize requires restart"); as upstream,
  the runtime starts the next one at once, without back-off and whatever
  the pod's restartPolicy (``Container.resize_restart``).

A rootless runtime has no cgroups (decision 0033): the spec takes the
resources and nothing more is done.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from typing import Any

from kajitori.kubelet.runtimes.oci import runc as runc_cli
from kajitori.kubelet.runtimes.oci import spec, state

Object = dict[str, Any]


def limits(resources: Object) -> Object:
    """``linux.resources`` for a ResourceRequirements."""
    built: Object = spec.resources({"resources": resources})
    return built


async def memory_usage(runc: runc_cli.Runc, container_id: str) -> int | None:
    """The container's memory usage in bytes, from ``runc events --stats``; None if unknown."""
    code, out, _ = await runc.run("events", "--stats", container_id, timeout=10.0)
    if code != 0:
        return None
    try:
        usage = json.loads(out)["data"]["memory"]["usage"]["usage"]
    except (ValueError, KeyError, TypeError):
        return None
    return int(usage) if isinstance(usage, int) else None


async def update_in_place(
    runc: runc_cli.Runc, container: state.Container, run: state.Run, resources: Object
) -> str | None:
    """``runc update`` of the running ``run``; None when done, else the error to report."""
    wanted = limits(resources)
    current = limits(container.spec.get("resources") or {})
    new_limit = (wanted.get("memory") or {}).get("limit")
    old_limit = (current.get("memory") or {}).get("limit")
    if new_limit is not None and (old_limit is None or new_limit < old_limit):
        usage = await memory_usage(runc, run.container_id)
        if usage is not None and usage >= new_limit:
            return (
                f'attempting to set container "{container.name}" memory limit ({new_limit}) '
                f"below current usage ({usage})"
            )
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(wanted, file)
        file.flush()
        code, _, err = await runc.run("update", "--resources", file.name, run.container_id)
    if code != 0:
        return err.decode(errors="replace").strip() or f"runc update exited with {code}"
    return None


async def apply(
    runc: runc_cli.Runc,
    runs: Any,
    event: Callable[..., None],
    record: state.Pod,
    container: state.Container,
    resources: Object,
    *,
    restart: bool,
    cgroups: bool,
    grace_period: float,
    now: float,
) -> str | None:
    """Give ``container`` ``resources``: in place, or by a restart (see the module docstring).

    ``runs`` is the runtime's ``containers.Runs`` (it stops a run), ``event``
    its event recorder; ``cgroups`` False for a rootless runtime. None when
    done, else the error to report.
    """
    run = container.last
    if run is None or run.exit is not None or run.started_at is None:
        container.spec["resources"] = resources  # not running: its next run takes them
        return None
    if restart:
        container.spec["resources"] = resources
        message = f"Container {container.name} resize requires restart"
        event(record, "Normal", "Killing", message, container=container.name)
        container.resize_restart = run.number  # before the exit: the worker may see it at once
        await runs.stop(record, container, now + grace_period, announce=False)
        return None
    error = await update_in_place(runc, container, run, resources) if cgroups else None
    if error is None:
        container.spec["resources"] = resources
    return error
