"""``kubectl run -i``: the container's output comes exactly once, as against upstream.

kubectl 1.37 prints the logs written before it attaches, attaches, and if
the attach fails prints the logs again since a time with whole seconds only.
A kubelet that refused attach to a running container (kajitori's simulated
runtime did, and the oci runtime had no attach) so made it print lines
twice. Here the real kubectl runs pods on ``kajitori up`` (simulated) and on
``kajitori up --runtime oci`` (real busybox under runc).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kajitori.testing.cluster import KajitoriCluster

RUNTIME = "--annotations=kajitori.io/simulate-runtime-seconds=2"
FALLBACK = "falling back to streaming logs"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KajitoriCluster]:
    with KajitoriCluster(tmp_path_factory.mktemp("run-attach"), extra_args=["--nodes=1"]) as up:
        up.wait_for_namespace_defaults("default")
        yield up


def _line(name: str) -> str:
    return f"kajitori simulated container {name} of pod default/{name} started (run 0)\n"


def test_run_interactive_prints_the_output_once(simulated: KajitoriCluster) -> None:
    done = simulated.kubectl(
        "run", "-i", "--rm", "--restart=Never", "--image=busybox", RUNTIME, "once",
        "--", "echo", "hello", stdin="", check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The pre-attach logs show the line; the attach succeeds (no fallback), adding nothing.
    assert done.stdout.count(_line("once")) == 1, done.stdout
    assert FALLBACK not in done.stderr
    assert 'pod "once" deleted' in done.stdout


def test_run_interactive_exits_with_the_container_code(simulated: KajitoriCluster) -> None:
    """Attach ends in Success whatever the code (upstream's ServeAttach); kubectl reads the pod."""
    done = simulated.kubectl(
        "run", "-i", "--rm", "--restart=Never", "--image=busybox", RUNTIME,
        "--annotations=kajitori.io/simulate-exit-code=3", "failing", "--", "false",
        stdin="", check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout.count(_line("failing")) == 1, done.stdout
    assert FALLBACK not in done.stderr
    assert "pod default/failing terminated (Error)" in done.stderr


def test_oci_run_interactive_prints_the_output_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real container: what it writes before and after kubectl attaches, each line once."""
    from tests.kubelet.runtimes.oci import helpers

    if helpers.REASON is not None:
        pytest.skip(helpers.REASON)
    monkeypatch.setenv("KAJITORI_OCI_ROOT", str(tmp_path / "oci"))
    monkeypatch.setenv("KAJITORI_OCI_IMAGES", "busybox")  # the host's busybox-static
    from kajitori.testing import node_network  # a node network of its own (decision 0031)

    network = node_network.up_args(node_network.cluster_name(), node_network.free_node_cidr())
    with KajitoriCluster(
        tmp_path / "up", extra_args=["--nodes=1", "--runtime=oci", *network]
    ) as up:
        up.wait_for_namespace_defaults("default")
        script = "echo before; sleep 2; echo after; echo to stderr >&2; exit 4"
        done = up.kubectl(
            "run", "-i", "--rm", "--restart=Never", "--image=busybox", "real",
            "--", "sh", "-c", script, stdin="", check=False,
        )  # fmt: skip
        assert done.returncode == 4, done.stderr
        assert done.stdout.count("before\n") == 1, done.stdout
        assert done.stdout.count("after\n") == 1, done.stdout
        assert FALLBACK not in done.stderr
        # stderr comes through the attach's own channel, to kubectl's stderr.
        assert "to stderr\n" in done.stderr and "to stderr" not in done.stdout
