"""Pin a pod sandbox's namespaces to files, as CRI-O's ``pinns`` does.

``unshare(2)`` moves the calling *thread* into new namespaces, which the
kubelet's event loop thread must never do, so ``pin`` runs in a thread of
its own that does only this and then ends (runc.py's ``pin_namespaces``;
decision 0034: a thread costs ~1 ms where a ``python -S pinns.py DIR
HOSTNAME`` process, still supported, costs ~25 ms of start-up). It

1. unshares new network, IPC and UTS namespaces;
2. sets the hostname in the new UTS namespace (the pod's hostname, which
   every container of the pod then sees) and brings loopback up in the new
   network namespace (CNI adds the pod's interface afterwards);
3. bind-mounts each namespace onto ``DIR/net``, ``DIR/ipc`` and ``DIR/uts``,
   so the namespaces outlive this thread with nothing running in them.

Containers join them by path (``linux.namespaces[].path``); unmounting the
three files releases them. No pause process means nothing to restart or
reap after a kubelet restart. Standard library only, and only modules that
load fast (no argparse, no socket wrapper), for the program form.
"""

from __future__ import annotations

import _socket
import ctypes
import fcntl
import os
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
        raise OSError(errno, f"pinns: {what}: {os.strerror(errno)}")


def loopback_up() -> None:
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        sock.close()


def pin(directory: str, hostname: str) -> None:
    """Unshare, name, bring up and pin; the calling thread stays in the new namespaces.

    Only for a thread (or process) that ends right after: nothing else may
    run in it, since everything it opens would be in the pod's namespaces.
    Raises ``OSError``.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _socket.sethostname(hostname)
    loopback_up()
    for name in NAMESPACES:
        target = os.path.join(directory, name)
        with open(target, "w"):
            pass
        source = f"/proc/thread-self/ns/{name}".encode()
        _check(libc.mount(source, target.encode(), None, MS_BIND, None), f"bind {name}")


def main() -> None:
    directory, hostname = sys.argv[1:3]
    try:
        pin(directory, hostname)
    except OSError as exc:
        sys.exit(exc.strerror or str(exc))


if __name__ == "__main__":
    main()
