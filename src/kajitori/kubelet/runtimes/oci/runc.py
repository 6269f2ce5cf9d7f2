"""runc's command line, asynchronously, with its own state root.

Every call passes ``--root`` so the runtime never sees or touches
containers other tools made under /run/runc. ``create`` goes through the
shim (shim.py), which must be the container's parent, forked by the root's
shim factory (started here on first use); the other verbs are
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
import hashlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet.runtimes.oci import pinns

SHIM = Path(__file__).with_name("shim.py")
PINNS = Path(__file__).with_name("pinns.py")
CREATE_TIMEOUT = 30.0
KILL_WAIT = 5.0
# runc start returns once runc init is released, before it exec'd the user process.
INIT_COMM = "runc:[2:INIT]"


def runtime_version(binary: str = "runc") -> str:
    """``runc://<version>`` for a Node's containerRuntimeVersion (``runc version 1.1.5+ds1``)."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return "runc://unknown"
    first = out.splitlines()[0] if out else ""
    return "runc://" + (first.split()[-1] if first.startswith("runc version") else "unknown")


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
        """Have a shim run ``runc create``; ``RuncError`` with runc's message.

        The shim is forked by the root's shim factory (shim.py, ``--factory``),
        started on first use; a shim of its own (``python -S shim.py``) only
        when no factory can be reached.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # shim.py's positional arguments: ID BUNDLE LOG RUNC_ROOT RUNC CGROUP (absolute: the
        # factory's working directory is /)
        paths = (str(path.absolute()) for path in (bundle, log, self.root))
        args = [container_id, *paths, self._resolved(), cgroup]
        creating = asyncio.ensure_future(self._shim_report(args))
        try:
            line = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Let the shim finish creating, so whoever cleans up finds the container (and its
            # shim.pid) instead of racing a runc create still under way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(creating, CREATE_TIMEOUT)
            raise
        verb, _, rest = line.partition(" ")
        if verb != "created":
            raise RuncError(rest or "the shim exited before creating the container")
        shim_pid = int((bundle / "shim.pid").read_text())
        return Created(shim_pid=shim_pid, init_pid=int(rest))

    async def _shim_report(self, args: list[str]) -> str:
        """Start a shim and return its report line (``created PID`` or ``error MESSAGE``)."""
        connection = await self._factory_shim(args)
        if connection is not None:
            reader, writer = connection
            try:
                return (await reader.readline()).decode(errors="replace").strip()
            finally:
                writer.close()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-S",
            str(SHIM),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        line = await process.stdout.readline()
        await process.wait()  # the shim's first process exits at once; the shim lives on
        return line.decode(errors="replace").strip()

    def _resolved(self) -> str:
        """The runc binary's path: a factory's PATH is the one of the kubelet that started it."""
        return shutil.which(self.binary) or self.binary

    def _factory_name(self) -> str:
        """The abstract socket of this root's factory, for this shim.py (a changed one is new)."""
        stat = SHIM.stat()
        key = (
            f"{sys.executable}\0{SHIM}\0{stat.st_mtime_ns}\0{stat.st_size}\0{self.root.absolute()}"
        )
        return "kajitori-shim-factory-" + hashlib.sha256(key.encode()).hexdigest()[:24]

    async def _factory_shim(
        self, args: list[str]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Ask the factory for a shim: the connection it reports on, or None.

        None only when no shim was forked (no "ok" came back), so the caller
        may start one of its own; a factory that was just leaving (idle) is
        started again once.
        """
        name = self._factory_name()
        for attempt in range(2):
            try:
                reader, writer = await asyncio.open_unix_connection("\0" + name)
            except OSError:
                if attempt or not await self._start_factory(name):
                    return None
                continue
            try:
                writer.write("\0".join(args).encode() + b"\n")
                await writer.drain()
                ok = await asyncio.wait_for(reader.readline(), CREATE_TIMEOUT)
            except OSError:
                ok = b""
            except TimeoutError:
                # It may still fork the shim: starting another could create the container twice.
                writer.close()
                raise RuncError("the shim factory did not answer") from None
            if ok == b"ok\n":
                return reader, writer
            writer.close()
            if attempt or not await self._start_factory(name):
                return None
        return None

    async def _start_factory(self, name: str) -> bool:
        """Start the factory (it daemonizes); whether one is now listening."""
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-S",
                str(SHIM),
                "--factory",
                name,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(process.communicate(), CREATE_TIMEOUT)
        except (OSError, TimeoutError):
            return False
        return out.strip() in (b"ready", b"exists")

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

    # ``argv`` is a Sequence, not a list: in this class body ``list`` names the method above.
    async def exec(
        self, container_id: str, argv: Sequence[str], *, timeout: float = 60.0
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` in the container; ``(exit code, stdout, stderr)``."""
        return await self.run("exec", container_id, *argv, timeout=timeout)


async def pin_namespaces(directory: Path, *, hostname: str) -> None:
    """Make the pod's network, IPC and UTS namespaces under ``directory`` (see pinns.py).

    ``pinns.pin`` runs in a new thread that ends right after, so no other
    work ever runs in the pod's namespaces (an executor's threads are reused).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: Exception | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            message = error.strerror if isinstance(error, OSError) else None
            done.set_exception(RuncError(message or str(error) or "pinning namespaces failed"))

    def work() -> None:
        error = None
        try:
            pinns.pin(str(directory), hostname)
        except Exception as exc:  # whatever it is, the waiting pod worker must hear of it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name="kajitori-pinns", daemon=True).start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        # Its bind mounts must exist before whoever cleans up looks for them.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(done, CREATE_TIMEOUT)
        raise
