"""Pin a pod sandbox's namespaces to files, as CRI-O's ``pinns`` does.

Run as a program (``python -S pinns.py --dir DIR --hostname NAME``), not
imported: ``unshare(2)`` moves the calling thread into new namespaces, which
the kubelet's own process must never do. It

1. unshares new network, IPC and UTS namespaces;
2. sets the hostname in the new UTS namespace (the pod's hostname, which
   every container of the pod then sees) and brings loopback up in the new
   network namespace (no other interface: CNI is not wired yet);
3. bind-mounts each namespace onto ``DIR/net``, ``DIR/ipc`` and ``DIR/uts``,
   so the namespaces outlive this process with nothing running in them.

Containers join them by path (``linux.namespaces[].path``); unmounting the
three files releases them. No pause process means nothing to restart or
reap after a kubelet restart. Standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
NAMESPACES = ("net", "ipc", "uts")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        sys.exit(f"pinns: {what}: {os.strerror(errno)}")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--hostname", required=True)
    args = parser.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    socket.sethostname(args.hostname)
    loopback_up()
    for name in NAMESPACES:
        target = os.path.join(args.dir, name)
        with open(target, "w"):
            pass
        source = f"/proc/thread-self/ns/{name}".encode()
        _check(libc.mount(source, target.encode(), None, MS_BIND, None), f"bind {name}")


if __name__ == "__main__":
    main()
