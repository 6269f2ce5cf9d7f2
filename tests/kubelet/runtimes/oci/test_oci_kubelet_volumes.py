"""The study note through a kubelet and an in-process API server: a Secret, the service account."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers
from tests.kubelet.test_kubelet import eventually

from kajitori.auth import pki
from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess
from kajitori.controllers import manager
from kajitori.kubelet import kubelet

pytestmark = pytest.mark.skipif(helpers.REASON is not None, reason=helpers.REASON or "")

Object = dict[str, Any]
NODE = "kajitori-worker"


@dataclasses.dataclass
class Clients:
    admin: rest.Client
    node: rest.Client  # system:node:<NODE> in system:nodes


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Clients]:
    """As tests/kubelet/conftest.py's ``admin``, plus a client with the node's certificate."""
    process = APIServerProcess(APIServerConfig(data_dir=tmp_path / "apiserver", port=0))
    await process.start()
    assert process.http is not None and process.pki is not None
    client = rest.Client.in_process(process.http.app, client_cert_pem=process.pki.admin.cert_pem)
    node_cert = pki.issue_node_certs(process.pki.ca, [NODE])[NODE]
    node = rest.Client.in_process(process.http.app, client_cert_pem=node_cert.cert_pem)
    controllers = manager.ControllerManager(client, controllers=["nodeipam"])
    controllers.start()
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    await client.create(rest.SERVICEACCOUNTS, account, namespace="default")
    root_ca = {
        "metadata": {"name": "kube-root-ca.crt"},
        "data": {"ca.crt": process.pki.ca.cert_pem.decode()},
    }
    await client.create(rest.CONFIGMAPS, root_ca, namespace="default")
    try:
        yield Clients(client, node)
    finally:
        await controllers.stop()
        await node.aclose()
        await client.aclose()
        await process.stop()


@pytest.fixture
async def admin(clients: Clients) -> rest.Client:
    return clients.admin


@pytest.fixture
async def host(clients: Clients, oci: helpers.Harness) -> AsyncIterator[kubelet.KubeletHost]:
    """A kubelet whose reads go out as ``system:node:<name>`` (the Node authorizer judges them)."""
    running = kubelet.KubeletHost(
        clients.admin,
        kubelet_cmd.node_configs(1),
        oci.runtime,
        client_for=lambda _: clients.node,
    )
    oci.runtime.volumes.resync_seconds = 0.2  # so an update shows within the test
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        await oci.runtime.volumes.aclose()


def pod(name: str, env: list[Object], **spec: Any) -> Object:
    container = helpers.sh("c", "while true; do sleep 0.05; done", env=env)
    container["volumeMounts"] = [{"name": "creds", "mountPath": "/etc/creds", "readOnly": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [{"name": "creds", "secret": {"secretName": "db"}}],
            **spec,
        },
    }


async def test_secret_env_files_and_the_service_account_volume(
    admin: rest.Client, host: kubelet.KubeletHost, oci: helpers.Harness
) -> None:
    """The pod sees its Secret as env and files, its token, CA and namespace, and service vars."""
    data = {"password": base64.b64encode(b"s3cret").decode()}
    secret = {"metadata": {"name": "db"}, "data": data}
    await admin.create(rest.SECRETS, secret, namespace="default")
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    created = await admin.create(rest.PODS, pod("study", env), namespace="default")
    uid = created["metadata"]["uid"]
    assert any(v["name"].startswith("kube-api-access-") for v in created["spec"]["volumes"])

    async def running() -> Object | None:
        found = await admin.get(rest.PODS, "study", namespace="default")
        return found if found.get("status", {}).get("phase") == "Running" else None

    await eventually(running)

    async def run(script: str) -> str:
        code, out, err = await oci.runtime.exec(uid, "c", ["sh", "-c", script])
        assert code == 0, err
        return out.decode()

    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert (await run(f"ls {sa}/")).split() == ["ca.crt", "namespace", "token"]
    assert await run(f"cat {sa}/namespace") == "default"
    root_ca = await admin.get(rest.CONFIGMAPS, "kube-root-ca.crt", namespace="default")
    assert await run(f"cat {sa}/ca.crt") == root_ca["data"]["ca.crt"]
    assert (await run(f"cat {sa}/token")).count(".") == 2  # a JWT
    assert await run("echo $PW; cat /etc/creds/password") == "s3cret\ns3cret"
    service_vars = (await run("env | grep ^KUBERNETES_SERVICE | sort")).split()
    assert [v.partition("=")[0] for v in service_vars] == [
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "KUBERNETES_SERVICE_PORT_HTTPS",
    ]

    secret["data"] = {"password": base64.b64encode(b"rotated").decode()}
    await admin.update(rest.SECRETS, await _with_version(admin, secret), namespace="default")

    async def rotated() -> str | None:
        found = await run("cat /etc/creds/password")
        return found if found == "rotated" else None

    await eventually(rotated)
    assert await run("echo $PW") == "s3cret\n"  # the environment is fixed at start


async def _with_version(admin: rest.Client, secret: Object) -> Object:
    current = await admin.get(rest.SECRETS, "db", namespace="default")
    return {**secret, "metadata": current["metadata"]}


async def test_a_missing_key_shows_create_container_config_error_in_the_pod_status(
    admin: rest.Client, host: kubelet.KubeletHost
) -> None:
    secret = {"metadata": {"name": "db"}, "data": {"user": base64.b64encode(b"u").decode()}}
    await admin.create(rest.SECRETS, secret, namespace="default")
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    await admin.create(rest.PODS, pod("broken", env), namespace="default")

    async def config_error() -> Object | None:
        found = await admin.get(rest.PODS, "broken", namespace="default")
        for status in found.get("status", {}).get("containerStatuses") or ():
            waiting = status.get("state", {}).get("waiting") or {}
            if waiting.get("reason") == "CreateContainerConfigError":
                return waiting
        return None

    waiting = await eventually(config_error)
    assert waiting["message"] == "couldn't find key password in Secret default/db"
