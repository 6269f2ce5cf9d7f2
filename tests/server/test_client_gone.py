"""A client that goes away before its answer is written is not a server error.

The HTTP server's ``send()`` raises ``ClientDisconnected`` once the peer has
gone; the API server's panic recovery must not log that as an unhandled
error (upstream logs nothing at error level for it), nor try to answer.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kajitori.cmd.apiserver import APIServerProcess
from kajitori.server import http


def _scope(process: APIServerProcess, method: str, path: str) -> dict[str, Any]:
    assert process.pki is not None
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"accept", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 443),
        "extensions": {"tls": {"client_cert_chain": [process.pki.admin.cert_pem.decode()]}},
    }


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_client_gone_before_the_answer_is_logged_at_debug_not_error(
    apiserver: APIServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    assert apiserver.http is not None
    sent: list[dict[str, Any]] = []

    async def gone(message: dict[str, Any]) -> None:
        sent.append(message)
        raise http.ClientDisconnected("the client has disconnected")

    caplog.set_level(logging.DEBUG, logger="kajitori.server.app")
    await apiserver.http.app(_scope(apiserver, "GET", "/api/v1/namespaces"), _no_body, gone)

    # One attempt at the answer, and no second one (a 500 nobody would read).
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert sent[0]["status"] == 200
    records = [r for r in caplog.records if r.name == "kajitori.server.app"]
    assert not [r for r in records if r.levelno >= logging.WARNING]
    assert any("went away" in r.getMessage() for r in records if r.levelno == logging.DEBUG)


async def test_a_handler_failure_is_still_an_unhandled_error(
    apiserver: APIServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Other OSErrors from ``send`` are still the server's failures (500 attempted, ERROR)."""
    assert apiserver.http is not None
    sent: list[dict[str, Any]] = []

    async def broken(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 1:
            raise OSError("disk on fire")

    await apiserver.http.app(_scope(apiserver, "GET", "/api/v1/namespaces"), _no_body, broken)

    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [200, 500]
    assert any(
        r.levelno == logging.ERROR and "unhandled error" in r.getMessage() for r in caplog.records
    )
