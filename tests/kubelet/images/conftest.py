"""Fixtures for image tests: built images, real registries, a store and a manager."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from kajitori.kubelet.images import registry, store
from kajitori.testing import images
from kajitori.testing import registry as test_registry


@pytest.fixture(scope="session")
def busybox() -> images.Image:
    return images.busybox_image()


def _start(factory: pytest.TempPathFactory, auth: str) -> Iterator[test_registry.Registry]:
    reason = test_registry.available()
    if reason:
        pytest.skip(reason)
    with test_registry.Registry.start(factory.mktemp(f"registry-{auth}"), auth=auth) as running:
        yield running


@pytest.fixture(scope="module")
def htpasswd_registry(
    tmp_path_factory: pytest.TempPathFactory, busybox: images.Image
) -> Iterator[test_registry.Registry]:
    """docker-registry over TLS with htpasswd auth, holding demo/busybox:1.0."""
    for running in _start(tmp_path_factory, "htpasswd"):
        running.push("demo/busybox", "1.0", busybox)
        yield running


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, busybox: images.Image
) -> Iterator[test_registry.Registry]:
    """docker-registry with Bearer-token auth through our token server."""
    for running in _start(tmp_path_factory, "token"):
        running.push("demo/busybox", "1.0", busybox)
        yield running


@pytest.fixture
def image_store(tmp_path: Path) -> store.ImageStore:
    return store.ImageStore(tmp_path / "images")


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., registry.RegistryClient]]:
    """Build RegistryClients trusting a registry's CA; all closed at the end."""
    made: list[registry.RegistryClient] = []

    def make(reg: test_registry.Registry, **kwargs: object) -> registry.RegistryClient:
        client = registry.RegistryClient(verify=reg.certs.client_context(), **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


class Events(list[tuple[str, str, str]]):
    """An EventRecorder that keeps what it was told."""

    def __call__(self, event_type: str, reason: str, message: str, /) -> None:
        self.append((event_type, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self]


@pytest.fixture
def events() -> Events:
    return Events()
