"""Running Debian's ``nft`` for the proxy: apply a ruleset, read it back, remove our table.

Only ever names our own table (``ip kajitori`` by default): a ruleset
script from ``rules.build_ruleset`` starts with ``add table`` + ``delete
table``, so ``nft -f`` swaps the whole table in one kernel transaction —
packets see either the old rules or the new ones, and chains of Services
that went away vanish with the old table. (Flushing the table instead would
keep its now-empty chains and maps around.) ``netns`` runs ``nft`` inside a
named network namespace (``ip netns exec``), for tests and for a node that
lives in a namespace of its own.
"""

from __future__ import annotations

import asyncio
import shutil

from kajitori.proxy import rules


class NftError(Exception):
    pass


def available() -> bool:
    """Whether the ``nft`` binary is installed (Debian package ``nftables``)."""
    return shutil.which("nft") is not None


class Nftables:
    """One table, driven through ``nft``."""

    def __init__(self, *, table: str = rules.TABLE, netns: str | None = None) -> None:
        self.table = table
        self.netns = netns

    async def apply(self, script: str) -> None:
        """Run ``script`` as one transaction (``nft -f -``); raises ``NftError`` on rejection."""
        code, output = await self._nft(["-f", "-"], script)
        if code != 0:
            raise NftError(f"nft -f failed: {output}")

    async def show(self) -> str:
        """``nft list table``'s text, or "" when the table does not exist."""
        code, output = await self._nft(["list", "table", "ip", self.table])
        return output if code == 0 else ""

    async def delete(self) -> None:
        """Remove our table, if it exists (the proxy's stop, and cleanup)."""
        await self._nft(["-f", "-"], f"add table ip {self.table}\ndelete table ip {self.table}\n")

    async def _nft(self, args: list[str], stdin: str | None = None) -> tuple[int, str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        process = await asyncio.create_subprocess_exec(
            *prefix,
            "nft",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate(stdin.encode() if stdin is not None else None)
        assert process.returncode is not None
        return process.returncode, output.decode(errors="replace")
