"""The PodCertificateRequest cleaner, run by the controller manager as its own ServiceAccount.

A request created 16 minutes "ago" (the controller's clock runs ahead) is
deleted by a pass; the 15-minute boundary itself is checked on the pure
``expired``. The manager acts as ``kube-system/podcertificaterequestcleaner``,
so this also checks the controller role.
"""

from __future__ import annotations

import base64
import datetime

from cryptography.hazmat.primitives.asymmetric import ed25519
from tests.controllers.conftest import StartControllers, eventually
from tests.registry.certificates import pki

from kajitori.client import rest
from kajitori.controllers import podcertificaterequest_cleaner as cleaner

NAME = "podcertificaterequest-cleaner-controller"


def pcr(name: str) -> dict[str, object]:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "signerName": "example.com/mesh",
            "podName": "web-0",
            "podUID": "pod-uid",
            "serviceAccountName": "default",
            "serviceAccountUID": "sa-uid",
            "nodeName": "node-1",
            "nodeUID": "node-uid",
            "stubPKCS10Request": base64.b64encode(
                pki.stub_request(ed25519.Ed25519PrivateKey.generate())
            ).decode(),
        },
    }


def test_expiry_is_fifteen_minutes_after_creation() -> None:
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    obj = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}
    fifteen = datetime.timedelta(minutes=15)
    assert not cleaner.expired(
        obj, created + fifteen - datetime.timedelta(seconds=1), cleaner.THRESHOLD
    )
    assert cleaner.expired(obj, created + fifteen, cleaner.THRESHOLD)


async def test_old_requests_are_deleted(
    admin: rest.Client, start_controllers: StartControllers
) -> None:
    await admin.create(cleaner.PCRS, pcr("stale"), namespace="default")

    def later() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=16)

    await start_controllers(NAME, options={NAME: {"polling_interval": 0.05, "clock": later}})

    async def gone() -> bool:
        listed = await admin.list(cleaner.PCRS, namespace="default")
        return not listed["items"]

    await eventually(gone)
