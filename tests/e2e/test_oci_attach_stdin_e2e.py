"""Interactive kubectl on the oci runtime: ``run -it --rm``, ``attach -i``, ``debug -it``.

The real kubectl on a pseudo-terminal (``pty.fork``) against ``kajitori up
--runtime oci``: what is typed reaches the container's shell through the
kubelet's attach and the shim's terminal (runtimes/oci/shim.py), and the
shell's answers come back; ``--rm`` deletes the pod once the shell exits.
Without a terminal, ``attach -i`` sends piped stdin, whose end closes the
container's stdin (stdinOnce).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kajitori.testing.cluster import KajitoriCluster, wait_for

SIZE = (33, 111)  # the test terminal's rows and columns, which kubectl passes on
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: target}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
"""
HELD = """\
apiVersion: v1
kind: Pod
metadata: {name: held}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: busybox, command: [sh], stdin: true, tty: true}
"""
CAT = """\
apiVersion: v1
kind: Pod
metadata: {name: cat}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: busybox, command: [cat], stdin: true, stdinOnce: true}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    from tests.kubelet.runtimes.oci import helpers

    if helpers.REASON is not None:
        pytest.skip(helpers.REASON)
    from kajitori.testing import node_network  # a node network of its own (decision 0031)

    tmp_path = tmp_path_factory.mktemp("oci-attach")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAJITORI_OCI_ROOT", str(tmp_path / "oci"))
        patch.setenv("KAJITORI_OCI_IMAGES", "busybox")  # the host's busybox-static
        network = node_network.up_args(node_network.cluster_name(), node_network.free_node_cidr())
        args = ("--nodes=1", "--runtime=oci", *network)
        with KajitoriCluster(Path(tmp_path) / "data", extra_args=args) as running:
            running.wait_for_namespace_defaults("default")
            yield running


class Terminal:
    """kubectl on a pseudo-terminal: type into it, read what it shows (with deadlines)."""

    def __init__(self, cluster: KajitoriCluster, args: Sequence[str]) -> None:
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "TERM": "xterm"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: kubectl, with the terminal as its stdio
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", *SIZE, 0, 0))
                os.execvpe("kubectl", ["kubectl", *args], env)
            finally:
                os._exit(127)
        self.seen = b""

    def expect(self, wanted: bytes, timeout: float = 30.0) -> bytes:
        """Read until ``wanted`` was shown; everything shown so far."""
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{wanted!r} not shown; the terminal shows {self.seen!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: kubectl exited and closed the terminal
                    chunk = b""
                assert chunk, f"kubectl ended before {wanted!r}: {self.seen!r}"
                self.seen += chunk
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def exit_code(self, timeout: float = 30.0) -> int:
        """kubectl's exit code, reading what it still shows until it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:
                    pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"kubectl did not exit; the terminal shows {self.seen!r}")


def test_run_it_rm_is_an_interactive_shell_and_deletes_the_pod(cluster: KajitoriCluster) -> None:
    terminal = Terminal(
        cluster, ["run", "-it", "--rm", "--restart=Never", "--image=busybox", "shell", "--", "sh"]
    )
    terminal.expect(b"If you don't see a command prompt, try pressing enter.")
    pod = cluster.get_json("pod", "shell")["spec"]["containers"][0]
    assert (pod["stdin"], pod["stdinOnce"], pod["tty"]) == (True, True, True)
    terminal.type("echo answer-$((6*7)); stty size\r")
    terminal.expect(b"answer-42")
    terminal.expect(b"33 111")  # kubectl's resize reached the container's terminal
    terminal.type("exit\r")
    assert terminal.exit_code() == 0, terminal.seen
    assert b'pod "shell" deleted' in terminal.seen
    gone = cluster.kubectl("get", "pod", "shell", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone


def test_attach_it_reaches_a_running_shell_and_its_exit_code_shows(
    cluster: KajitoriCluster,
) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=HELD)
    cluster.kubectl("wait", "pod/held", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
    terminal = Terminal(cluster, ["attach", "-it", "held"])
    terminal.expect(b"If you don't see a command prompt, try pressing enter.")
    terminal.type("hostname; exit 5\r")
    terminal.expect(b"held")
    assert terminal.exit_code() == 0, terminal.seen  # attach itself ends in Success
    phase = wait_for(
        lambda: cluster.get_json("pod", "held")["status"].get("phase") == "Failed",
        timeout=30,
        what="pod held failed",
    )
    assert phase
    status = cluster.get_json("pod", "held")["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 5
    cluster.kubectl("delete", "pod", "held", "--wait=false")


def test_attach_i_without_a_terminal_pipes_stdin_and_closes_it_once(
    cluster: KajitoriCluster,
) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=CAT)
    cluster.kubectl("wait", "pod/cat", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
    done = cluster.kubectl("attach", "-i", "cat", stdin="ping\npong\n", timeout=60)
    assert done.stdout.endswith("ping\npong\n"), done
    # The end of kubectl's stdin closed cat's (stdinOnce): the container is done.
    assert wait_for(
        lambda: cluster.get_json("pod", "cat")["status"].get("phase") == "Succeeded",
        timeout=30,
        what="pod cat succeeded",
    )
    assert "ping\npong\n" in cluster.kubectl("logs", "cat").stdout
    cluster.kubectl("delete", "pod", "cat", "--wait=false")


def test_debug_it_is_an_interactive_shell_beside_the_target(cluster: KajitoriCluster) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=POD)
    cluster.kubectl("wait", "pod/target", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
    terminal = Terminal(
        cluster,
        ["debug", "-it", "target", "--image=busybox", "-c", "dbg", "--target=app", "--", "sh"],
    )
    terminal.expect(b"If you don't see a command prompt, try pressing enter.")
    # "[t]rap": grep's own command line does not match, so 1 is the target's shell seen.
    terminal.type("ps -o args | grep -c '[t]rap'; echo debug-$((1+1))\r")
    shown = terminal.expect(b"debug-2")
    assert b"\r\n1\r\ndebug-2" in shown, shown
    terminal.type("exit\r")
    assert terminal.exit_code() == 0, terminal.seen
    cluster.kubectl("delete", "pod", "target", "--wait=false")


def test_run_i_rm_pipes_stdin_into_the_container(cluster: KajitoriCluster) -> None:
    script = "read line; echo got-$line; cat; echo eof"
    done = cluster.kubectl(
        "run", "-i", "--rm", "--restart=Never", "--image=busybox", "piped",
        "--", "sh", "-c", script, stdin="hello\nrest\n", check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The rest of the input reaches cat, and the end of kubectl's stdin ends cat's (stdinOnce).
    assert "got-hello\nrest\neof\n" in done.stdout, done.stdout
    assert 'pod "piped" deleted' in done.stdout
