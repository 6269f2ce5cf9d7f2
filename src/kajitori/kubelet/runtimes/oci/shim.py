"""The per-container shim: a small process that owns one container's life under runc.

Run as a program (``python -S shim.py ID BUNDLE LOG RUNC_ROOT RUNC CGROUP``),
imported by the kubelet only for its constants (the attach protocol's), and
so written with the standard library only, and with modules that load fast (no argparse, no subprocess: it runs
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

A container with ``stdin`` or ``tty`` (the kubelet writes them in the
bundle's ``stdio`` file) gets its stdin on a pipe the shim holds, or a
terminal whose master runc hands the shim over ``console.sock``; the shim
then listens on ``attach.sock`` in the bundle, as conmon's attach socket.
An attach connection says first whether it brings stdin (``i``) or not
(``o``), then sends frames (kind byte, 4-byte big-endian length, payload):
stdin data, the end of its stdin, a terminal size; it receives stdout and
stderr frames from then on, until the container exits. Upstream
containerd's attach rules: with ``stdinOnce`` and no terminal the end of
the first attach's stdin closes the container's; otherwise it ends only
that attach.

Usually the shim is not started as a program but forked by the *shim
factory* (``python -S shim.py --factory NAME``, decision 0034): one
long-lived process per runc root, in a session of its own, listening on the
abstract unix socket ``NAME``. For each request (the six arguments,
NUL-separated, on one line) it answers ``ok`` and forks twice; the
grandchild runs exactly the steps above from 2 on, reporting on the
connection instead of stdout. A container then costs a fork of a loaded
interpreter instead of an interpreter's start (~20 ms of CPU, and its
memory is shared). The factory outlives the kubelet as the shims do, and
leaves once idle for ``FACTORY_IDLE`` seconds.
"""

from __future__ import annotations

import _signal  # not signal, threading or typing: their imports double the start-up CPU
import _socket  # not socket: it imports enum, as signal does
import _thread
import ctypes
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NAME = 15
COMM = b"kajitori-shim"
FACTORY_COMM = b"kajitori-shimfa"  # not the shims' name: the runtime looks for those
FACTORY_IDLE = 15.0  # seconds without a request before the factory leaves
MAX_LINE = 16 * 1024
CGROUP_ROOT = "/sys/fs/cgroup"
COPIERS: list[_thread.LockType] = []  # one per stdio copier thread, released once it is done
STDIO_FILE = "stdio"  # in the bundle: "stdin", "stdinOnce", "tty" (absent: stdin is /dev/null)
ATTACH_SOCKET = "attach.sock"
CONSOLE_SOCKET = "console.sock"
CONSOLE_WAIT = 30.0  # seconds runc create may take to send the terminal's master
# Attach frames: a kind byte, a 4-byte big-endian length, the payload.
FRAME_STDIN, FRAME_STDOUT, FRAME_STDERR, FRAME_CLOSE_STDIN, FRAME_RESIZE = range(5)


class Args:
    """The command line: ID BUNDLE LOG RUNC_ROOT RUNC CGROUP."""

    def __init__(
        self,
        container_id: str,
        bundle: str,
        log: str,
        runc_root: str,
        runc: str,
        cgroup: str,
    ) -> None:
        self.id = container_id
        self.bundle = bundle
        self.log = log
        self.runc_root = runc_root
        self.runc = runc
        self.cgroup = cgroup  # the container's cgroupsPath, for the OOM record

    @property
    def exit_file(self) -> str:
        return os.path.join(self.bundle, "exit.json")


def timestamp() -> str:
    """RFC 3339 with nanoseconds, UTC, as CRI log lines carry it."""
    # Not machinery.times: the shim runs with -S and the standard library only.
    ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class LogWriter:
    """Appends CRI-format lines to one file from both streams' threads."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "ab", buffering=0)  # lives as long as the shim
        self.lock = _thread.allocate_lock()

    def write(self, stream: str, records: list[tuple[bytes, bytes]]) -> None:
        """``(tag, line)`` records read together: one timestamp, one write (a busy
        container's lines cost a formatted time and a system call each otherwise)."""
        head = f"{timestamp()} {stream} ".encode()
        data = b"".join(head + tag + b" " + line + b"\n" for tag, line in records)
        with self.lock:
            self.file.write(data)


def copy_stream(fd: int, stream: str, log: LogWriter, stdio: Stdio | None = None) -> None:
    pending = b""
    kind = FRAME_STDERR if stream == "stderr" else FRAME_STDOUT
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a terminal's master reads EIO once the container closed it
            break
        if not chunk:
            break
        if stdio is not None:
            stdio.broadcast(kind, chunk)  # attach sees output at once, not a line later
        pending += chunk
        *lines, pending = pending.split(b"\n")
        records = [(b"F", line) for line in lines]
        while len(pending) > MAX_LINE:
            records.append((b"P", pending[:MAX_LINE]))
            pending = pending[MAX_LINE:]
        if records:
            log.write(stream, records)
    if pending:
        log.write(stream, [(b"F", pending)])
    os.close(fd)


class Stdio:
    """The container's stdin (a pipe's write end or a terminal's master) and its attaches."""

    def __init__(self, *, stdin: bool, once: bool, tty: bool) -> None:
        self.stdin = stdin
        self.once = once
        self.tty = tty
        self.input: int | None = None  # where attached stdin is written
        self.master: int | None = None  # the terminal's master, for sizes
        self.clients: list[_socket.socket] = []
        self.lock = _thread.allocate_lock()

    @classmethod
    def of(cls, bundle: str) -> Stdio | None:
        """The bundle's settings; None when the container has neither stdin nor a terminal."""
        try:
            with open(os.path.join(bundle, STDIO_FILE)) as file:
                words = file.read().split()
        except OSError:
            return None
        return cls(stdin="stdin" in words, once="stdinOnce" in words, tty="tty" in words)

    def write_input(self, data: bytes) -> None:
        with self.lock:
            fd = self.input
        while fd is not None and data:
            try:
                data = data[os.write(fd, data) :]
            except OSError:  # the container closed its stdin, or stdinOnce closed ours
                return

    def close_input(self) -> None:
        """stdinOnce: the container's stdin pipe ends (a reading process sees EOF)."""
        with self.lock:
            fd, self.input = self.input, None
        if fd is not None:
            os.close(fd)

    def resize(self, payload: bytes) -> None:
        if self.master is None or len(payload) != 4:
            return
        import fcntl  # only for a terminal, off the start path
        import termios

        width, height = payload[:2], payload[2:]
        size = int.from_bytes(height, "big").to_bytes(2, sys.byteorder)
        size += int.from_bytes(width, "big").to_bytes(2, sys.byteorder) + bytes(4)
        try:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    def broadcast(self, kind: int, data: bytes) -> None:
        frame = bytes([kind]) + len(data).to_bytes(4, "big") + data
        with self.lock:
            clients = list(self.clients)
        for conn in clients:
            try:
                conn.sendall(frame)
            except OSError:
                self.drop(conn)

    def drop(self, conn: _socket.socket) -> None:
        """End one attach: its connection closes, so the kubelet's side sees the end."""
        with self.lock:
            if conn not in self.clients:
                return
            self.clients.remove(conn)
        try:
            conn.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()

    def drop_all(self) -> None:
        with self.lock:
            clients = list(self.clients)
        for conn in clients:
            self.drop(conn)


def serve_attach(stdio: Stdio, listener: _socket.socket) -> None:
    """Accept attaches on ``attach.sock`` for the container's life (a thread)."""
    while True:
        try:
            fd, _ = listener._accept()  # type: ignore[attr-defined]
        except OSError:
            return
        conn = _socket.socket(fileno=fd)
        creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
            conn.close()
            continue
        with stdio.lock:
            stdio.clients.append(conn)
        _thread.start_new_thread(serve_client, (stdio, conn))


def recv_exactly(conn: _socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = conn.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def serve_client(stdio: Stdio, conn: _socket.socket) -> None:
    """One attach's frames until its stdin ends or it leaves (a thread)."""
    hello = recv_exactly(conn, 1)
    with_stdin = hello == b"i" and stdio.stdin
    closes_stdin = with_stdin and stdio.once and not stdio.tty
    while hello is not None:
        head = recv_exactly(conn, 5)
        payload = b"" if head is None else recv_exactly(conn, int.from_bytes(head[1:], "big"))
        if head is None or payload is None:
            break  # the kubelet's side left
        if head[0] == FRAME_STDIN and with_stdin:
            stdio.write_input(payload)
        elif head[0] == FRAME_RESIZE:
            stdio.resize(payload)
        elif head[0] == FRAME_CLOSE_STDIN and with_stdin:
            if not closes_stdin:
                break  # without stdinOnce (or with a terminal) this attach ends here
            stdio.close_input()
            with_stdin = False  # it stays for the output, until the container exits
    if closes_stdin:
        stdio.close_input()
    stdio.drop(conn)


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


def create(args: Args, log: LogWriter, stdio: Stdio | None = None) -> int:
    """``runc create``; returns init's pid, or exits after reporting the error."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pidfile = os.path.join(args.bundle, "init.pid")
    runc = [args.runc, "--root", args.runc_root, "--log", os.path.join(args.bundle, "runc.log")]
    runc += ["--log-format", "json", "create", "--bundle", args.bundle, "--pid-file", pidfile]
    console = None
    if stdio is not None and stdio.tty:
        # Relative: runc runs in the bundle, and a socket's path must fit in 108 bytes.
        console = listen(CONSOLE_SOCKET)
        runc += ["--console-socket", CONSOLE_SOCKET]
    devnull = os.open(os.devnull, os.O_RDONLY)
    if stdio is not None and stdio.stdin and not stdio.tty:
        os.close(devnull)
        devnull, stdio.input = os.pipe()  # the write end is close-on-exec: the shim's alone
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
        setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
    )
    for fd in (devnull, out_w, err_w):
        os.close(fd)
    received = None
    if console is not None:
        assert stdio is not None
        received = _thread.allocate_lock()  # held until runc sent the master, or gave up
        received.acquire()
        _thread.start_new_thread(receive_console, (console, stdio, received))
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
    streams = [(out_r, "stdout"), (err_r, "stderr")]
    if received is not None and stdio is not None:
        received.acquire(timeout=CONSOLE_WAIT)
        if stdio.master is None:
            message = "runc sent no terminal on the console socket"
            write_json(args.exit_file, {"createError": message, "finishedAt": time.time()})
            print("error", message, flush=True)
            sys.exit(1)
        if stdio.stdin:
            stdio.input = stdio.master
        streams.append((os.dup(stdio.master), "stdout"))  # a terminal merges stderr in
    for fd, stream in streams:
        done = _thread.allocate_lock()  # held until the copier has drained its pipe
        done.acquire()
        COPIERS.append(done)
        _thread.start_new_thread(_copy_then_release, (fd, stream, log, done, stdio))
    with open(pidfile) as file:
        return int(file.read().strip())


def _copy_then_release(
    fd: int, stream: str, log: LogWriter, done: _thread.LockType, stdio: Stdio | None
) -> None:
    try:
        copy_stream(fd, stream, log, stdio)
    finally:
        done.release()


def listen(name: str) -> _socket.socket:
    """A unix socket listening at ``name`` in the working directory (the bundle), for us only."""
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        os.unlink(name)
    except OSError:
        pass
    listener.bind(name)
    os.chmod(name, 0o600)
    listener.listen(16)
    return listener


def receive_console(listener: _socket.socket, stdio: Stdio, received: _thread.LockType) -> None:
    """runc's connection on the console socket: the terminal's master, as SCM_RIGHTS (a thread)."""
    try:
        listener.settimeout(CONSOLE_WAIT)
        fd, _ = listener._accept()  # type: ignore[attr-defined]
        conn = _socket.socket(fileno=fd)
        conn.settimeout(CONSOLE_WAIT)
        try:
            _, ancillary, _, _ = conn.recvmsg(4096, _socket.CMSG_SPACE(4))
        finally:
            conn.close()
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
                stdio.master = int.from_bytes(data[:4], sys.byteorder)
    except OSError:
        pass
    finally:
        listener.close()
        try:
            os.unlink(CONSOLE_SOCKET)
        except OSError:
            pass
        received.release()


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
        import signal  # only now, off the start path (its enum import is slow)

        record.update(exitCode=128 + number, signal=signal.Signals(number).name)
    else:
        record["exitCode"] = os.WEXITSTATUS(status)
    return record


def main() -> None:
    if sys.argv[1:2] == ["--factory"]:
        factory(sys.argv[2])
        return
    if sys.argv[1:2] == ["--exec"]:
        exec_tty(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:])
        return
    args = Args(*sys.argv[1:7])
    if os.fork():
        os._exit(0)  # the kubelet reaps this parent; the shim lives on, parented by init
    run(args)


def run(args: Args) -> None:
    """The shim proper, once it is nobody's child: report on stdout, then wait for init."""
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
    stdio = Stdio.of(args.bundle)
    pid = create(args, log, stdio)
    attach = None
    if stdio is not None:  # before "created": the kubelet may attach once it started the container
        attach = listen(ATTACH_SOCKET)
        _thread.start_new_thread(serve_attach, (stdio, attach))
    # Only now: ignored signals are inherited through exec, and the container must not inherit them.
    for number in (_signal.SIGPIPE, _signal.SIGHUP, _signal.SIGINT, _signal.SIGTERM):
        _signal.signal(number, _signal.SIG_IGN)
    try:
        print("created", pid, flush=True)
    except OSError:
        pass  # the kubelet is gone: the container runs on, a restarted kubelet adopts it
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    status = wait_for(pid)
    # Let the copiers drain what the container wrote last (a daemonized child may hold the pipes).
    for done in COPIERS:
        done.acquire(timeout=1.0)
    if stdio is not None and attach is not None:
        stdio.drop_all()  # each attach sees its end after the last output
        try:
            os.unlink(ATTACH_SOCKET)  # a later attach finds no container, not a dead socket
            attach.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
    write_json(args.exit_file, exit_record(status, args.cgroup))


# Exec with a terminal (``--exec``): conmon's part for ``runc exec -t``. runc hands a
# terminal's master over a console socket only when it detaches, so this process stays
# as the exec'd process's reaper (a child subreaper) for its exit code.


def exec_tty(channel: int, directory: str, runc: str, root: str, cid: str, argv: list[str]) -> None:
    """``runc exec -d -t`` of ``argv``; the master goes to the kubelet over ``channel``.

    ``channel`` is a unix socket inherited from the kubelet: it receives the
    terminal's master (SCM_RIGHTS), then sees it close. This process then
    exits with the exec'd process's exit code (128 + signal for a signal), or
    with runc's own when runc failed (its message on stderr, inherited).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    os.chdir(directory)  # the kubelet's short temporary directory, where listen() binds
    console = listen(CONSOLE_SOCKET)
    pidfile = os.path.join(directory, "exec.pid")
    command = [runc, "--root", root, "exec", "--detach", "--tty", "--console-socket"]
    # Absolute: runc exec dials it from elsewhere than this directory.
    command += [os.path.join(directory, CONSOLE_SOCKET), "--pid-file", pidfile, cid, *argv]
    devnull = os.open(os.devnull, os.O_RDWR)
    pid = os.posix_spawnp(
        runc,
        command,
        os.environ,
        file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)],
        setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ),
    )
    os.close(devnull)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(code if code > 0 else 128 - code)
    stdio = Stdio(stdin=True, once=False, tty=True)
    received = _thread.allocate_lock()
    received.acquire()
    receive_console(console, stdio, received)  # runc queued its connection before it exited
    with open(pidfile) as file:
        child = int(file.read().strip())
    conn = _socket.socket(fileno=channel)
    if stdio.master is not None:
        conn.sendmsg(
            [b"m"],
            [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, stdio.master.to_bytes(4, sys.byteorder))],
        )
        os.close(stdio.master)
    conn.close()
    ended = wait_for(child)
    if ended is None:
        sys.exit(255)
    code = os.waitstatus_to_exitcode(ended)
    sys.exit(code if code >= 0 else 128 - code)


# The factory: one long-lived process per runc root that forks a ready shim per
# request, so a container costs a fork instead of an interpreter start (~20 ms of CPU).


def factory(name: str) -> None:
    """Serve shim requests on the abstract unix socket ``name``; print ``ready`` or ``exists``.

    Binds first, so a second factory for the same name finds it taken and
    leaves; then forks, so the kubelet reaps this process at once and the
    factory, in a session of its own, outlives the kubelet as its shims do.
    It leaves after ``FACTORY_IDLE`` seconds without a request (a kubelet
    that is gone, or a test's runtime) and never holds a directory open.
    """
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        listener.bind("\0" + name)
    except OSError:
        print("exists", flush=True)
        return
    listener.listen(64)
    if os.fork():
        print("ready", flush=True)
        os._exit(0)
    os.setsid()
    os.chdir("/")
    ctypes.CDLL(None).prctl(PR_SET_NAME, FACTORY_COMM, 0, 0, 0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    listener.settimeout(FACTORY_IDLE)
    while True:
        try:
            # typeshed omits _socket.socket._accept (the fd-returning accept used here).
            fd, _ = listener._accept()  # type: ignore[attr-defined]
        except TimeoutError:
            break  # closing the listener frees the name; a kubelet then starts a new factory
        except OSError:
            continue
        conn = _socket.socket(fileno=fd)
        try:
            fields = _request(conn)
            if fields is not None:
                _fork_shim(listener, conn, fields)
        finally:
            conn.close()


def _request(conn: _socket.socket) -> list[str] | None:
    """One request's shim arguments (NUL-separated, a newline at the end), acknowledged."""
    conn.settimeout(5.0)  # a kubelet writes its request at once; never hang the factory
    try:
        creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
            return None  # only its own user may have containers created
        request = b""
        while not request.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return None
            request += chunk
        fields = request[:-1].decode().split("\0")
        if len(fields) != 6:
            return None
        # Before the fork: a kubelet that never got "ok" knows no shim exists and may retry.
        conn.sendall(b"ok\n")
    except (OSError, ValueError):
        return None
    return fields


def _fork_shim(listener: _socket.socket, conn: _socket.socket, fields: list[str]) -> None:
    """Fork the shim (twice, so it is nobody's child, as a direct shim)."""
    try:
        child = os.fork()
    except OSError:
        return  # the kubelet sees the connection close after "ok": a failed create
    if child:
        os.waitpid(child, 0)  # the middle process leaves at once
        return
    code = 1
    try:
        listener.close()
        if os.fork():
            code = 0
        else:
            # The shim reports on the connection, as a direct shim does on its stdout.
            conn.settimeout(None)
            os.dup2(conn.fileno(), 1)
            conn.close()
            try:
                run(Args(*fields))
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os._exit(code)  # never back into the factory's loop


if __name__ == "__main__":
    main()
