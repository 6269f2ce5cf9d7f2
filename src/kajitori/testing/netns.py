"""Network namespaces for tests: created under unique names, always removed, counted.

The networking tests (CNI, proxy, DNS) only send traffic to loopback and into
namespaces made here (decision 0027). ``Namespaces`` is an async context
manager: ``add()`` makes ``ip netns add <prefix>-<name>`` with IPv6 off and
loopback up, ``spawn()`` starts a process inside one, ``veth()`` wires two
together; leaving the block kills what was spawned and deletes every
namespace (which also destroys the veths and bridges inside them), even when
the test failed. ``host_counts()`` lets a test prove nothing leaked onto the
host. Requires root and iproute2; ``skip_reason()`` says why not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
from types import TracebackType

NETNS_DIR = "/run/netns"


def skip_reason(*binaries: str) -> str | None:
    """Why a namespace test cannot run here (not root, or a missing binary), else None."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces"
    missing = [name for name in ("ip", *binaries) if shutil.which(name) is None]
    if missing:
        return f"missing binaries: {', '.join(missing)} (scripts/install-test-deps installs them)"
    return None


def host_counts() -> dict[str, int]:
    """How many network namespaces, veths and bridges the host has."""
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    bridges = subprocess.run(
        ["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True, check=True
    ).stdout
    return {
        "netns": len(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else 0,
        "veth": sum(1 for line in links.splitlines() if "@" in line.split(":")[1]),
        "bridge": len(bridges.splitlines()),
    }


class CommandError(Exception):
    pass


async def run(*argv: str, check: bool = True, timeout: float = 10.0) -> str:
    """Run a command; its stdout (stderr folded in). Raises ``CommandError`` on failure."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CommandError(f"{' '.join(argv)}: timed out after {timeout:g}s") from None
    text = output.decode(errors="replace")
    if check and process.returncode != 0:
        raise CommandError(f"{' '.join(argv)}: exit {process.returncode}: {text.strip()}")
    return text


class Namespaces:
    """Test-owned network namespaces; all deleted on exit."""

    def __init__(self) -> None:
        self.prefix = f"kjt{secrets.token_hex(3)}"
        self.names: list[str] = []
        self.processes: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Namespaces:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def add(self, name: str) -> str:
        """Create ``<prefix>-<name>``; returns its full name (its file is ``path(name)``)."""
        full = f"{self.prefix}-{name}"
        await run("ip", "netns", "add", full)
        self.names.append(full)
        await self.exec(full, "ip", "link", "set", "lo", "up")
        await self.exec(full, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        return full

    @staticmethod
    def path(full_name: str) -> str:
        return f"{NETNS_DIR}/{full_name}"

    async def exec(self, netns: str, *argv: str, check: bool = True, timeout: float = 10.0) -> str:
        return await run("ip", "netns", "exec", netns, *argv, check=check, timeout=timeout)

    async def spawn(self, netns: str, *argv: str) -> asyncio.subprocess.Process:
        """Start a long-running process inside ``netns``; killed on exit."""
        process = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            netns,
            *argv,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    async def veth(self, a: str, a_if: str, a_cidr: str, b: str, b_if: str, b_cidr: str) -> None:
        """A veth pair between namespaces ``a`` and ``b``, addressed and up."""
        await run("ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", b_if, "netns", b)
        for netns, ifname, cidr in ((a, a_if, a_cidr), (b, b_if, b_cidr)):
            await self.exec(netns, "ip", "addr", "add", cidr, "dev", ifname)
            await self.exec(netns, "ip", "link", "set", ifname, "up")

    async def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self.processes.clear()
        for name in reversed(self.names):
            await run("ip", "netns", "del", name, check=False)
        self.names.clear()
