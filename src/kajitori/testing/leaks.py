"""What a node running the oci runtime holds, counted, so a test can prove nothing leaked.

``count(root, ...)`` takes a snapshot of everything pods can leave behind on
a node whose runtime keeps its state under ``root`` (decisions 0026, 0027):

* ``runc``: containers in runc's state root (``<root>/runc``);
* ``shims``: live ``kajitori-shim`` processes whose bundle is under ``root``;
* ``mounts``: every mount under ``root``, of which ``ns_mounts`` / ``overlays``
  are pinned namespace files (nsfs) and overlay rootfs mounts; ``netns``: entries of /run/netns named with
  the test's prefix (other tests make their own at the same time);
* ``pod_dirs``: pod directories under ``<root>/pods``;
* ``ipam`` / ``cni_cache``: host-local reservations and cached CNI results in
  the network state directory;
* ``veths``: veth links in the node network namespace.

Tests take one snapshot with their long-lived pods running (the baseline)
and compare later ones with it, after the pods of each scenario are gone.
Requires root (runc, /proc of other processes, ``ip netns exec``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

NETNS_DIR = Path("/run/netns")
SHIM_COMM = "kajitori-shim"  # what the oci runtime's shim names itself (oci/shim.py)


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    """How many of each thing a node holds."""

    runc: int
    shims: int
    mounts: int
    ns_mounts: int
    overlays: int
    netns: int
    pod_dirs: int
    ipam: int
    cni_cache: int
    veths: int


async def count(
    root: Path,
    *,
    cni_state: Path | None = None,
    node_netns: str | None = None,
    netns_prefix: str | None = None,
    runc_binary: str = "runc",
) -> Counts:
    """A snapshot of what the node whose oci runtime lives under ``root`` holds."""
    real_root = os.path.realpath(root) + "/"
    mounts = _mounts_under(real_root)
    return Counts(
        runc=len(await _runc_list(runc_binary, root / "runc")),
        shims=len(_shims(real_root)),
        mounts=len(mounts),
        ns_mounts=sum(1 for fstype in mounts if fstype == "nsfs"),
        overlays=sum(1 for fstype in mounts if fstype == "overlay"),
        netns=_named_netns(netns_prefix) if netns_prefix else 0,
        pod_dirs=len(list((root / "pods").iterdir())) if (root / "pods").is_dir() else 0,
        ipam=_reservations(cni_state) if cni_state else 0,
        cni_cache=len(list((cni_state / "results").glob("*.json"))) if cni_state else 0,
        veths=await _veths(node_netns) if node_netns else 0,
    )


def _named_netns(prefix: str) -> int:
    if not NETNS_DIR.is_dir():
        return 0
    return sum(1 for name in os.listdir(NETNS_DIR) if name.startswith(prefix))


def _mounts_under(prefix: str) -> list[str]:
    """The filesystem types of the mounts whose mount point is under ``prefix``."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].replace("\\040", " ")
        fstype = fields[fields.index("-") + 1]
        if point.startswith(prefix):
            found.append(fstype)
    return found


async def _runc_list(binary: str, state_root: Path) -> list[str]:
    if not state_root.is_dir():
        return []
    out = await _run(binary, "--root", str(state_root), "list", "--format", "json")
    return [str(c.get("id")) for c in json.loads(out or "null") or []]


def _shims(prefix: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if comm == SHIM_COMM and (cwd + "/").startswith(prefix):
            found.append(int(entry.name))
    return found


def _reservations(cni_state: Path) -> int:
    """host-local's reserved addresses (one file per IP) in every network."""
    networks = cni_state / "networks"
    if not networks.is_dir():
        return 0
    return sum(
        1
        for network in networks.iterdir()
        if network.is_dir()
        for path in network.iterdir()
        if path.name[0].isdigit()
    )


async def _veths(netns: str) -> int:
    out = await _run("ip", "netns", "exec", netns, "ip", "-o", "link", "show", "type", "veth")
    return len(out.splitlines())


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await process.communicate()
    return out.decode(errors="replace")
