"""The oci runtime's side of probes: run one probe action against a container's run.

kubelet/prober.py decides when to probe and what a result means; this
module only executes an action, the way upstream's pkg/probe does:

* ``exec``: ``runc exec`` of the command in the container (its env, user
  and cwd), success on exit 0, the output being stdout and stderr;
* ``httpGet``, ``tcpSocket``, ``grpc``: netprobe.py as a child process that
  joins the pod's pinned network namespace (setns) before it connects, so
  the kubelet's own process never changes namespace and the image needs no
  tools. The host is the probe's ``host``, else the pod's IP as upstream's,
  else (a pod without a network yet, or in tests) ``127.0.0.1`` in the pod's
  namespace (decision 0030). A named port is looked up in the container's
  ``ports``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from kajitori.kubelet.runtimes.oci import runc

Object = dict[str, Any]

NETPROBE = Path(__file__).with_name("netprobe.py")
SPAWN_ALLOWANCE = 2.0  # seconds on top of the probe's timeout for the helper to start


async def run_exec(
    runner: runc.Runc, container_id: str, action: Object, timeout: float
) -> tuple[bool, str]:
    argv = [str(a) for a in (action.get("command") or ())]
    try:
        code, out, err = await runner.exec(container_id, argv, timeout=timeout)
    except TimeoutError:
        return False, f"command {shlex.join(argv)!r} timed out"
    return code == 0, (out + err).decode(errors="replace")


def resolve_port(port: Any, container: Object) -> int:
    """A number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or ():
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of the container")


def network_argv(
    netns: Path, action: Object, container: Object, timeout: float, pod_ip: str = ""
) -> list[str]:
    """netprobe.py's command line for an httpGet, tcpSocket or grpc action."""
    kind = next(k for k in ("httpGet", "tcpSocket", "grpc") if k in action)
    details = action[kind] or {}
    host = str(details.get("host") or pod_ip or "127.0.0.1")
    port = resolve_port(details.get("port"), container)
    options = {k: details[k] for k in ("path", "scheme", "httpHeaders", "service") if k in details}
    # grpcio lives in site-packages; the others need only the standard library and start faster.
    flags = [] if kind == "grpc" else ["-S"]
    return [
        sys.executable,
        *flags,
        str(NETPROBE),
        str(netns),
        kind,
        host,
        str(port),
        f"{timeout:g}",
        json.dumps(options),
    ]


async def run_network(
    netns: Path, action: Object, container: Object, timeout: float, pod_ip: str = ""
) -> tuple[bool, str]:
    try:
        argv = network_argv(netns, action, container, timeout, pod_ip)
    except ValueError as exc:
        return False, str(exc)
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout + SPAWN_ALLOWANCE)
    except TimeoutError:
        process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 1.0)
        return False, "probe timed out"
    if process.returncode not in (0, 1):
        return False, err.decode(errors="replace").strip() or "probe helper failed"
    return process.returncode == 0, out.decode(errors="replace")


async def run(
    runner: runc.Runc,
    container_id: str,
    netns: Path,
    action: Object,
    container: Object,
    timeout: float,
    pod_ip: str = "",
) -> tuple[bool, str]:
    """Execute ``action`` (a probe's handler) against the container's run."""
    if "exec" in action:
        return await run_exec(runner, container_id, action["exec"] or {}, timeout)
    if any(k in action for k in ("httpGet", "tcpSocket", "grpc")):
        return await run_network(netns, action, container, timeout, pod_ip)
    return False, "probe has no handler"
