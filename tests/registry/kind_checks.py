"""Helpers for the tests of the storage.k8s.io and networking.k8s.io kinds.

Each test module runs its kind against a real in-process cluster over HTTPS;
these read what the official client and kubectl hand back: a refused
request's Status, kubectl's table rows, and the server's Table columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

Object = dict[str, Any]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def status_of(exc: client.ApiException) -> Object:
    body: Object = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


def refused(call: Callable[..., Any], *args: Any, code: int = 422) -> Object:
    """The Status of a request that must fail with ``code``."""
    with pytest.raises(client.ApiException) as caught:
        call(*args)
    assert caught.value.status == code, caught.value.body
    return status_of(caught.value)


def causes(status: Object) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in status["details"]["causes"]]


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def table(cluster: InProcessCluster, path: str) -> Object:
    """The server's Table for ``path`` (what kubectl asks for)."""
    api = cluster.api_client()
    try:
        response = api.call_api(
            "GET", api.configuration.host + path, header_params={"Accept": TABLE}
        )
        response.read()
        result: Object = json.loads(response.data)
    finally:
        api.close()
    assert result["kind"] == "Table"
    return result


def columns(cluster: InProcessCluster, path: str) -> list[tuple[str, str]]:
    return [(c["name"], c["type"]) for c in table(cluster, path)["columnDefinitions"]]


def api_resource_row(cluster: InProcessCluster, group: str, name: str) -> list[str]:
    """``kubectl api-resources -o wide`` row of resource ``name`` in ``group``."""
    out = cluster.kubectl("api-resources", f"--api-group={group}", "-o", "wide", "--no-headers")
    found = [r for r in rows(out.stdout) if r[0] == name]
    assert len(found) == 1, out.stdout
    return found[0]


def create_json(cluster: InProcessCluster, obj: Object, *args: str) -> str:
    return cluster.kubectl("create", *args, "-f", "-", stdin=json.dumps(obj)).stdout


def refused_raw(
    cluster: InProcessCluster, method: str, path: str, body: Object, code: int = 422
) -> Object:
    """The Status of a raw request that must fail (bodies the typed client will not send)."""
    api = cluster.api_client()
    try:
        response = api.call_api(
            method,
            api.configuration.host + path,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
        )
        response.read()
        status: Object = json.loads(response.data)
    finally:
        api.close()
    assert response.status == code, status
    assert status["kind"] == "Status" and status["code"] == code
    return status
