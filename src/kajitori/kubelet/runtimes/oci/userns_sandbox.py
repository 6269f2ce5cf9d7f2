"""A rootless pod sandbox: a holder process in the pod's own user, network, IPC and UTS namespaces.

Run as a program (``python -S userns_sandbox.py DIR HOSTNAME UID_MAP GID_MAP``),
not imported: ``unshare(2)`` moves the calling process, which the kubelet
must never do. It is pinns.py's rootless twin (decision 0033): a user
without privilege cannot bind-mount namespace files, so the namespaces
are held by a process that does nothing, as rootless podman's pause
process does, and the files under ``DIR`` are symlinks to its
``/proc/<pid>/ns/*``. It

1. forks; the child starts a session, unshares a user namespace and gets
   its mapping: written by itself for one mapping (``0 <uid> 1``, after
   ``setgroups`` ``deny``, which an unprivileged writer must), or by the
   first process through ``newuidmap``/``newgidmap`` for a mapping with
   /etc/subuid ranges (the setuid helpers only map another process);
2. as root of that user namespace it unshares network, IPC and UTS (all
   owned by it, so the containers that join it may configure them), sets
   the hostname and brings loopback up; no other interface (no CNI
   without root);
3. prints ``ready <pid>`` and then holds the namespaces until killed,
   named ``kajitori-pod`` with the pod directory as its working directory
   (how the runtime recognises it, as it does its shims).

UID_MAP and GID_MAP are ``container:host:size`` triples joined by commas.
Standard library only, fast-loading modules only: it runs once per pod start.
"""

from __future__ import annotations

import _socket
import ctypes
import fcntl
import os
import signal
import struct
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
COMM = b"kajitori-pod"
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def fail(message: str) -> None:
    print("error", message, flush=True)
    os._exit(1)


def check(result: int, what: str) -> None:
    if result != 0:
        fail(f"{what}: {os.strerror(ctypes.get_errno())}")


def parse(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(n) for n in item.split(":")) for item in text.split(",")]  # type: ignore[misc]


def write_file(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def loopback_up() -> None:
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        sock.close()


def run_helper(argv: list[str]) -> None:
    """newuidmap or newgidmap; fails with its own message."""
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        fail(
            f"{argv[0]} failed (exit {os.waitstatus_to_exitcode(status)}): is the range in "
            f"/etc/sub{argv[0][3]}id yours?"
        )


def map_with_helpers(
    pid: int, uids: list[tuple[int, int, int]], gids: list[tuple[int, int, int]]
) -> None:
    for tool, mapping in (("newuidmap", uids), ("newgidmap", gids)):
        run_helper([tool, str(pid), *(str(n) for triple in mapping for n in triple)])


def holder(
    directory: str,
    hostname: str,
    uids: list[tuple[int, int, int]],
    gids: list[tuple[int, int, int]],
    ready_r: int,
    mapped_w: int,
) -> None:
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    if len(uids) == 1 and len(gids) == 1:
        write_file("/proc/self/setgroups", "deny")
        write_file("/proc/self/uid_map", " ".join(map(str, uids[0])) + "\n")
        write_file("/proc/self/gid_map", " ".join(map(str, gids[0])) + "\n")
    else:
        os.write(mapped_w, b"u")  # the first process maps us with the setuid helpers
        if os.read(ready_r, 1) != b"m":
            os._exit(1)
    os.close(ready_r)
    os.close(mapped_w)
    check(libc.unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _socket.sethostname(hostname)
    loopback_up()
    libc.prctl(PR_SET_NAME, COMM, 0, 0, 0)
    os.chdir(directory)
    print("ready", os.getpid(), flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    for number in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(number, signal.SIG_IGN)
    while True:
        signal.pause()


def main() -> None:
    directory, hostname, uid_map, gid_map = sys.argv[1:5]
    uids, gids = parse(uid_map), parse(gid_map)
    to_parent_r, to_parent_w = os.pipe()  # child → first process: "map me"
    to_child_r, to_child_w = os.pipe()  # first process → child: "mapped"
    pid = os.fork()
    if pid == 0:
        os.close(to_parent_r)
        os.close(to_child_w)
        try:
            holder(directory, hostname, uids, gids, to_child_r, to_parent_w)
        except Exception as exc:
            fail(f"{type(exc).__name__}: {exc}")
    os.close(to_parent_w)
    os.close(to_child_r)
    if os.read(to_parent_r, 1) == b"u":
        try:
            map_with_helpers(pid, uids, gids)
        except OSError as exc:
            os.kill(pid, signal.SIGKILL)
            fail(f"cannot map the pod's user namespace: {exc}")
        os.write(to_child_w, b"m")
    os._exit(0)  # the holder is re-parented; the kubelet reads its "ready" line


if __name__ == "__main__":
    main()
