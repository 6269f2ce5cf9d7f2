"""A kubelet over the oci runtime pulling from a real registry: pull secrets, errors, events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers
from tests.kubelet.test_kubelet import eventually

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet
from kajitori.kubelet.images import puller, registry, store
from kajitori.kubelet.runtimes.oci import runtime, store_images
from kajitori.testing import images
from kajitori.testing import registry as test_registry

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]
NODE = "kajitori-worker"


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[test_registry.Registry]:
    """docker-registry over TLS with htpasswd auth, holding demo/busybox:1.0."""
    reason = test_registry.available()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("registry")
    with test_registry.Registry.start(directory, auth="htpasswd") as running:
        running.push("demo/busybox", "1.0", images.busybox_image())
        yield running


@pytest.fixture
async def host(
    admin: rest.Client, tmp_path: Path, private_registry: test_registry.Registry
) -> AsyncIterator[tuple[kubelet.KubeletHost, runtime.OciRuntime]]:
    """A kubelet whose oci runtime pulls into a fresh store; nothing may be left behind."""
    client = registry.RegistryClient(verify=private_registry.certs.client_context())
    manager = puller.ImageManager(store.ImageStore(tmp_path / "images"), client)
    oci = runtime.OciRuntime(
        tmp_path / "oci", store_images.StoreImages(manager, resync=1.0), backoff_base=0.2
    )
    running = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci)
    await running.start()
    try:
        yield running, oci
    finally:
        await running.stop()
        uids = oci.get_pods()
        for uid in uids:
            oci.remove_pod(uid)
        await oci.aclose()
        await client.aclose()
        left = {uid: await helpers.leaks(oci, uid) for uid in uids}
        assert all(found.empty() for found in left.values()), left


def pod(name: str, image: str, **spec: Any) -> Object:
    # No command: the image's Cmd (sh) is replaced by args, its Env reaches the process.
    container = {"name": "c", "image": image, "args": ["sh", "-c", 'test "$IMAGE_ARCH" = amd64']}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "restartPolicy": "Never", "containers": [container], **spec},
    }


async def events_of(admin: rest.Client, name: str) -> list[tuple[str, str, str]]:
    found = await admin.list(rest.EVENTS, namespace="default")
    return [
        (e["type"], e["reason"], e["message"])
        for e in found["items"]
        if e["involvedObject"].get("name") == name and e["source"].get("component") == "kubelet"
    ]


async def test_a_pod_with_a_dockerconfigjson_pull_secret_pulls_and_runs_the_image(
    admin: rest.Client,
    host: tuple[kubelet.KubeletHost, runtime.OciRuntime],
    private_registry: test_registry.Registry,
) -> None:
    """The secret's credentials pull the image; its Env and args-replaced Cmd run to exit 0."""
    await admin.create(rest.SECRETS, private_registry.pull_secret(), namespace="default")
    image = f"{private_registry.host}/demo/busybox:1.0"
    body = pod("pulled", image, imagePullSecrets=[{"name": "regcred"}])
    await admin.create(rest.PODS, body, namespace="default")

    async def succeeded() -> Object | None:
        found = await admin.get(rest.PODS, "pulled", namespace="default")
        return found if found.get("status", {}).get("phase") == "Succeeded" else None

    try:
        found = await eventually(succeeded, timeout=30.0)
    except AssertionError:
        now = await admin.get(rest.PODS, "pulled", namespace="default")
        raise AssertionError((now.get("status"), await events_of(admin, "pulled"))) from None
    (status,) = found["status"]["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 0

    async def pulled_events() -> Object | None:
        seen = await events_of(admin, "pulled")
        reasons = {r for _, r, _ in seen}  # events are written asynchronously: wait for all
        return {"seen": seen} if {"Pulled", "Started"} <= reasons else None

    seen = (await eventually(pulled_events))["seen"]
    assert ("Normal", "Pulling", f'Pulling image "{image}"') in seen
    (pulled,) = [m for _, r, m in seen if r == "Pulled"]
    assert re.fullmatch(
        rf'Successfully pulled image "{re.escape(image)}" in [0-9.]+m?s '
        r"\([0-9.]+m?s including waiting\)\. Image size: [0-9]+ bytes\.",
        pulled,
    ), pulled
    # The pull's events are about the container (upstream's fieldPath), as its others.
    listed = await admin.list(rest.EVENTS, namespace="default")
    paths = {
        e["reason"]: e["involvedObject"].get("fieldPath")
        for e in listed["items"]
        if e["involvedObject"].get("name") == "pulled"
    }
    assert paths["Pulling"] == paths["Pulled"] == paths["Started"] == "spec.containers{c}"


async def test_without_the_secret_the_pull_fails_then_backs_off_with_upstreams_messages(
    admin: rest.Client,
    host: tuple[kubelet.KubeletHost, runtime.OciRuntime],
    private_registry: test_registry.Registry,
) -> None:
    """ErrImagePull with containerd's message, then ImagePullBackOff, and the kubelet's events."""
    image = f"{private_registry.host}/demo/busybox:1.0"
    await admin.create(rest.PODS, pod("denied", image), namespace="default")

    async def waiting(reason: str) -> Object | None:
        found = await admin.get(rest.PODS, "denied", namespace="default")
        statuses = found.get("status", {}).get("containerStatuses") or []
        state = statuses[0]["state"].get("waiting") if statuses else None
        return state if state and state.get("reason") == reason else None

    failed = await eventually(lambda: waiting("ErrImagePull"), timeout=15.0)
    prefix = f'failed to pull and unpack image "{image}": failed to resolve reference "{image}"'
    assert failed["message"].startswith(prefix), failed
    backing_off = await eventually(lambda: waiting("ImagePullBackOff"), timeout=15.0)
    assert (
        backing_off["message"]
        == f'Back-off pulling image "{image}": ErrImagePull: ' + (failed["message"])
    )

    wanted = {
        ("Normal", "Pulling", f'Pulling image "{image}"'),
        ("Warning", "Failed", f'Failed to pull image "{image}": {failed["message"]}'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    }

    async def all_recorded() -> Object | None:
        seen = set(await events_of(admin, "denied"))
        return {"seen": seen} if wanted <= seen else None

    await eventually(all_recorded, timeout=15.0)
    found = await admin.get(rest.PODS, "denied", namespace="default")
    assert found["status"]["phase"] == "Pending"


async def test_kajitori_up_pulls_into_the_data_dirs_image_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``up --runtime oci`` pulls into <data-dir>/images; KAJITORI_OCI_IMAGES=busybox opts out."""
    monkeypatch.setenv("KAJITORI_OCI_ROOT", str(tmp_path / "oci"))
    monkeypatch.delenv("KAJITORI_OCI_IMAGES", raising=False)
    made = kubelet_cmd.new_runtime("oci", data_dir=tmp_path / "data")
    assert isinstance(made, runtime.OciRuntime) and made.network is None
    assert isinstance(made.images, store_images.StoreImages)
    assert made.images.manager.store.root == tmp_path / "data" / "images"
    await made.images.manager.client.aclose()
    await made.aclose()
    monkeypatch.setenv("KAJITORI_OCI_IMAGES", "busybox")
    fallback = kubelet_cmd.new_runtime("oci", data_dir=tmp_path / "data")
    assert isinstance(fallback, runtime.OciRuntime)
    assert not isinstance(fallback.images, store_images.StoreImages)
    await fallback.aclose()


async def test_pull_policy_never_without_the_image_waits_with_err_image_never_pull(
    admin: rest.Client,
    host: tuple[kubelet.KubeletHost, runtime.OciRuntime],
    private_registry: test_registry.Registry,
) -> None:
    """imagePullPolicy Never and an empty store: ErrImageNeverPull and upstream's message."""
    image = f"{private_registry.host}/demo/busybox:1.0"
    body = pod("never", image)
    body["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    await admin.create(rest.PODS, body, namespace="default")

    async def never_pull() -> Object | None:
        found = await admin.get(rest.PODS, "never", namespace="default")
        statuses = found.get("status", {}).get("containerStatuses") or []
        state = statuses[0]["state"].get("waiting") if statuses else None
        return state if state and state.get("reason") == "ErrImageNeverPull" else None

    state = await eventually(never_pull, timeout=15.0)
    message = f'Container image "{image}" is not present with pull policy of Never'
    assert state["message"] == message
    seen = set(await events_of(admin, "never"))
    assert ("Pulling", f'Pulling image "{image}"') not in {(r, m) for _, r, m in seen}
