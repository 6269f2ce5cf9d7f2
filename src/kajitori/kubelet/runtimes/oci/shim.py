"""The per-container shim: a small process that owns one container's life under runc.

Run as a program (``python -S shim.py ID BUNDLE LOG RUNC_ROOT RUNC CGROUP``),
never imported by the kubelet, and so written with the standard library
only, and with modules that load fast (no argparse, no subprocess: it runs
once per container start; ``-S`` skips site-packages, ~20 ms less).
It plays the part of conmon or containerd-shim:

1. it forks and the parent exits at once, so the shim is nobody's child
   and outlives the kubelet (its own session; the kubelet reads the pipe
   it inherited, not its exit);
2. it makes itself a child subreaper, so when ``runc create`` exits the
   container's init is re-parented to the shim, which alone can then
   ``waitpid`` it for the exit status;
3. it runs ``runc create`` with the container's stdout and stderr on pipes
   it owns, and copies every line to the CRI log file
   (``<RFC3339Nano> stdout|stderr F|P <line>``, what ``kubectl logs``
   reads; lines over 16 KiB are cut into ``P`` parts);
4. it prints ``created <init pid>`` (or ``error <message>``) on its stdout
   and closes it; the kubelet then runs ``runc start``;
5. when init exits it records ``exit.json`` in the bundle, atomically:
   ``exitCode`` (128 + signal for a signal, as Kubernetes reports it),
   ``signal``, ``finishedAt`` (seconds since the epoch) and ``oomKilled``
   (from the container's memory cgroup, read before anyone deletes it).
   The kubelet learns of it by a pidfd on the shim, which exits right after.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import NamedTuple

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NAME = 15
COMM = b"kajitori-shim"
MAX_LINE = 16 * 1024
CGROUP_ROOT = "/sys/fs/cgroup"


class Args(NamedTuple):
    id: str
    bundle: str
    log: str
    runc_root: str
    runc: str
    cgroup: str  # the container's cgroupsPath, for the OOM record

    @property
    def exit_file(self) -> str:
        return os.path.join(self.bundle, "exit.json")


def timestamp() -> str:
    """RFC 3339 with nanoseconds, UTC, as CRI log lines carry it."""
    ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class LogWriter:
    """Appends CRI-format lines to one file from both streams' threads."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "ab", buffering=0)  # lives as long as the shim
        self.lock = threading.Lock()

    def write(self, stream: str, tag: str, line: bytes) -> None:
        record = f"{timestamp()} {stream} {tag} ".encode() + line + b"\n"
        with self.lock:
            self.file.write(record)


def copy_stream(fd: int, stream: str, log: LogWriter) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            log.write(stream, "F", line)
        while len(pending) > MAX_LINE:
            log.write(stream, "P", pending[:MAX_LINE])
            pending = pending[MAX_LINE:]
    if pending:
        log.write(stream, "F", pending)
    os.close(fd)


def _encode(value: object) -> str:
    """JSON for the flat records the shim writes (``json`` costs ~13 ms to import)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    escaped = "".join(c if c >= " " and c not in '"\\' else f"\\u{ord(c):04x}" for c in text)
    return f'"{escaped}"'


def write_json(path: str, value: dict[str, object]) -> None:
    body = ", ".join(f"{_encode(key)}: {_encode(item)}" for key, item in value.items())
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        file.write("{" + body + "}")
    os.rename(temporary, path)


def runc_error(bundle: str, stderr: bytes) -> str:
    """runc's own last error message (from its JSON log), else what it printed."""
    import json  # only on this failure path: it is slow to import

    message = ""
    try:
        with open(os.path.join(bundle, "runc.log")) as file:
            for line in file:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg") or message
    except OSError:
        pass
    return message or stderr.decode(errors="replace").strip() or "runc create failed"


def oom_killed(cgroup: str) -> bool:
    """Whether the kernel's OOM killer acted in the container's memory cgroup."""
    path = cgroup.strip("/")
    candidates = [
        (os.path.join(CGROUP_ROOT, "memory", path, "memory.oom_control"), "oom_kill"),
        (os.path.join(CGROUP_ROOT, path, "memory.events"), "oom_kill"),
        (os.path.join(CGROUP_ROOT, "unified", path, "memory.events"), "oom_kill"),
    ]
    for filename, key in candidates:
        try:
            with open(filename) as file:
                for line in file:
                    name, _, value = line.partition(" ")
                    if name == key and int(value) > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


def create(args: Args, log: LogWriter) -> int:
    """``runc create``; returns init's pid, or exits after reporting the error."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pidfile = os.path.join(args.bundle, "init.pid")
    runc = [args.runc, "--root", args.runc_root, "--log", os.path.join(args.bundle, "runc.log")]
    runc += ["--log-format", "json", "create", "--bundle", args.bundle, "--pid-file", pidfile]
    devnull = os.open(os.devnull, os.O_RDONLY)
    # The container inherits these as its stdio; Python's own SIGPIPE ignore must not pass on.
    pid = os.posix_spawnp(
        args.runc,
        [*runc, args.id],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ],
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
    )
    for fd in (devnull, out_w, err_w):
        os.close(fd)
    # Never wait on the pipes here: the container holds them open as its stdio.
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        os.set_blocking(err_r, False)
        try:
            stderr = os.read(err_r, 65536)
        except OSError:
            stderr = b""
        message = runc_error(args.bundle, stderr)
        write_json(args.exit_file, {"createError": message, "finishedAt": time.time()})
        print("error", message.replace("\n", " "), flush=True)
        sys.exit(1)
    for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
        threading.Thread(target=copy_stream, args=(fd, stream, log), daemon=True).start()
    with open(pidfile) as file:
        return int(file.read().strip())


def wait_for(pid: int) -> int | None:
    """Reap every re-parented process until ``pid`` exits; its wait status."""
    while True:
        try:
            found, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return None
        if found == pid:
            return status


def exit_record(status: int | None, cgroup: str) -> dict[str, object]:
    record: dict[str, object] = {"finishedAt": time.time(), "oomKilled": oom_killed(cgroup)}
    if status is None:
        record.update(exitCode=255, error="the container's init was not the shim's child")
    elif os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        record.update(exitCode=128 + number, signal=signal.Signals(number).name)
    else:
        record["exitCode"] = os.WEXITSTATUS(status)
    return record


def main() -> None:
    args = Args(*sys.argv[1:7])
    if os.fork():
        os._exit(0)  # the kubelet reaps this parent; the shim lives on, parented by init
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("error prctl(PR_SET_CHILD_SUBREAPER) failed", flush=True)
        sys.exit(1)
    # How the runtime recognises its shims: the name and the working directory are
    # readable from /proc without touching the process's memory, as cmdline would.
    libc.prctl(PR_SET_NAME, COMM, 0, 0, 0)
    os.chdir(args.bundle)
    with open(os.path.join(args.bundle, "shim.pid"), "w") as file:
        file.write(str(os.getpid()))
    log = LogWriter(args.log)
    pid = create(args, log)
    # Only now: ignored signals are inherited through exec, and the container must not inherit them.
    for number in (signal.SIGPIPE, signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    print("created", pid, flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    status = wait_for(pid)
    # Let the copiers drain what the container wrote last (a daemonized child may hold the pipes).
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(timeout=1.0)
    write_json(args.exit_file, exit_record(status, args.cgroup))


if __name__ == "__main__":
    main()
