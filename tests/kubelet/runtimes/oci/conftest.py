"""Fixtures for the oci runtime's tests: a busybox image, a runtime that must leave nothing
behind, and a kubelet over it (``host``) for the suite's in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.kubelet.runtimes.oci.helpers import Harness, leaks

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet
from kajitori.kubelet.runtimes.oci import busybox


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> busybox.BusyboxImages:
    return busybox.BusyboxImages(tmp_path_factory.mktemp("images"))


@pytest.fixture
async def oci(tmp_path: Path, images: busybox.BusyboxImages) -> AsyncIterator[Harness]:
    """A runtime whose pods are all removed after the test, which must leave nothing behind."""
    root = tmp_path / "oci"
    harness = Harness(root, images)
    try:
        yield harness
    finally:
        uids = harness.runtime.get_pods()
        for uid in uids:
            harness.runtime.remove_pod(uid)
        await harness.runtime.aclose()
        left = {uid: await leaks(harness.runtime, uid) for uid in uids}
        assert all(found.empty() for found in left.values()), left


@pytest.fixture
async def host(admin: rest.Client, oci: Harness) -> AsyncIterator[kubelet.KubeletHost]:
    """A kubelet for one node (``helpers.NODE``) over ``oci``'s runtime; stopped afterwards."""
    running = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci.runtime)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
