"""Bad input and faults on a real node: upstream's reasons and events, and nothing leaked.

One kubelet over the oci runtime, its pods on a pod network in a node
network namespace the test makes (as test_oci_network.py), images from a
private registry (as test_oci_images_e2e.py), and runc behind a wrapper
that fails or slows ``runc create`` for chosen containers. A healthy
"canary" pod runs from the start to the end, through every fault and a
kubelet restart, and must still answer exec at the end. After each
scenario its pods are deleted and the node's leak counts
(``kajitori.testing.leaks``) must be back to the canary's baseline; at the
end, with the canary gone too, to nothing.

The tests share one node (module-scoped fixture and event loop) and run in
file order; the missing key, the missing executable and the ImagePullBackOff
messages are also checked in smaller tests elsewhere (test_oci_volumes.py,
test_oci_runtime.py, test_oci_images_e2e.py): here they meet the API, the
events and the leak counts.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tests.kubelet.runtimes.oci import helpers

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.controllers import manager
from kajitori.kubelet import kubelet
from kajitori.kubelet.images import puller, registry, store
from kajitori.kubelet.runtimes.oci import runtime, sandbox_network, store_images
from kajitori.testing import images, leaks, netns
from kajitori.testing import registry as test_registry

REASON = helpers.REASON or netns.skip_reason() or test_registry.available()
if REASON is None and not Path("/usr/lib/cni/bridge").exists():
    REASON = "the CNI plugins are not installed (containernetworking-plugins)"
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
    pytest.mark.asyncio(loop_scope="module"),
]

Object = dict[str, Any]
NODE = "kajitori-worker"
RUNC_FAILURE = "kajitori-test: injected failure of runc create"
# runc behind a wrapper: ``create`` of a container named "runcfail" fails with a message, and
# of one named "slowstart" waits 2 s the first time (while a marker file exists).
RUNC_WRAPPER = """#!/bin/sh
for last; do :; done
case " $* " in
  *" create "*)
    case "$last" in
      *-runcfail-*) echo "{message}" >&2; exit 1 ;;
      *-slowstart-*) if [ -e "{marker}" ]; then rm -f "{marker}"; sleep 2; fi ;;
    esac ;;
esac
exec {runc} "$@"
"""
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


@dataclasses.dataclass
class Node:
    """The shared node: API client, kubelet, runtime and what it is compared with."""

    admin: rest.Client
    host: kubelet.KubeletHost
    oci: runtime.OciRuntime
    provider: store_images.StoreImages
    options: sandbox_network.NetworkOptions
    root: Path
    runc: str
    node_netns: str
    netns_prefix: str
    image: str
    registry: test_registry.Registry
    marker: Path
    namespaces: netns.Namespaces
    baseline: leaks.Counts | None = None
    canary: Object | None = None

    def new_runtime(self) -> runtime.OciRuntime:
        network = sandbox_network.SandboxNetwork(self.options)
        return runtime.OciRuntime(self.root, self.provider, network=network, runc_binary=self.runc)

    async def counts(self) -> leaks.Counts:
        return await leaks.count(
            self.root,
            cni_state=self.options.state_dir,
            node_netns=self.node_netns,
            netns_prefix=self.netns_prefix,
        )


async def _api_server(directory: Path) -> tuple[APIServerProcess, rest.Client]:
    """An API server with node IPAM, as tests/kubelet/conftest.py's ``admin`` fixture."""
    process = APIServerProcess(APIServerConfig(data_dir=directory, port=0))
    await process.start()
    assert process.http is not None and process.pki is not None
    client = rest.Client.in_process(process.http.app, client_cert_pem=process.pki.admin.cert_pem)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await client.create(rest.SERVICEACCOUNTS, account, namespace="default")
    root_ca = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "unused"}}
    await client.create(rest.CONFIGMAPS, root_ca, namespace="default")
    return process, client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    """The node, with the canary Running and the baseline counted; nothing left at the end."""
    base = tmp_path_factory.mktemp("faults")
    marker = base / "slow-once"
    wrapper = base / "runc"
    wrapper.write_text(
        RUNC_WRAPPER.format(message=RUNC_FAILURE, marker=marker, runc=shutil.which("runc"))
    )
    wrapper.chmod(0o755)
    process, admin = await _api_server(base / "api")
    controllers = manager.ControllerManager(admin, controllers=["nodeipam"])
    controllers.start()
    (base / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    with test_registry.Registry.start(base / "registry", auth="htpasswd") as private:
        private.push("demo/busybox", "1.0", images.busybox_image())
        client = registry.RegistryClient(verify=private.certs.client_context(), timeout=2.0)
        manager_ = puller.ImageManager(store.ImageStore(base / "images"), client)
        provider = store_images.StoreImages(manager_, resync=1.0)
        async with netns.Namespaces() as namespaces:
            node_ns = await namespaces.add("node")
            options = sandbox_network.NetworkOptions(
                host_netns=node_ns,
                state_dir=base / "cni",
                host_resolv_conf=base / "resolv.conf",
            )
            found = Node(
                admin=admin,
                host=None,  # type: ignore[arg-type]  # set just below
                oci=None,  # type: ignore[arg-type]
                provider=provider,
                options=options,
                root=base / "oci",
                runc=str(wrapper),
                node_netns=node_ns,
                netns_prefix=namespaces.prefix,
                namespaces=namespaces,
                image=f"{private.host}/demo/busybox:1.0",
                registry=private,
                marker=marker,
            )
            found.oci = found.new_runtime()
            found.host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), found.oci)
            await found.host.start()
            try:
                await admin.create(rest.SECRETS, private.pull_secret(), namespace="default")
                body = pod(found, "canary", restart_policy="Always")
                body["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
                await admin.create(rest.PODS, body, namespace="default")
                found.canary = await until(admin, "canary", lambda p: phase(p) == "Running")
                found.baseline = await found.counts()
                yield found
            finally:
                await found.host.stop()
                uids = found.oci.get_pods()
                for uid in uids:
                    found.oci.remove_pod(uid)
                await found.oci.aclose()
                if hasattr(found.oci, "volumes"):
                    await found.oci.volumes.aclose()
                await client.aclose()
                left = {uid: await helpers.leaks(found.oci, uid) for uid in uids}
                assert all(f.empty() for f in left.values()), left
                final = await found.counts()
        await controllers.stop()
        await admin.aclose()
        await process.stop()
    nothing = leaks.Counts(
        runc=0,
        shims=0,
        mounts=0,
        ns_mounts=0,
        overlays=0,
        netns=1,
        pod_dirs=0,
        ipam=0,
        cni_cache=0,
        veths=0,
    )  # the node netns itself was still there when counted
    assert final == nothing, final


# ----- helpers -----------------------------------------------------------------


def pod(
    node: Node, name: str, *, script: str = LOOP, restart_policy: str = "Never", **fields: Any
) -> Object:
    container = {"name": "c", "image": node.image, "command": ["sh", "-c", script], **fields}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 0,
            "containers": [container],
        },
    }


def phase(found: Object) -> str:
    return str((found.get("status") or {}).get("phase") or "")


def container_state(found: Object, name: str = "c") -> Object:
    for status in (found.get("status") or {}).get("containerStatuses") or ():
        if status["name"] == name:
            return dict(status)
    return {}


def waiting(found: Object, name: str = "c") -> Object:
    return dict(container_state(found, name).get("state", {}).get("waiting") or {})


def terminated(found: Object, name: str = "c") -> Object:
    return dict(container_state(found, name).get("state", {}).get("terminated") or {})


async def until(
    admin: rest.Client, name: str, check: Callable[[Object], Any], *, timeout: float = 20.0
) -> Object:
    """The pod once ``check`` holds; fails with its status after ``timeout`` seconds."""
    found: Object = {}

    async def reached() -> bool:
        nonlocal found
        found = await admin.get(rest.PODS, name, namespace="default")
        return bool(check(found))

    try:
        await poll(reached, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"pod {name}: {found.get('status')}") from None
    return found


async def poll(check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def events_of(admin: rest.Client, name: str) -> set[tuple[str, str, str]]:
    found = await admin.list(rest.EVENTS, namespace="default")
    return {
        (e["type"], e["reason"], e["message"])
        for e in found["items"]
        if e["involvedObject"].get("name") == name and e["source"].get("component") == "kubelet"
    }


async def recorded(admin: rest.Client, name: str, wanted: set[tuple[str, str, str]]) -> None:
    """Wait until the kubelet recorded every event in ``wanted`` about pod ``name``."""
    seen: set[tuple[str, str, str]] = set()

    async def complete() -> bool:
        nonlocal seen
        seen = await events_of(admin, name)
        return wanted <= seen

    try:
        await poll(complete, timeout=15.0)
    except AssertionError:
        raise AssertionError(f"missing {wanted - seen}; seen {seen}") from None


async def delete_and_count(node: Node, *names: str) -> None:
    """Delete the pods; once they are gone the node holds what it held with the canary alone."""
    uids = []
    for name in names:
        found = await node.admin.get(rest.PODS, name, namespace="default")
        uids.append(found["metadata"]["uid"])
        await node.admin.delete(rest.PODS, name, namespace="default", grace_period_seconds=0)

    async def gone() -> bool:
        for name in names:
            try:
                await node.admin.get(rest.PODS, name, namespace="default")
                return False
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise
        return not set(uids) & set(node.oci.get_pods())

    await poll(gone)
    counts: leaks.Counts | None = None

    async def back_to_baseline() -> bool:
        nonlocal counts
        counts = await node.counts()
        return counts == node.baseline

    try:
        await poll(back_to_baseline, timeout=15.0)
    except AssertionError:
        raise AssertionError(f"leaked: {counts} against {node.baseline}") from None
    for uid in uids:  # and nothing of theirs in particular (cgroups are counted per pod only)
        left = await helpers.leaks(node.oci, uid)
        assert not (left.runc or left.mounts or left.cgroups or left.shims), left
        assert not (node.root / "pods" / uid).exists()
        assert not list((node.root / "logs").glob(f"*_{uid}")), "logs left"


# ----- the scenarios -----------------------------------------------------------


async def test_the_baseline_is_the_canary_alone(node: Node) -> None:
    """One container, shim, sandbox (3 pinned namespaces), IP and veth: the canary's."""
    assert node.baseline is not None
    assert (node.baseline.runc, node.baseline.shims, node.baseline.ns_mounts) == (1, 1, 3)
    assert (node.baseline.overlays, node.baseline.pod_dirs, node.baseline.netns) == (1, 1, 1)
    assert (node.baseline.ipam, node.baseline.veths) == (1, 1)


async def test_an_invalid_image_reference_is_invalid_image_name(node: Node) -> None:
    bad = "busybox::1"
    body = pod(node, "badref")
    body["spec"]["containers"][0]["image"] = bad
    await node.admin.create(rest.PODS, body, namespace="default")
    found = await until(
        node.admin, "badref", lambda p: waiting(p).get("reason") == "InvalidImageName"
    )
    message = (
        f'Failed to apply default image tag "{bad}": couldn\'t parse image name "{bad}": '
        "invalid reference format"
    )
    assert waiting(found)["message"] == message
    assert phase(found) == "Pending"
    await recorded(node.admin, "badref", {("Warning", "InspectFailed", message)})
    await delete_and_count(node, "badref")


async def test_a_missing_secret_volume_waits_and_a_missing_key_is_a_config_error(
    node: Node,
) -> None:
    """FailedMount keeps the pod ContainerCreating; a missing key is CreateContainerConfigError."""
    volume = pod(node, "novolume", volumeMounts=[{"name": "v", "mountPath": "/v"}])
    volume["spec"]["volumes"] = [{"name": "v", "secret": {"secretName": "absent"}}]
    secret = {"metadata": {"name": "db"}, "data": {"user": base64.b64encode(b"u").decode()}}
    await node.admin.create(rest.SECRETS, secret, namespace="default")
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    key = pod(node, "nokey", env=env)
    await node.admin.create(rest.PODS, volume, namespace="default")
    await node.admin.create(rest.PODS, key, namespace="default")
    mount_message = 'MountVolume.SetUp failed for volume "v" : secret "absent" not found'
    await recorded(node.admin, "novolume", {("Warning", "FailedMount", mount_message)})
    found = await node.admin.get(rest.PODS, "novolume", namespace="default")
    assert (phase(found), waiting(found).get("reason")) == ("Pending", "ContainerCreating")
    found = await until(
        node.admin, "nokey", lambda p: waiting(p).get("reason") == "CreateContainerConfigError"
    )
    key_message = "couldn't find key password in Secret default/db"
    assert waiting(found)["message"] == key_message
    await recorded(node.admin, "nokey", {("Warning", "Failed", f"Error: {key_message}")})
    await delete_and_count(node, "novolume", "nokey")


async def test_an_unreachable_registry_and_wrong_credentials_fail_the_pull(node: Node) -> None:
    """ErrImagePull with containerd's dial and 401 messages, then ImagePullBackOff."""
    port = test_registry.free_port()  # nothing listens there
    unreachable = f"127.0.0.1:{port}/demo/busybox:1.0"
    body = pod(node, "unreachable")
    body["spec"]["containers"][0]["image"] = unreachable
    await node.admin.create(rest.PODS, body, namespace="default")
    wrong = node.registry.pull_secret("wrongcred")
    config = node.registry.docker_config()
    entry = config["auths"][node.registry.host]
    entry["password"] = "not-the-password"
    entry["auth"] = base64.b64encode(f"{entry['username']}:not-the-password".encode()).decode()
    wrong["data"][".dockerconfigjson"] = base64.b64encode(json.dumps(config).encode()).decode()
    await node.admin.create(rest.SECRETS, wrong, namespace="default")
    denied = pod(node, "denied", imagePullPolicy="Always")
    denied["spec"]["imagePullSecrets"] = [{"name": "wrongcred"}]
    await node.admin.create(rest.PODS, denied, namespace="default")

    found = await until(
        node.admin, "unreachable", lambda p: waiting(p).get("reason") == "ErrImagePull"
    )
    resolve = f'failed to pull and unpack image "{unreachable}": failed to resolve reference "{unreachable}"'
    assert waiting(found)["message"] == (
        f'{resolve}: failed to do request: Get "https://127.0.0.1:{port}/v2/demo/busybox/'
        f'manifests/1.0": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )
    pull_error = waiting(found)["message"]
    found = await until(
        node.admin, "unreachable", lambda p: waiting(p).get("reason") == "ImagePullBackOff"
    )
    assert waiting(found)["message"] == (
        f'Back-off pulling image "{unreachable}": ErrImagePull: {pull_error}'
    )

    found = await until(node.admin, "denied", lambda p: waiting(p).get("reason") == "ErrImagePull")
    image = node.image
    assert waiting(found)["message"] == (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        f"unexpected status from GET request to https://{node.registry.host}/v2/demo/busybox/"
        "manifests/1.0: 401 Unauthorized"
    )
    await recorded(
        node.admin,
        "denied",
        {
            ("Warning", "Failed", f'Failed to pull image "{image}": {waiting(found)["message"]}'),
            ("Warning", "Failed", "Error: ErrImagePull"),
        },
    )
    await delete_and_count(node, "unreachable", "denied")


async def test_two_containers_binding_one_port_the_second_exits_with_error(node: Node) -> None:
    """Containers of a pod share its network namespace: the second bind fails."""
    body = pod(node, "ports", script="exec httpd -f -p 8080")
    second = dict(body["spec"]["containers"][0], name="second")
    second["command"] = ["sh", "-c", "sleep 1; exec httpd -f -p 8080"]
    body["spec"]["containers"].append(second)
    await node.admin.create(rest.PODS, body, namespace="default")
    found = await until(node.admin, "ports", lambda p: terminated(p, "second"))
    assert (terminated(found, "second")["reason"], terminated(found, "second")["exitCode"]) == (
        "Error",
        1,
    )
    assert "running" in container_state(found, "c")["state"]
    log = node.oci.log_path(found["metadata"]["uid"], "second", 0).read_text()
    assert "Address in use" in log or "Address already in use" in log, log
    await delete_and_count(node, "ports")


async def test_a_host_port_taken_by_another_pod_is_rejected_at_admission(node: Node) -> None:
    """upstream's kubelet admission: phase Failed, reason NodePorts, and a Warning event."""
    ports = [{"containerPort": 8080, "hostPort": 18080}]
    await node.admin.create(rest.PODS, pod(node, "first", ports=ports), namespace="default")
    await until(node.admin, "first", lambda p: phase(p) == "Running")
    await node.admin.create(rest.PODS, pod(node, "second", ports=ports), namespace="default")
    found = await until(node.admin, "second", lambda p: phase(p) == "Failed")
    message = (
        "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
    )
    assert found["status"]["reason"] == "NodePorts"
    assert found["status"]["message"] == f"Pod was rejected: {message}"
    assert found["metadata"]["uid"] not in node.oci.get_pods()  # it never reached the runtime
    await recorded(node.admin, "second", {("Warning", "NodePorts", message)})
    first = await node.admin.get(rest.PODS, "first", namespace="default")
    assert phase(first) == "Running"
    await delete_and_count(node, "first", "second")


async def test_a_container_that_exits_at_once_goes_into_crash_loop_back_off(node: Node) -> None:
    body = pod(node, "crash", script="echo dying; exit 3", restart_policy="Always")
    created = await node.admin.create(rest.PODS, body, namespace="default")
    found = await until(
        node.admin, "crash", lambda p: waiting(p).get("reason") == "CrashLoopBackOff"
    )
    named = f"crash_default({created['metadata']['uid']})"
    assert waiting(found)["message"] == f"back-off 10s restarting failed container=c pod={named}"
    last = container_state(found)["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("Error", 3)
    assert phase(found) == "Running"
    await recorded(
        node.admin,
        "crash",
        {("Warning", "BackOff", f"Back-off restarting failed container c in pod {named}")},
    )
    await delete_and_count(node, "crash")


async def test_a_runc_failure_is_a_start_error_with_runcs_message(node: Node) -> None:
    body = pod(node, "broken")
    body["spec"]["containers"][0]["name"] = "runcfail"
    await node.admin.create(rest.PODS, body, namespace="default")
    found = await until(node.admin, "broken", lambda p: phase(p) == "Failed")
    state = terminated(found, "runcfail")
    assert (state["reason"], state["exitCode"], state["message"]) == (
        "StartError",
        128,
        RUNC_FAILURE,
    )
    await recorded(node.admin, "broken", {("Warning", "Failed", f"Error: {RUNC_FAILURE}")})
    await delete_and_count(node, "broken")


async def test_a_kubelet_killed_mid_start_is_replaced_and_the_pod_runs_once(node: Node) -> None:
    """The kubelet dies inside ``runc create``; a new one over the same root starts it cleanly.

    In process, "killed" is: the kubelet stops talking to the API and its
    runtime's workers are abandoned mid-call (no close, no clean-up), so the
    shim finishes ``runc create`` with nobody left to ``runc start`` it.
    Meanwhile a sandbox the runtime no longer knows kept its CNI attachment
    (IP reservation and cached result): the new runtime releases it at start.
    """
    node.marker.touch()
    body = pod(node, "restarted")
    body["spec"]["containers"][0]["name"] = "slowstart"
    created = await node.admin.create(rest.PODS, body, namespace="default")
    uid = created["metadata"]["uid"]
    shim_pid = node.root / "pods" / uid / "containers" / "slowstart" / "0" / "shim.pid"
    await helpers.wait_for(shim_pid.exists, timeout=20.0, what="the shim inside runc create")
    old_host, old = node.host, node.oci
    await old_host.stop()
    old.runs.close()
    for record in old._pods.values():
        if record.task is not None:
            record.task.cancel()
    await old.volumes.aclose()
    await leave_a_stale_attachment(node, old)

    node.oci = node.new_runtime()
    node.host = kubelet.KubeletHost(node.admin, kubelet_cmd.node_configs(1), node.oci)
    await node.host.start()
    found = await until(
        node.admin, "restarted", lambda p: "running" in container_state(p, "slowstart")["state"]
    )
    assert phase(found) == "Running"
    status = container_state(found, "slowstart")
    # upstream restarts a container left created (never started) whatever the policy.
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"

    async def one_container() -> bool:
        ids = [c["id"] for c in await node.oci.runc.list() if str(c["id"]).startswith(uid)]
        return ids == [f"{uid}-slowstart-1"]

    await poll(one_container, timeout=15.0)
    assert len(await node_veths(node)) == 2  # the canary's and this pod's veth
    await delete_and_count(node, "restarted")


async def leave_a_stale_attachment(node: Node, old: runtime.OciRuntime) -> None:
    """An ADDed sandbox whose namespace and pod are gone, as if removed while no kubelet ran."""
    assert old.network is not None
    stale = await node.namespaces.add("stale")
    cidr = (await node.admin.get(rest.NODES, NODE))["spec"]["podCIDR"]
    body = {"metadata": {"name": "gone", "namespace": "default"}, "spec": {}}
    await old.network.setup(body, "stale-sandbox", Path(netns.Namespaces.path(stale)), cidr)
    await netns.run("ip", "netns", "del", stale)
    node.namespaces.names.remove(stale)
    cached = node.options.state_dir / "results" / "kajitori-stale-sandbox-eth0.json"
    assert cached.exists()  # with its IP reservation: released by the new runtime's GC


async def node_veths(node: Node) -> list[str]:
    out = await netns.run(
        "ip", "netns", "exec", node.node_netns, "ip", "-o", "link", "show", "type", "veth"
    )
    return out.splitlines()


async def test_the_canary_kept_running_and_answers_exec(node: Node) -> None:
    """Through every fault and the kubelet restart: same container, no restart, exec works."""
    assert node.canary is not None
    before = container_state(node.canary)
    now = await node.admin.get(rest.PODS, "canary", namespace="default")
    after = container_state(now)
    assert phase(now) == "Running"
    assert (after["containerID"], after["restartCount"]) == (before["containerID"], 0)
    code, out, _ = await node.oci.exec(now["metadata"]["uid"], "c", ["echo", "alive"])
    assert (code, out) == (0, b"alive\n")
    await node.admin.delete(rest.PODS, "canary", namespace="default", grace_period_seconds=0)
    uid = now["metadata"]["uid"]
    await helpers.wait_for(lambda: uid not in node.oci.get_pods(), what="canary removed")
