"""The built-in metrics-server scraping in-process kubelets (metrics_server/scraper.py).

Nodes with a kubelet API are scraped over HTTPS with the API server's kubelet
client certificate; nodes without one (``up`` beyond its served nodes) are read
in process; either way ``metrics.k8s.io`` then serves their usage. Without a
second scrape there is no usage, and a node that cannot be reached is left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.metrics_server import scraper

NODE_METRICS = rest.Resource("metrics.k8s.io", "v1beta1", "nodes", False, "NodeMetrics")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServerProcess]:
    process = APIServerProcess(APIServerConfig(data_dir=tmp_path, port=0, metric_resolution=0.2))
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def admin(server: APIServerProcess) -> AsyncIterator[rest.Client]:
    assert server.http is not None and server.pki is not None
    client = rest.Client.in_process(server.http.app, client_cert_pem=server.pki.admin.cert_pem)
    try:
        yield client
    finally:
        await client.aclose()


async def node_names(admin: rest.Client) -> set[str]:
    listed = await admin.list(NODE_METRICS)
    return {item["metadata"]["name"] for item in listed["items"]}


@pytest.mark.parametrize("serve_api", [True, False], ids=["https", "in-process"])
async def test_nodes_are_scraped(
    server: APIServerProcess, admin: rest.Client, serve_api: bool
) -> None:
    assert server.http is not None and server.pki is not None and server.metrics_server
    host = await kubelet_cmd.start_in_process(
        server.http.app, server.pki.ca, nodes=2, serve_api=serve_api
    )
    try:
        if not serve_api:
            server.metrics_server.local = kubelet_cmd.local_resource_metrics(host)
        start = server.metrics_server.cycles
        await server.metrics_server.wait_cycles(start + 3)
        assert await node_names(admin) == {"kajitori-worker", "kajitori-worker2"}
        got = await admin.get(NODE_METRICS, "kajitori-worker")
        assert got["kind"] == "NodeMetrics" and got["usage"]["memory"] == "128Mi"
        with pytest.raises(rest.ApiError) as missing:
            await admin.get(NODE_METRICS, "nope")
        assert missing.value.message == 'nodes "nope" not found'
    finally:
        await kubelet_cmd.stop(host)


async def test_an_unreachable_node_has_no_metrics(
    server: APIServerProcess, admin: rest.Client
) -> None:
    assert server.metrics_server is not None
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "dark"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 9}},  # nothing listens there
        },
    }
    await admin.create(rest.NODES, node)
    start = server.metrics_server.cycles
    await server.metrics_server.wait_cycles(start + 2)
    assert await node_names(admin) == set()
    with pytest.raises(rest.ApiError) as missing:
        await admin.get(NODE_METRICS, "dark")
    assert missing.value.message == 'nodemetrics.metrics.k8s.io "dark" not found'


def test_kubelet_url_prefers_internal_ip_and_the_status_port() -> None:
    node = {
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "worker"},
                {"type": "InternalIP", "address": "fd00::2"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}},
        }
    }
    assert scraper.kubelet_url(node) == "https://[fd00::2]:11250"
    assert scraper.kubelet_url(
        {"status": {"addresses": [{"type": "Hostname", "address": "w"}]}}
    ) == ("https://w:10250")
    assert scraper.kubelet_url({}) is None
