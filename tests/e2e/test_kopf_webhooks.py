"""kopf's admission webhooks against kajitori: @kopf.on.validate and @kopf.on.mutate.

kopf serves the webhooks itself (``kopf.WebhookServer``, HTTPS on
127.0.0.1 with a certificate the test issues) and manages their
Validating/MutatingWebhookConfigurations through the API
(``settings.admission.managed``): the configurations it writes (rules for
the custom resource, ``matchPolicy: Equivalent``, ``admissionReviewVersions:
[v1, v1beta1]``, ``timeoutSeconds: 30``) are what kajitori calls. Requests go
through the real kubectl and the official client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.e2e.kopf_operator import example

from kajitori.auth import pki
from kajitori.testing.cluster import wait_until
from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

MANAGED = "kajitori.kopf.dev"
NS = "default"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def build_registry(kubeconfig: Path) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (example.GROUP, example.VERSION, example.PLURAL)

    @kopf.on.login(id="login_fn", registry=registry)
    def login_fn(**_: Any) -> kopf.ConnectionInfo:
        return example._connection_info(kubeconfig)

    @kopf.on.validate(*resource, id="check", registry=registry)
    def check(spec: kopf.Spec, dryrun: bool, **_: Any) -> None:
        if spec.get("field") == "forbidden":
            raise kopf.AdmissionError("field may not be 'forbidden'", code=422)

    @kopf.on.mutate(*resource, id="owner", registry=registry, operations=["CREATE"])
    def owner(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
        if "owner" not in spec:
            patch.spec["owner"] = "kopf"

    return registry


def _settings(tmp: Path) -> kopf.OperatorSettings:
    ca = pki.generate_ca("kopf-webhook-ca")
    serving = pki.issue_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    certfile, pkeyfile = tmp / "tls.crt", tmp / "tls.key"
    certfile.write_bytes(serving.cert_pem)
    pkeyfile.write_bytes(serving.key_pem)
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 10
    settings.admission.managed = MANAGED
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1",
        port=_free_port(),
        host="127.0.0.1",
        certfile=str(certfile),
        pkeyfile=str(pkeyfile),
        cadata=ca.cert_pem,
    )
    return settings


@pytest.fixture(scope="module")
def operator(
    kajitori_module_cluster: InProcessCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessCluster]:
    """The kopf operator with its webhooks, running (standalone) for the whole module."""
    cluster = kajitori_module_cluster
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(example.CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{example.CRD['metadata']['name']}")
    stop, ready = threading.Event(), threading.Event()
    failure: list[BaseException] = []
    settings = _settings(tmp_path_factory.mktemp("kopf-webhook"))

    def main() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=build_registry(cluster.kubeconfig),
                    settings=settings,
                    standalone=True,
                    clusterwide=True,
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=main, name="kopf-webhook-operator", daemon=True)
    thread.start()
    try:
        assert ready.wait(30) and not failure, f"the kopf operator did not start: {failure}"
        with cluster.api_client() as api:
            registration = client.AdmissionregistrationV1Api(api)
            # kopf writes its configurations once its webhook server listens.
            wait_until(
                lambda: (
                    _has_webhooks(registration.list_validating_webhook_configuration())
                    and _has_webhooks(registration.list_mutating_webhook_configuration())
                ),
                timeout=30,
                what="kopf's webhook configurations",
            )
        yield cluster
    finally:
        stop.set()
        thread.join(30)


def _has_webhooks(configurations: Any) -> bool:
    return any(c.metadata.name == MANAGED and c.webhooks for c in configurations.items)


def _example(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{example.GROUP}/{example.VERSION}",
        "kind": "KopfExample",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def test_kopf_configures_its_webhooks_for_the_resource(operator: InProcessCluster) -> None:
    with operator.api_client() as api:
        registration = client.AdmissionregistrationV1Api(api)
        validating = registration.read_validating_webhook_configuration(MANAGED)
    (webhook,) = validating.webhooks
    assert webhook.name == f"check.{MANAGED}"
    assert webhook.client_config.url.startswith("https://127.0.0.1:")
    assert webhook.rules[0].resources == [example.PLURAL]


def test_kopf_validation_denies_with_its_message(operator: InProcessCluster) -> None:
    body = json.dumps(_example("refused", field="forbidden"))
    result = operator.kubectl("create", "-f", "-", stdin=body, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server: error when creating "STDIN": admission webhook "check.{MANAGED}" '
        "denied the request: field may not be 'forbidden'"
    )
    with operator.api_client() as api:
        objects = client.CustomObjectsApi(api)
        with pytest.raises(ApiException) as raised:
            objects.create_namespaced_custom_object(
                example.GROUP,
                example.VERSION,
                NS,
                example.PLURAL,
                _example("refused2", field="forbidden"),
            )
        assert raised.value.status == 422
        with pytest.raises(ApiException) as missing:
            objects.get_namespaced_custom_object(
                example.GROUP, example.VERSION, NS, example.PLURAL, "refused"
            )
        assert missing.value.status == 404


def test_kopf_mutation_is_stored_and_validation_allows(operator: InProcessCluster) -> None:
    operator.kubectl("create", "-f", "-", stdin=json.dumps(_example("accepted", field="fine")))
    with operator.api_client() as api:
        stored = client.CustomObjectsApi(api).get_namespaced_custom_object(
            example.GROUP, example.VERSION, NS, example.PLURAL, "accepted"
        )
    assert stored["spec"] == {"field": "fine", "owner": "kopf"}
    # The validating webhook also judges updates: a forbidden value is refused there too.
    result = operator.kubectl(
        "patch",
        example.PLURAL,
        "accepted",
        "-n",
        NS,
        "--type=merge",
        "-p",
        '{"spec": {"field": "forbidden"}}',
        check=False,
    )
    assert result.returncode == 1
    assert "field may not be 'forbidden'" in result.stderr
