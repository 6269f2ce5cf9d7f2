"""Streams end to end with the real kubectl and the official Python client.

kubectl → API server (pods/log, pods/exec, pods/attach over WebSocket) →
the node's kubelet API over HTTPS (client certificate, SubjectAccessReview)
→ a fake streaming runtime whose "containers" are local processes and CRI
log files the test writes (tests/kubelet/fake_streaming.py). One cluster
for the module's tests, in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.stream import portforward, stream
from tests.kubelet.fake_streaming import StreamingCluster, kubectl

from kajitori.client import rest
from kajitori.testing.cluster import KajitoriCluster, wait_until

T0 = 1_700_000_000.0


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[StreamingCluster]:
    async with StreamingCluster(tmp_path) as running:
        yield running


async def test_logs(cluster: StreamingCluster) -> None:
    kc = cluster.kubeconfig
    await cluster.run_pod("two", containers=("app", "sidecar"))
    cluster.fake.write_log("two", "app", [("stdout", f"app {i}", T0 + i) for i in range(4)])
    cluster.fake.write_log("two", "sidecar", [("stderr", "sidecar says hi", T0)])

    code, out, err = await kubectl(kc, "logs", "two", "-c", "app", "--tail", "2")
    assert (code, out) == (0, "app 2\napp 3\n"), err
    code, out, _ = await kubectl(kc, "logs", "two", "-c", "sidecar", "--timestamps")
    assert out == "2023-11-14T22:13:20.000000000Z sidecar says hi\n"
    code, out, _ = await kubectl(kc, "logs", "two", "--all-containers", "--tail", "1")
    assert sorted(out.splitlines()) == ["app 3", "sidecar says hi"]
    # Without -c kubectl picks the first container and says so.
    code, out, err = await kubectl(kc, "logs", "two", "--tail", "1")
    assert out == "app 3\n" and 'Defaulted container "app" out of: app, sidecar' in err
    # The API itself wants a container name when there are several.
    code, _, err = await kubectl(kc, "get", "--raw", "/api/v1/namespaces/default/pods/two/log")
    assert code == 1
    assert "a container name must be specified for pod two, choose one of: [app sidecar]" in err
    code, _, err = await kubectl(kc, "logs", "two", "-c", "nope")
    assert "container nope is not valid for pod two" in err
    code, _, err = await kubectl(kc, "logs", "two", "-c", "app", "--previous")
    assert code == 1
    assert 'previous terminated container "app" in pod "two" not found' in err


async def test_logs_of_a_waiting_and_a_restarted_container(cluster: StreamingCluster) -> None:
    kc = cluster.kubeconfig
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "late"},
        "spec": {"nodeName": "kajitori-worker", "containers": [{"name": "c", "image": "x"}]},
    }
    await cluster.admin.create(rest.PODS, pod, namespace="default")
    code, _, err = await kubectl(kc, "logs", "late")
    assert code == 1
    assert 'container "c" in pod "late" is waiting to start: ContainerCreating' in err
    # A container that exits is backing off; --previous shows its last run.
    crashing = {
        **pod,
        "metadata": {
            "name": "crash",
            "annotations": {"kajitori.io/simulate-runtime-seconds": "0.2"},
        },
    }
    await cluster.admin.create(rest.PODS, crashing, namespace="default")
    await _until_status(cluster, "crash", lambda s: (s.get("lastState") or {}).get("terminated"))
    cluster.fake.write_log("crash", "c", [("stdout", "last words", T0)])
    code, out, err = await kubectl(kc, "logs", "crash", "--previous")
    assert (code, out) == (0, "last words\n"), err


async def test_logs_follow(cluster: StreamingCluster) -> None:
    await cluster.run_pod("tail")
    cluster.fake.write_log("tail", "main", [("stdout", "before")])
    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "logs",
        "-f",
        "tail",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
    )
    assert proc.stdout is not None
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"before\n"
        cluster.fake.write_log("tail", "main", [("stdout", "after")])
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"after\n"
        # The container stops: the kubelet ends the stream and kubectl exits.
        cluster.running.discard(("tail", "main"))
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_exec(cluster: StreamingCluster) -> None:
    kc = cluster.kubeconfig
    await cluster.run_pod("shell")
    assert await kubectl(kc, "exec", "shell", "--", "echo", "hi") == (0, "hi\n", "")
    code, out, err = await kubectl(kc, "exec", "shell", "--", "sh", "-c", "echo partial; exit 3")
    assert (code, out) == (3, "partial\n")
    assert "command terminated with exit code 3" in err
    code, out, _ = await kubectl(kc, "exec", "-i", "shell", "--", "cat", stdin=b"through stdin\n")
    assert (code, out) == (0, "through stdin\n")
    code, _, err = await kubectl(kc, "exec", "shell", "-c", "nope", "--", "true")
    assert code == 1 and "container nope is not valid for pod shell" in err


async def test_exec_needs_create_permission(cluster: StreamingCluster) -> None:
    kc = cluster.kubeconfig
    await cluster.run_pod("guarded")
    role = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: getter}\n"
        "rules:\n- {apiGroups: [''], resources: [pods, pods/exec], verbs: [get]}\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: getter}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: getter}\n"
        "subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]\n"
    )
    assert (await kubectl(kc, "apply", "-f", "-", stdin=role.encode()))[0] == 0
    code, _, err = await kubectl(kc, "--as", "jane", "exec", "guarded", "--", "true")
    assert code == 1
    assert 'User "jane" cannot create resource "pods/exec"' in err


async def test_cp_and_attach(cluster: StreamingCluster, tmp_path: Path) -> None:
    kc = cluster.kubeconfig
    await cluster.run_pod("files")
    source = tmp_path / "source.txt"
    source.write_text("copied through exec and tar\n")
    code, _, err = await kubectl(kc, "cp", f"files:{source}", str(tmp_path / "copy.txt"))
    assert code == 0, err
    assert (tmp_path / "copy.txt").read_text() == "copied through exec and tar\n"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "echoer"},
        "spec": {
            "nodeName": "kajitori-worker",
            "containers": [{"name": "main", "image": "x", "command": ["cat"], "stdin": True}],
        },
    }
    await cluster.admin.create(rest.PODS, pod, namespace="default")
    await _until_status(cluster, "echoer", lambda s: "running" in (s.get("state") or {}))
    code, out, err = await kubectl(kc, "attach", "-i", "echoer", stdin=b"attached\n")
    assert code == 0, err
    assert "attached\n" in out


# The client's preloaded exec never closes its WebSocket (kubernetes/stream/ws_client.py); a
# garbage collection during this test may find it, so its ResourceWarning is expected here.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_python_client_stream(cluster: StreamingCluster) -> None:
    await cluster.run_pod("py")

    api_client = k8s_config.new_client_from_config(str(cluster.kubeconfig))
    api = k8s.CoreV1Api(api_client)

    def run() -> tuple[str, str, int | None]:
        client = stream(
            api.connect_get_namespaced_pod_exec,
            "py",
            "default",
            command=["sh", "-c", "read line; echo got $line; echo err >&2; exit 5"],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
        try:
            client.write_stdin("value\n")
            client.run_forever(timeout=10)
            return client.read_stdout(), client.read_stderr(), client.returncode
        finally:
            client.close()

    assert await asyncio.to_thread(run) == ("got value\n", "err\n", 5)
    # The preloaded form returns stdout and stderr as one string.
    out = await asyncio.to_thread(
        stream,
        api.connect_get_namespaced_pod_exec,
        "py",
        "default",
        command=["echo", "preloaded"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    api_client.close()
    assert out == "preloaded\n"
    # The client's preloaded form never closes its WebSocket (kubernetes/stream/ws_client.py):
    # collect it here rather than in some later test's warning check.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def _until_status(cluster: StreamingCluster, name: str, check) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pod = await cluster.admin.get(rest.PODS, name, namespace="default")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if statuses and check(statuses[0]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"pod {name}: {pod.get('status')}")


async def test_port_forward(cluster: StreamingCluster) -> None:
    """kubectl tunnels SPDY in a WebSocket; the fake runtime's pod network is loopback."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await cluster.run_pod("forwarded")
    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "port-forward",
        "forwarded",
        f":{port}",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.endswith(f"-> {port}\n".encode())
        local = int(line.split(b"127.0.0.1:")[1].split(b" ")[0])
        for text in (b"first", b"second"):  # one SPDY stream pair per connection
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(text)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 5) == b"echo:" + text
            writer.close()
            await writer.wait_closed()
    finally:
        proc.terminate()
        await proc.wait()
        server.close()
        await server.wait_closed()


async def test_python_client_port_forward(cluster: StreamingCluster) -> None:
    """The Python client's portforward() speaks v4.channel.k8s.io: a data and an error channel."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await cluster.run_pod("pyforward")

    def forward() -> tuple[bytes, str | None]:
        api_client = k8s_config.new_client_from_config(str(cluster.kubeconfig))
        api = k8s.CoreV1Api(api_client)
        forwarder = portforward(
            api.connect_get_namespaced_pod_portforward, "pyforward", "default", ports=str(port)
        )
        try:
            sock = forwarder.socket(port)
            sock.setblocking(True)
            sock.sendall(b"from python")
            data = sock.recv(100)
            sock.close()
            return data, forwarder.error(port)
        finally:
            forwarder.close()
            api_client.close()

    try:
        assert await asyncio.wait_for(asyncio.to_thread(forward), 20) == (b"echo:from python", None)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux script for a pty")
async def test_exec_with_a_terminal(cluster: StreamingCluster) -> None:
    """``kubectl exec -it`` from a terminal: tty=true, a resize message, the exit code."""
    await cluster.run_pod("terminal")
    proc = await asyncio.create_subprocess_exec(
        "script",
        "-qec",
        "kubectl exec -it terminal -- sh -c 'sleep 0.5; echo on a tty; exit 2'",
        "/dev/null",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(b""), 20)
    assert proc.returncode == 2
    assert out.startswith(b"on a tty\n")
    # kubectl sends the terminal size as it connects (the command outlives it).
    assert cluster.fake.processes[-1].resizes


def test_kajitori_up_serves_kubelet_apis(tmp_path: Path) -> None:
    """``kajitori up --nodes 1``: the node listens on a loopback InternalIP; simulated streams."""
    with KajitoriCluster(tmp_path / "up", extra_args=["--nodes", "1"]) as up:
        ip = up.kubectl("get", "node", "kajitori-worker", "-o", IP_PATH).stdout
        assert ip == "127.18.0.2"
        assert (
            up.kubectl("get", "--raw", "/api/v1/nodes/kajitori-worker/proxy/healthz").stdout == "ok"
        )
        up.kubectl("run", "sim", "--image=busybox")
        wait_until(
            lambda: (
                up.kubectl("get", "pod", "sim", "-o", "jsonpath={.status.phase}").stdout
                == "Running"
            ),
            what="pod sim running",
        )
        logs = up.kubectl("logs", "sim").stdout
        assert logs == "kajitori simulated container sim of pod default/sim started (run 0)\n"
        refused = up.kubectl("exec", "sim", "--", "true", check=False)
        assert refused.returncode == 1
        assert "the simulated runtime runs no processes" in refused.stderr


IP_PATH = "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}"


OCI_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: real}
spec:
  nodeName: kajitori-worker
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "echo hello from $(hostname); trap 'exit 0' TERM; while true; do sleep 0.1; done"]
"""


def test_oci_containers_logs_and_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--runtime oci``: kubectl logs reads runc's CRI log; exec runs inside the container."""
    from tests.kubelet.runtimes.oci import helpers

    if helpers.REASON is not None:
        pytest.skip(helpers.REASON)
    monkeypatch.setenv("KAJITORI_OCI_ROOT", str(tmp_path / "oci"))
    # No registry here: busybox comes from the host's busybox-static.
    monkeypatch.setenv("KAJITORI_OCI_IMAGES", "busybox")
    from kajitori.testing import node_network  # a node network of its own (decision 0031)

    network = node_network.up_args(node_network.cluster_name(), node_network.free_node_cidr())
    with KajitoriCluster(
        tmp_path / "up", extra_args=["--nodes=1", "--runtime=oci", *network]
    ) as up:
        up.wait_for_namespace_defaults("default")
        up.kubectl("apply", "-f", "-", stdin=OCI_POD)
        wait_until(
            lambda: up.kubectl("logs", "real", check=False).stdout == "hello from real\n",
            timeout=30,
            what="the container's first line",
        )
        inside = up.kubectl("exec", "real", "--", "sh", "-c", "hostname; exit 4", check=False)
        assert (inside.returncode, inside.stdout) == (4, "real\n")
        assert up.kubectl("exec", "-i", "real", "--", "cat", stdin="typed\n").stdout == "typed\n"
        up.kubectl("delete", "pod", "real", "--timeout=30s")


async def test_attach_to_a_completed_pod_says_why(cluster: StreamingCluster) -> None:
    """kubectl retries a refused WebSocket with SPDY: that answer must carry the real reason."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "done",
            "annotations": {"kajitori.io/simulate-runtime-seconds": "0.1"},
        },
        "spec": {
            "nodeName": "kajitori-worker",
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x"}],
        },
    }
    await cluster.admin.create(rest.PODS, pod, namespace="default")
    deadline = time.monotonic() + 15
    while (await cluster.admin.get(rest.PODS, "done", namespace="default")).get("status", {}).get(
        "phase"
    ) != "Succeeded":
        assert time.monotonic() < deadline, "pod never Succeeded"
        await asyncio.sleep(0.05)
    # kubectl checks the phase itself first; a request that raced the pod's end reaches the
    # server, here as a plain (non-upgrade) request, which is what kubectl's SPDY retry is to us.
    path = "/api/v1/namespaces/default/pods/done/attach?stdout=true"
    code, _, err = await kubectl(cluster.kubeconfig, "get", "--raw", path)
    assert code == 1
    assert "cannot attach to a container in a completed pod; current phase is Succeeded" in err
    assert "Upgrade request required" not in err
