"""Pulls from Debian's real docker-registry: TLS, htpasswd and Bearer-token auth."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from tests.kubelet.images.conftest import Events

from kajitori.kubelet.images import credentials, manifest, puller, registry, store
from kajitori.testing import images
from kajitori.testing import registry as test_registry

ClientFor = Callable[..., registry.RegistryClient]
DENIED = "pull access denied, repository does not exist or may require authorization"


def _manager(image_store: store.ImageStore, client: registry.RegistryClient) -> puller.ImageManager:
    return puller.ImageManager(image_store, client)


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
async def test_an_image_pull_secret_pulls_a_private_image(
    request: pytest.FixtureRequest,
    auth: str,
    image_store: store.ImageStore,
    client_for: ClientFor,
    busybox: images.Image,
    events: Events,
) -> None:
    """Basic over TLS and the Bearer-token flow both pull, verify and unpack the image."""
    reg: test_registry.Registry = request.getfixturevalue(f"{auth}_registry")
    keyring = credentials.keyring_from_secrets([reg.pull_secret()])
    image = f"{reg.host}/demo/busybox:1.0"
    info = await _manager(image_store, client_for(reg)).ensure_image(
        image, "IfNotPresent", keyring, recorder=events
    )
    assert info.image_id == busybox.config_digest
    assert info.repo_digest == f"{reg.host}/demo/busybox@{busybox.digest}"
    assert info.config.cmd == ("sh",) and "IMAGE_ARCH=amd64" in info.config.env
    assert os.readlink(info.rootfs / "bin/sh") == "busybox"
    assert not (info.rootfs / "etc/motd").exists()
    assert events.reasons() == ["Pulling", "Pulled"]
    assert events[1][2].startswith(f'Successfully pulled image "{image}" in ')
    assert events[1][2].endswith(f"Image size: {info.size} bytes.")
    if reg.token_server is not None:  # the token endpoint saw our Basic credentials
        assert any(r["authorization"].startswith("Basic ") for r in reg.token_server.requests)


async def test_anonymous_pulls_from_an_htpasswd_registry_are_refused(
    htpasswd_registry: test_registry.Registry, image_store: store.ImageStore, client_for: ClientFor
) -> None:
    """Without a Secret: ErrImagePull with containerd's 'pull access denied' shape."""
    image = f"{htpasswd_registry.host}/demo/busybox:1.0"
    ref = f"{htpasswd_registry.host}/demo/busybox:1.0"
    with pytest.raises(puller.PullError) as caught:
        await _manager(image_store, client_for(htpasswd_registry)).ensure_image(image, "Always")
    assert caught.value.reason == "ErrImagePull"
    assert caught.value.message == (
        f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
        f"{DENIED}: authorization failed: no basic auth credentials"
    )


async def test_anonymous_tokens_grant_nothing(
    token_registry: test_registry.Registry, image_store: store.ImageStore, client_for: ClientFor
) -> None:
    """An anonymous token is refused with the registry's insufficient_scope."""
    image = f"{token_registry.host}/demo/busybox:1.0"
    with pytest.raises(puller.PullError) as caught:
        await _manager(image_store, client_for(token_registry)).ensure_image(image, "Always")
    assert caught.value.message.endswith(
        f"{DENIED}: server message: insufficient_scope: authorization failed"
    )


@pytest.mark.parametrize("auth", ["htpasswd", "token"])
async def test_a_wrong_password_fails_the_pull(
    request: pytest.FixtureRequest, auth: str, image_store: store.ImageStore, client_for: ClientFor
) -> None:
    """Basic: the registry's 401 again; Bearer: the token endpoint's 401."""
    reg: test_registry.Registry = request.getfixturevalue(f"{auth}_registry")
    wrong = credentials.AuthConfig(username=reg.username, password="wrong")
    with pytest.raises(puller.PullError) as caught:
        await _manager(image_store, client_for(reg)).ensure_image(
            f"{reg.host}/demo/busybox:1.0", "Always", [wrong]
        )
    message = caught.value.message
    if auth == "htpasswd":
        assert message.endswith(
            f"unexpected status from GET request to https://{reg.host}/v2/demo/busybox/"
            "manifests/1.0: 401 Unauthorized"
        )
    else:
        assert (
            "failed to authorize: failed to fetch oauth token: unexpected status from GET"
            in message
        )
        assert message.endswith(": 401 Unauthorized")
    assert not any(image_store.root.joinpath("rootfs").iterdir())


async def test_candidates_are_tried_in_order_until_one_pulls(
    htpasswd_registry: test_registry.Registry, image_store: store.ImageStore, client_for: ClientFor
) -> None:
    """A wrong credential first does not stop the right one after it (kubelet's loop)."""
    wrong = credentials.AuthConfig(username="kajitori", password="wrong")
    right = credentials.AuthConfig(htpasswd_registry.username, htpasswd_registry.password)
    info = await _manager(image_store, client_for(htpasswd_registry)).ensure_image(
        f"{htpasswd_registry.host}/demo/busybox:1.0", "Always", [wrong, right]
    )
    assert info.rootfs.is_dir()


async def test_a_missing_tag_is_not_found(
    htpasswd_registry: test_registry.Registry, image_store: store.ImageStore, client_for: ClientFor
) -> None:
    """A 404 reads as containerd's '<ref>: not found'."""
    ref = f"{htpasswd_registry.host}/demo/busybox:nope"
    keyring = credentials.keyring_from_secrets([htpasswd_registry.pull_secret()])
    with pytest.raises(puller.PullError) as caught:
        await _manager(image_store, client_for(htpasswd_registry)).ensure_image(
            ref, "Always", keyring
        )
    assert caught.value.message.endswith(f'failed to resolve reference "{ref}": {ref}: not found')


@pytest.mark.parametrize(
    ("platform", "arch"),
    [("linux/amd64", "amd64"), ("linux/arm64", "arm64"), ("linux/arm64/v8", "arm64")],
)
async def test_a_multi_platform_index_resolves_to_the_nodes_platform(
    htpasswd_registry: test_registry.Registry,
    multi_platform: images.Index,
    image_store: store.ImageStore,
    client_for: ClientFor,
    platform: str,
    arch: str,
) -> None:
    """The index's entry for the configured platform is pulled, and the index kept."""
    client = client_for(htpasswd_registry, platform=manifest.Platform.parse(platform))
    keyring = credentials.keyring_from_secrets([htpasswd_registry.pull_secret()])
    info = await _manager(image_store, client).ensure_image(
        f"{htpasswd_registry.host}/demo/multi:1.0", "Always", keyring
    )
    assert f"IMAGE_ARCH={arch}" in info.config.env
    assert image_store.has_blob(multi_platform.digest)


@pytest.mark.usefixtures("multi_platform")
async def test_an_index_without_the_nodes_platform_fails(
    htpasswd_registry: test_registry.Registry, image_store: store.ImageStore, client_for: ClientFor
) -> None:
    """containerd's 'no match for platform in manifest'."""
    client = client_for(htpasswd_registry, platform=manifest.Platform.parse("linux/s390x"))
    keyring = credentials.keyring_from_secrets([htpasswd_registry.pull_secret()])
    with pytest.raises(puller.PullError, match="no match for platform in manifest: linux/s390x"):
        await _manager(image_store, client).ensure_image(
            f"{htpasswd_registry.host}/demo/multi:1.0", "Always", keyring
        )


@pytest.fixture(scope="module")
def multi_platform(htpasswd_registry: test_registry.Registry) -> images.Index:
    """demo/multi:1.0, a Docker manifest list of an arm64 (plain layers) and an amd64 image."""
    index = images.build_index(
        {
            "linux/arm64/v8": images.busybox_image(architecture="arm64", compression="none"),
            "linux/amd64": images.busybox_image(architecture="amd64", docker=True),
        },
        docker=True,
    )
    htpasswd_registry.push("demo/multi", "1.0", index)
    return index


async def test_tls_trust_comes_from_the_configured_ca_only(
    htpasswd_registry: test_registry.Registry, image_store: store.ImageStore
) -> None:
    """An unknown CA fails the pull; naming the CA bundle file makes it pass."""
    keyring = credentials.keyring_from_secrets([htpasswd_registry.pull_secret()])
    image = f"{htpasswd_registry.host}/demo/busybox:1.0"
    untrusting = registry.RegistryClient()
    trusting = registry.RegistryClient(verify=str(htpasswd_registry.certs.ca_file))
    try:
        with pytest.raises(puller.PullError, match="tls: failed to verify certificate"):
            await _manager(image_store, untrusting).ensure_image(image, "Always", keyring)
        info = await _manager(image_store, trusting).ensure_image(image, "Always", keyring)
    finally:
        await untrusting.aclose()
        await trusting.aclose()
    assert info.rootfs.is_dir()
