"""runc's command line, asynchronously, with its own state root.

Every call passes ``--root`` so the runtime never sees or touches
containers other tools made under /run/runc. ``create`` goes through the
shim (shim.py), which must be the container's parent; the other verbs are
short-lived ``runc`` processes (~10–25 ms each on this machine).

Verbs used (runc 1.1): ``start``, ``kill ID SIGNAL``, ``delete --force``,
``state`` (JSON: ``status`` created|running|stopped, ``pid``), ``list
--format json`` and ``exec`` (the process inherits the container's env,
user and cwd from its config.json unless told otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

SHIM = Path(__file__).with_name("shim.py")
PINNS = Path(__file__).with_name("pinns.py")
CREATE_TIMEOUT = 30.0
KILL_WAIT = 5.0
# runc start returns once runc init is released, before it exec'd the user process.
INIT_COMM = "runc:[2:INIT]"


class RuncError(Exception):
    """A runc call failed; ``str()`` is runc's message."""


@dataclasses.dataclass(frozen=True, slots=True)
class Created:
    """A container created by its shim: the shim's pid and the container's init pid."""

    shim_pid: int
    init_pid: int


class Runc:
    """One runc state root."""

    def __init__(self, root: Path, *, binary: str = "runc") -> None:
        self.root = root
        self.binary = binary

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    async def run(self, *args: str, timeout: float = 30.0) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            *self._argv(*args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            # runc stuck in the kernel (a cgroup being frozen under OOM) may not even die at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), KILL_WAIT)
            raise
        assert process.returncode is not None
        return process.returncode, out, err

    async def _check(self, *args: str) -> bytes:
        code, out, err = await self.run(*args)
        if code != 0:
            raise RuncError(err.decode(errors="replace").strip() or f"runc {args[0]} failed")
        return out

    async def create(self, container_id: str, *, bundle: Path, log: Path, cgroup: str) -> Created:
        """Start the shim, which runs ``runc create``; ``RuncError`` with runc's message."""
        self.root.mkdir(parents=True, exist_ok=True)
        shim = await asyncio.create_subprocess_exec(
            sys.executable,
            "-S",
            str(SHIM),
            # shim.py's positional arguments: ID BUNDLE LOG RUNC_ROOT RUNC CGROUP
            container_id,
            str(bundle),
            str(log),
            str(self.root),
            self.binary,
            cgroup,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert shim.stdout is not None
        reading = asyncio.ensure_future(shim.stdout.readline())
        try:
            line = (await asyncio.shield(reading)).decode(errors="replace").strip()
        except asyncio.CancelledError:
            # Let the shim finish creating, so whoever cleans up finds the container (and its
            # shim.pid) instead of racing a runc create still under way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reading, CREATE_TIMEOUT)
                await shim.wait()
            raise
        await shim.wait()  # the shim's first process exits at once; the shim itself lives on
        verb, _, rest = line.partition(" ")
        if verb != "created":
            raise RuncError(rest or "the shim exited before creating the container")
        shim_pid = int((bundle / "shim.pid").read_text())
        return Created(shim_pid=shim_pid, init_pid=int(rest))

    async def start(self, container_id: str, *, init_pid: int, timeout: float = 5.0) -> None:
        """``runc start``, then wait until init has exec'd the container's process.

        A signal sent in between would hit runc's Go init as PID 1, which dies
        with exit code 2 instead of the process's own handling of it.
        """
        await self._check("start", container_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                comm = Path(f"/proc/{init_pid}/comm").read_text().strip()
            except OSError:
                return  # it has already exited
            if comm != INIT_COMM:
                return
            await asyncio.sleep(0.002)

    async def kill(self, container_id: str, signal: str) -> bool:
        """Signal the container's init; ``False`` when it is not running (any more)."""
        code, _, _ = await self.run("kill", container_id, signal)
        return code == 0

    async def delete(self, container_id: str) -> None:
        """Forget the container (killing it if needed); a no-op for an unknown one."""
        await self.run("delete", "--force", container_id)

    async def state(self, container_id: str) -> dict[str, Any] | None:
        code, out, _ = await self.run("state", container_id)
        return json.loads(out) if code == 0 else None

    async def list(self) -> list[dict[str, Any]]:
        code, out, _ = await self.run("list", "--format", "json")
        return (json.loads(out or b"null") or []) if code == 0 else []

    async def exec(
        self, container_id: str, argv: list[str], *, timeout: float = 60.0
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` in the container; ``(exit code, stdout, stderr)``."""
        return await self.run("exec", container_id, *argv, timeout=timeout)


async def pin_namespaces(directory: Path, *, hostname: str) -> None:
    """Make the pod's network, IPC and UTS namespaces under ``directory`` (see pinns.py)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-S",
        str(PINNS),
        str(directory),
        hostname,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    communicating = asyncio.ensure_future(process.communicate())
    try:
        _, err = await asyncio.shield(communicating)
    except asyncio.CancelledError:
        # Its bind mounts must exist before whoever cleans up looks for them.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(communicating, CREATE_TIMEOUT)
        raise
    if process.returncode != 0:
        raise RuncError(err.decode(errors="replace").strip() or "pinning namespaces failed")
