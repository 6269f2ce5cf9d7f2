"""Registry CAs from a containerd-style hosts directory (``certs.d``), decision 0032.

The client is built with the system's roots only, as a kubelet is; the test
registry's CA reaches it only through ``<hosts_dir>/<host:port>/ca.crt``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kajitori.kubelet.images import credentials, puller, registry, store
from kajitori.testing import images
from kajitori.testing import registry as test_registry


async def _pull(reg: test_registry.Registry, client: registry.RegistryClient, tmp: Path) -> str:
    manager = puller.ImageManager(store.ImageStore(tmp), client)
    keyring = credentials.keyring_from_secrets([reg.pull_secret()])
    info = await manager.ensure_image(f"{reg.host}/demo/busybox:1.0", "Always", keyring)
    return info.image_id


async def test_a_registry_ca_in_certs_d_is_trusted_for_that_host_only(
    htpasswd_registry: test_registry.Registry, busybox: images.Image, tmp_path: Path
) -> None:
    """No CA: upstream's x509 error; ca.crt under another host: still refused; under ours: pulls."""
    hosts = tmp_path / "certs.d"
    client = registry.RegistryClient(hosts_dir=hosts)
    try:
        with pytest.raises(puller.PullError) as caught:
            await _pull(htpasswd_registry, client, tmp_path / "a")
        assert caught.value.reason == "ErrImagePull"
        assert "tls: failed to verify certificate" in caught.value.message

        (hosts / "localhost:1").mkdir(parents=True)
        (hosts / "localhost:1" / "ca.crt").write_bytes(htpasswd_registry.certs.ca_file.read_bytes())
        with pytest.raises(puller.PullError):
            await _pull(htpasswd_registry, client, tmp_path / "b")

        # Written after the client started: read at the next pull, as containerd does.
        own = hosts / htpasswd_registry.host
        own.mkdir()
        (own / "ca.crt").write_bytes(htpasswd_registry.certs.ca_file.read_bytes())
        assert await _pull(htpasswd_registry, client, tmp_path / "c") == busybox.config_digest
    finally:
        await client.aclose()


async def test_the_default_directory_applies_to_hosts_without_their_own(
    htpasswd_registry: test_registry.Registry, busybox: images.Image, tmp_path: Path
) -> None:
    """``_default/*.crt`` is used for a registry with no directory of its own."""
    default = tmp_path / "certs.d" / "_default"
    default.mkdir(parents=True)
    (default / "registry.crt").write_bytes(htpasswd_registry.certs.ca_file.read_bytes())
    client = registry.RegistryClient(hosts_dir=tmp_path / "certs.d")
    try:
        assert await _pull(htpasswd_registry, client, tmp_path / "s") == busybox.config_digest
    finally:
        await client.aclose()


def test_host_ca_files_reads_only_crt_files(tmp_path: Path) -> None:
    """Only ``*.crt`` are CAs (``*.cert``/``*.key`` are client pairs in containerd's layout)."""
    host = tmp_path / "localhost:5000"
    host.mkdir()
    for name in ("ca.crt", "b.crt", "client.cert", "client.key", "hosts.toml"):
        (host / name).write_text("x")
    found = registry.host_ca_files(tmp_path, "localhost:5000")
    assert [p.name for p in found] == ["b.crt", "ca.crt"]
    assert registry.host_ca_files(tmp_path, "other:5000") == []
