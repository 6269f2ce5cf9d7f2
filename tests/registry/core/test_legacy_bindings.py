"""``POST /api/v1/namespaces/{ns}/bindings``: upstream's older form of ``pods/{name}/binding``.

The Binding's own name names the pod; the answer, the validation and the
pod's assignment are pods/binding's. Over HTTPS against a real API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kajitori.client import kubeconfig
from kajitori.cmd.apiserver import APIServerProcess

NS = "/api/v1/namespaces/default"
Object = dict[str, Any]


@pytest.fixture
async def http(apiserver: APIServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    config = kubeconfig.load_kubeconfig(apiserver.config.kubeconfig_path)
    async with httpx.AsyncClient(base_url=config.server, verify=config.ssl_context()) as client:
        # An API server alone runs no service-account controller; pods need the account.
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        assert (await client.post(f"{NS}/serviceaccounts", json=account)).status_code == 201
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "waiting"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
        assert (await client.post(f"{NS}/pods", json=pod)).status_code == 201
        yield client


def binding(pod: str, node: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


async def test_a_binding_posted_to_the_collection_assigns_the_pod(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{NS}/bindings", json=binding("waiting", "node-a"))
    assert response.status_code == 201
    assert response.json()["status"] == "Success"
    pod = (await http.get(f"{NS}/pods/waiting")).json()
    assert pod["spec"]["nodeName"] == "node-a"
    scheduled = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled[0]["status"] == "True"
    again = await http.post(f"{NS}/bindings", json=binding("waiting", "node-b"))
    assert again.status_code == 409


async def test_a_binding_without_a_target_is_invalid(http: httpx.AsyncClient) -> None:
    body = binding("waiting", "")
    response = await http.post(f"{NS}/bindings", json=body)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "target.name"
    assert "nodeName" not in (await http.get(f"{NS}/pods/waiting")).json()["spec"]


async def test_bindings_are_create_only_in_discovery(http: httpx.AsyncClient) -> None:
    resources = (await http.get("/api/v1")).json()["resources"]
    (entry,) = [r for r in resources if r["name"] == "bindings"]
    assert (entry["kind"], entry["namespaced"], entry["verbs"]) == ("Binding", True, ["create"])
    assert (await http.get(f"{NS}/bindings")).status_code == 405
