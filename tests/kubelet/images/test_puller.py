"""The image manager against an in-process fake registry: policies, back-off, faults."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.kubelet.images.conftest import Events

from kajitori.kubelet.images import credentials, puller, registry, store
from kajitori.testing import images

HOST = "registry.test:5000"
IMAGE = f"{HOST}/demo/busybox:1.0"
CDN = "cdn.test"


@dataclasses.dataclass
class FakeRegistry:
    """A registry behind httpx.MockTransport: Basic auth, optional faults, a request log."""

    image: images.Image
    password: str = "secret"
    corrupt_blob: str | None = None  # serve wrong bytes for this digest
    wrong_digest_header: bool = False
    redirect_blobs: bool = False  # blobs answer 307 to another host
    fail_manifests: bool = False
    requests: list[httpx.Request] = dataclasses.field(default_factory=list)
    gate: asyncio.Event | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if request.url.host == CDN:
            return self._blob(request.url.path.rsplit("/", 1)[1])
        expected = "Basic " + base64.b64encode(f"kajitori:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        path = request.url.path
        if "/manifests/" in path:
            return self._manifest(path.rsplit("/", 1)[1])
        digest = path.rsplit("/", 1)[1]
        if self.redirect_blobs:
            return httpx.Response(307, headers={"Location": f"https://{CDN}/store/{digest}"})
        return self._blob(digest)

    def _manifest(self, obj: str) -> httpx.Response:
        if self.fail_manifests:
            return httpx.Response(503, text="maintenance")
        if obj not in ("1.0", self.image.digest):
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        digest = "sha256:" + "0" * 64 if self.wrong_digest_header else self.image.digest
        headers = {"Content-Type": self.image.media_type, "Docker-Content-Digest": digest}
        return httpx.Response(200, content=self.image.manifest_bytes, headers=headers)

    def _blob(self, digest: str) -> httpx.Response:
        data = self.image.blobs.get(digest)
        if data is None:
            return httpx.Response(404)
        if digest == self.corrupt_blob:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        return httpx.Response(200, content=data)

    def paths(self) -> list[str]:
        return [f"{r.url.host}{r.url.path}" for r in self.requests]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(busybox: images.Image) -> FakeRegistry:
    return FakeRegistry(busybox)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def manager(
    fake: FakeRegistry, image_store: store.ImageStore, clock: Clock
) -> AsyncIterator[puller.ImageManager]:
    client = registry.RegistryClient(transport=httpx.MockTransport(fake.handle))
    yield puller.ImageManager(image_store, client, clock=clock)
    await client.aclose()


RIGHT = [credentials.AuthConfig("kajitori", "secret")]


async def test_a_corrupted_layer_fails_the_pull_and_leaves_nothing(
    fake: FakeRegistry, manager: puller.ImageManager, image_store: store.ImageStore
) -> None:
    """The streamed sha256 is checked before a blob is kept (containerd's 'failed precondition')."""
    layer = fake.image.manifest["layers"][0]["digest"]
    fake.corrupt_blob = layer
    with pytest.raises(puller.PullError) as caught:
        await manager.ensure_image(IMAGE, "Always", RIGHT)
    assert caught.value.reason == "ErrImagePull"
    assert caught.value.message.startswith(
        f'failed to pull and unpack image "{IMAGE}": failed to copy: unexpected commit digest sha256:'
    )
    assert caught.value.message.endswith(f", expected {layer}: failed precondition")
    assert not image_store.has_blob(layer)
    assert list((image_store.root / "tmp").iterdir()) == []
    assert image_store.lookup(IMAGE) is None


async def test_a_manifest_whose_digest_header_lies_is_refused(
    fake: FakeRegistry, manager: puller.ImageManager
) -> None:
    """Docker-Content-Digest must be the body's sha256."""
    fake.wrong_digest_header = True
    with pytest.raises(puller.PullError, match="manifest digest mismatch"):
        await manager.ensure_image(IMAGE, "Always", RIGHT)


async def test_pulling_by_digest_checks_the_digest(
    fake: FakeRegistry, manager: puller.ImageManager
) -> None:
    """Asked by digest, the registry must serve exactly that content."""
    info = await manager.ensure_image(f"{HOST}/demo/busybox@{fake.image.digest}", "Always", RIGHT)
    assert info.repo_digest == f"{HOST}/demo/busybox@{fake.image.digest}"


async def test_blob_redirects_are_followed_without_the_authorization_header(
    fake: FakeRegistry, manager: puller.ImageManager
) -> None:
    """A 307 to object storage must not carry the registry credentials."""
    fake.redirect_blobs = True
    await manager.ensure_image(IMAGE, "Always", RIGHT)
    to_cdn = [r for r in fake.requests if r.url.host == CDN]
    assert len(to_cdn) == len(fake.image.blobs)
    assert all("Authorization" not in r.headers for r in to_cdn)


async def test_concurrent_pulls_of_one_image_share_one_pull(
    fake: FakeRegistry, manager: puller.ImageManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five pods asking at once cause one manifest fetch and one fetch per blob."""
    fake.gate = asyncio.Event()  # the registry answers nothing until all five asked
    joined: list[str] = []
    shared_pull = manager._shared_pull

    async def counting(*args: object) -> object:
        joined.append("pull")
        return await shared_pull(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(manager, "_shared_pull", counting)
    pulls = [
        asyncio.ensure_future(manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid=f"pod-{i}"))
        for i in range(5)
    ]

    async def all_joined() -> None:
        while len(joined) < 5:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(all_joined(), timeout=10)
    fake.gate.set()
    infos = await asyncio.gather(*pulls)
    assert len({info.image_id for info in infos}) == 1
    manifest_gets = [p for p in fake.paths() if "/manifests/" in p]
    blob_gets = [p for p in fake.paths() if "/blobs/" in p]
    assert len(manifest_gets) == 2  # one 401, one with credentials
    assert len(blob_gets) == len(fake.image.blobs)


async def test_pull_policy_never_without_the_image_fails_with_upstreams_message(
    manager: puller.ImageManager, fake: FakeRegistry, events: Events
) -> None:
    """ErrImageNeverPull, and no request to the registry."""
    with pytest.raises(puller.PullError) as caught:
        await manager.ensure_image("demo:1", "Never", recorder=events)
    assert (caught.value.reason, caught.value.message) == (
        "ErrImageNeverPull",
        'Container image "demo:1" is not present with pull policy of Never',
    )
    assert events == [("Warning", "ErrImageNeverPull", caught.value.message)]
    assert fake.requests == []


@pytest.mark.parametrize("policy", ["IfNotPresent", "Never"])
async def test_a_present_image_is_used_without_asking_the_registry(
    manager: puller.ImageManager, fake: FakeRegistry, events: Events, policy: str
) -> None:
    """IfNotPresent and Never use the store; the event is upstream's 'already present'."""
    first = await manager.ensure_image(IMAGE, "IfNotPresent", RIGHT)
    fake.requests.clear()
    again = await manager.ensure_image(IMAGE, policy, (), recorder=events)  # type: ignore[arg-type]
    assert again == first
    assert fake.requests == []
    assert events == [("Normal", "Pulled", f'Container image "{IMAGE}" already present on machine')]


async def test_pull_policy_always_asks_the_registry_but_fetches_no_known_blob(
    manager: puller.ImageManager, fake: FakeRegistry
) -> None:
    """Always re-resolves the tag; blobs already in the store are not downloaded again."""
    await manager.ensure_image(IMAGE, "Always", RIGHT)
    fake.requests.clear()
    await manager.ensure_image(IMAGE, "Always", RIGHT)
    assert [p for p in fake.paths() if "/blobs/" in p] == []
    assert any("/manifests/1.0" in p for p in fake.paths())


async def test_failures_back_off_as_kubelet_does(
    manager: puller.ImageManager, fake: FakeRegistry, clock: Clock, events: Events
) -> None:
    """ErrImagePull, then ImagePullBackOff for 10 s (then 20 s), with the last error kept."""
    fake.fail_manifests = True
    with pytest.raises(puller.PullError) as first:
        await manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid="u1", recorder=events)
    assert first.value.reason == "ErrImagePull"
    assert first.value.message.endswith(": 503 Service Unavailable")
    assert events[-1] == (
        "Warning",
        "Failed",
        f'Failed to pull image "{IMAGE}": {first.value.message}',
    )

    clock.now += 9
    with pytest.raises(puller.PullError) as backing_off:
        await manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid="u1", recorder=events)
    assert backing_off.value.reason == "ImagePullBackOff"
    assert backing_off.value.message == (
        f'Back-off pulling image "{IMAGE}": ErrImagePull: {first.value.message}'
    )
    assert events[-1] == ("Normal", "BackOff", f'Back-off pulling image "{IMAGE}"')

    # Another pod is not backing off: the key is (pod uid, image).
    with pytest.raises(puller.PullError, match="503"):
        await manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid="u2")

    clock.now += 2  # 11 s after the failure: try again, fail, and wait 20 s now
    with pytest.raises(puller.PullError, match="503"):
        await manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid="u1")
    clock.now += 19
    with pytest.raises(puller.PullError) as still:
        await manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid="u1")
    assert still.value.reason == "ImagePullBackOff"
    fake.fail_manifests = False
    clock.now += 2
    info = await manager.ensure_image(IMAGE, "Always", RIGHT, pod_uid="u1")
    assert info.rootfs.is_dir()


async def test_several_failing_credentials_aggregate_their_errors(
    manager: puller.ImageManager,
) -> None:
    """Each candidate's failure is listed, as utilerrors.NewAggregate prints them."""
    wrong = [credentials.AuthConfig("a", "1"), credentials.AuthConfig("b", "2")]
    with pytest.raises(puller.PullError) as caught:
        await manager.ensure_image(IMAGE, "Always", wrong)
    # Both fail the same way, so the aggregate holds that one message once.
    assert caught.value.message.count("401 Unauthorized") == 1


async def test_an_invalid_image_name_is_invalid_image_name(
    manager: puller.ImageManager, events: Events
) -> None:
    """kubelet's InvalidImageName with the parser's reason."""
    with pytest.raises(puller.PullError) as caught:
        await manager.ensure_image("Not/Valid", "Always", recorder=events)
    assert caught.value.reason == "InvalidImageName"
    assert caught.value.message == (
        'Failed to apply default image tag "Not/Valid": couldn\'t parse image name '
        '"Not/Valid": invalid reference format: repository name (Valid) must be lowercase'
    )
    assert events[0][:2] == ("Warning", "InspectFailed")


async def test_an_unreachable_registry_is_err_image_pull(
    image_store: store.ImageStore, tmp_path: Path
) -> None:
    """Connection refused reads as containerd's 'failed to do request'."""
    client = registry.RegistryClient(timeout=2.0)
    try:
        with pytest.raises(puller.PullError) as caught:
            await puller.ImageManager(image_store, client).ensure_image(
                "127.0.0.1:1/demo:1", "Always"
            )
    finally:
        await client.aclose()
    assert caught.value.message == (
        'failed to pull and unpack image "127.0.0.1:1/demo:1": failed to resolve reference '
        '"127.0.0.1:1/demo:1": failed to do request: Get "https://127.0.0.1:1/v2/demo/'
        'manifests/1": dial tcp 127.0.0.1:1: connect: connection refused'
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0004, "0s"),
        (0.512, "512ms"),
        (1.0, "1s"),
        (1.2345, "1.234s"),
        (62.5, "1m2.5s"),
        (3725.0, "1h2m5s"),
    ],
)
def test_durations_print_as_go_does(seconds: float, text: str) -> None:
    """The Pulled event's durations are Go's Duration strings."""
    assert puller.go_duration(seconds) == text


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_the_default_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    """Always for latest (or no tag), IfNotPresent otherwise."""
    assert puller.default_pull_policy(image) == policy
