"""The suite's in-process API server (tests/conftest.py), plus node IPAM, for the kubelet's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.controllers import manager


@pytest.fixture
async def admin(apiserver: APIServerProcess, admin: rest.Client) -> AsyncIterator[rest.Client]:
    """The suite's admin client of a fresh in-process API server, which runs node IPAM."""
    assert apiserver.pki is not None
    controllers = manager.ControllerManager(admin, controllers=["nodeipam"])
    controllers.start()
    # The ServiceAccount admission plugin wants it; its controller is not under test here.
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await admin.create(rest.SERVICEACCOUNTS, account, namespace="default")
    # The root CA publisher's ConfigMap, which the kube-api-access volume projects (kubelet/volumes).
    ca_pem = apiserver.pki.ca.cert_pem.decode()
    root_ca = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca_pem}}
    await admin.create(rest.CONFIGMAPS, root_ca, namespace="default")
    try:
        yield admin
    finally:
        await controllers.stop()
