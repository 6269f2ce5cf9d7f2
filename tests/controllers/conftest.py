"""Fixtures for controller tests: an admin client and controllers started as in ``kajitori up``.

Both stand on the in-process API server of ``tests/conftest.py``: the
controllers act as their own kube-system ServiceAccounts, so each test also
checks that upstream's controller roles grant what the controller needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from kajitori.client import rest
from kajitori.cmd import controller_manager
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager

StartControllers = Callable[..., Awaitable[manager.ControllerManager]]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (the API is eventually consistent)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


async def event_messages(
    client: rest.Client, name: str, reason: str, *, at_least: int = 0, namespace: str = "default"
) -> list[str] | None:
    """The messages of the events about ``name`` with ``reason``; None while fewer than
    ``at_least`` (for ``eventually``)."""
    listed = await client.list(rest.EVENTS, namespace=namespace)
    found = [
        e["message"]
        for e in listed["items"]
        if e["involvedObject"].get("name") == name and e["reason"] == reason
    ]
    return found if len(found) >= at_least else None


async def ensure_default_service_account(client: rest.Client, namespace: str = "default") -> None:
    """Pods need their ServiceAccount (admission); no ServiceAccount controller runs here."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    try:
        await client.create(rest.SERVICEACCOUNTS, account, namespace=namespace)
    except rest.ApiError as exc:
        if exc.code != 409:
            raise


@pytest.fixture
async def admin(admin: rest.Client) -> rest.Client:
    """The suite's admin (tests/conftest.py); ``default/default`` exists for pods."""
    await ensure_default_service_account(admin)
    return admin


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
