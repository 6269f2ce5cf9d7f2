"""An API server in the test's own event loop, reached through the in-process transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess


@pytest.fixture
async def admin(apiserver: APIServerProcess) -> AsyncIterator[rest.Client]:
    """An in-process client acting as the cluster admin."""
    assert apiserver.http is not None and apiserver.pki is not None
    client = rest.Client.in_process(
        apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem
    )
    try:
        yield client
    finally:
        await client.aclose()
