"""``kubectl exec -it`` on the oci runtime: the command runs under a real terminal.

The real kubectl on a pseudo-terminal against ``kajitori up --runtime oci``:
the exec'd shell sees a /dev/pts terminal (``tty``), whose size follows the
client's terminal, first and after the client's terminal is resized
(kubectl's resize channel); ``exit N`` ends kubectl with N, as upstream's
"command terminated with exit code N".
"""

from __future__ import annotations

import fcntl
import struct
import termios

from tests.e2e.test_oci_attach_stdin_e2e import Terminal, cluster  # noqa: F401 (a fixture)

from kajitori.testing.cluster import KajitoriCluster

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: host}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
"""


def test_exec_it_runs_under_a_terminal_that_follows_the_client(
    cluster: KajitoriCluster,  # noqa: F811 (the imported fixture)
) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=POD)
    cluster.kubectl("wait", "pod/host", "--for=jsonpath={.status.phase}=Running", "--timeout=60s")
    terminal = Terminal(cluster, ["exec", "-it", "host", "--", "sh"])
    terminal.type("tty; stty size; echo first-$((2*3))\r")
    shown = terminal.expect(b"first-6")
    assert b"/dev/pts/" in shown and b"not a tty" not in shown, shown
    assert b"\r\n33 111\r\n" in shown, shown  # the client's size (Terminal.SIZE)
    # The client's terminal changes size: kubectl sends it on, the shell's follows.
    fcntl.ioctl(terminal.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    for attempt in range(20):  # the resize travels apart from what is typed: ask until it came
        terminal.type(f"stty size; echo probe-{attempt}-$((3*3))\r")
        shown = terminal.expect(f"probe-{attempt}-9".encode()).rpartition(b"first-6")[2]
        if b"\r\n40 120\r\n" in shown:
            break
    else:
        raise AssertionError(f"the terminal never became 40x120: {terminal.seen!r}")
    terminal.type("exit 3\r")
    assert terminal.exit_code() == 3, terminal.seen
    assert b"command terminated with exit code 3" in terminal.seen, terminal.seen
    cluster.kubectl("delete", "pod", "host", "--wait=false")
