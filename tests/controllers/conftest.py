"""Fixtures for controller tests: an admin client and controllers started as in ``kajitori up``.

Both stand on the in-process API server of ``tests/conftest.py``: the
controllers act as their own kube-system ServiceAccounts, so each test also
checks that upstream's controller roles grant what the controller needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd import controller_manager
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager

StartControllers = Callable[..., Awaitable[manager.ControllerManager]]


async def ensure_default_service_account(client: rest.Client, namespace: str = "default") -> None:
    """Pods need their ServiceAccount (admission); no ServiceAccount controller runs here."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    try:
        await client.create(rest.SERVICEACCOUNTS, account, namespace=namespace)
    except rest.ApiError as exc:
        if exc.code != 409:
            raise


@pytest.fixture
async def admin(apiserver: APIServerProcess) -> AsyncIterator[rest.Client]:
    """The cluster admin over the in-process transport; ``default/default`` exists for pods."""
    assert apiserver.http is not None and apiserver.pki is not None
    client = rest.Client.in_process(
        apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem
    )
    await ensure_default_service_account(client)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def start_controllers(apiserver: APIServerProcess) -> AsyncIterator[StartControllers]:
    """``await start_controllers("job", ..., options={...})``; all stopped after the test."""
    assert apiserver.http is not None and apiserver.pki is not None
    started: list[manager.ControllerManager] = []

    async def start(
        *names: str, options: Mapping[str, Mapping[str, Any]] | None = None
    ) -> manager.ControllerManager:
        assert apiserver.http is not None and apiserver.pki is not None
        running = controller_manager.start_in_process(
            apiserver.http.app, apiserver.pki.ca, controllers=names, options=options
        )
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            await controller_manager.stop(running)
