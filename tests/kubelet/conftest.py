"""An API server in the test's event loop, plus node IPAM, for the kubelet's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.controllers import manager


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[rest.Client]:
    """An admin client of a fresh in-process API server that runs the node IPAM controller."""
    process = APIServerProcess(APIServerConfig(data_dir=tmp_path, port=0))
    await process.start()
    assert process.http is not None and process.pki is not None
    client = rest.Client.in_process(process.http.app, client_cert_pem=process.pki.admin.cert_pem)
    controllers = manager.ControllerManager(client, controllers=["nodeipam"])
    controllers.start()
    # The ServiceAccount admission plugin wants it; its controller is not under test here.
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await client.create(rest.SERVICEACCOUNTS, account, namespace="default")
    # The root CA publisher's ConfigMap, which the kube-api-access volume projects (kubelet/volumes).
    ca_pem = process.pki.ca.cert_pem.decode()
    root_ca = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca_pem}}
    await client.create(rest.CONFIGMAPS, root_ca, namespace="default")
    try:
        yield client
    finally:
        await controllers.stop()
        await client.aclose()
        await process.stop()
