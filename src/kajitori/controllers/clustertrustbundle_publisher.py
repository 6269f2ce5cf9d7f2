"""Publishes the kube-apiserver serving CA as a ClusterTrustBundle.

Mirrors upstream's pkg/controller/certificates/clustertrustbundlepublisher,
which kube-controller-manager runs as
``kube-apiserver-serving-clustertrustbundle-publisher-controller`` since
ClusterTrustBundle went GA (1.37): for the signer
``kubernetes.io/kube-apiserver-serving`` it keeps exactly one bundle, named
``kubernetes.io:kube-apiserver-serving:`` + the hex of the first 12 bytes of
the CA bundle's SHA-256, holding the CA that signs the API server's serving
certificate; bundles of that signer with another name are deleted. Pods
mount it with a ``clusterTrustBundle`` projected volume source to trust the
API server.

In kajitori the cluster CA signs the serving certificate, so that CA
(``ca_pem``, given by the controller manager as to the root CA publisher)
is published. Without one the controller idles, as upstream's does without a
configured signer. Any change to a bundle of the signer brings it back to
that one bundle.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]

SIGNER = "kubernetes.io/kube-apiserver-serving"
BUNDLES = rest.Resource(
    "certificates.k8s.io", "v1", "clustertrustbundles", False, "ClusterTrustBundle"
)
_KEY = ""  # one reconciliation covers everything


def bundle_name(signer: str, bundle: bytes) -> str:
    """Upstream's constructBundleName."""
    digest = hashlib.sha256(bundle).digest()[:12]
    return signer.replace("/", ":") + ":" + digest.hex()


def _signer(obj: Object) -> str:
    spec = obj.get("spec")
    return str(spec.get("signerName") or "") if isinstance(spec, dict) else ""


class ClusterTrustBundlePublisher(base.QueueController[str]):
    """Keeps the one ClusterTrustBundle of ``kubernetes.io/kube-apiserver-serving``."""

    name = "kube-apiserver-serving-clustertrustbundle-publisher-controller"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder | None = None,
        ca_pem: bytes | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.ca_pem = ca_pem or b""
        self.bundles: informer.Informer | None = None
        if self.ca_pem:
            self.bundles = self.watch(informers.informer(BUNDLES), on_change=self._changed)

    async def run(self, workers: int = 1) -> None:
        if self.bundles is None:
            log.info("%s: no kube-apiserver serving CA given; not publishing", self.name)
        else:
            # Upstream queues one sync at start, whatever the informer shows.
            self.enqueue_key(_KEY)
        await super().run(workers)

    def _changed(self, obj: Object) -> None:
        if _signer(obj) == SIGNER:
            self.enqueue_key(_KEY)

    async def sync(self, key: str) -> None:
        assert self.bundles is not None
        text = self.ca_pem.decode()
        name = bundle_name(SIGNER, self.ca_pem)
        current = self.bundles.indexer.get(name)
        if current is None:
            await self._create(name, text)
        elif (current.get("spec") or {}).get("trustBundle") != text:
            updated = {**current, "spec": {**current["spec"], "trustBundle": text}}
            await self.client.update(BUNDLES, updated)
        failed: rest.ApiError | None = None
        for other in self.bundles.indexer.list():
            other_name = other["metadata"]["name"]
            if _signer(other) != SIGNER or other_name == name:
                continue
            try:
                await self.client.delete(BUNDLES, other_name)
            except rest.ApiError as exc:
                if not exc.not_found:
                    log.warning("%s: failed to remove %s: %s", self.name, other_name, exc)
                    failed = exc
        # Upstream returns the deletion error so that the key is retried.
        if failed is not None:
            raise failed

    async def _create(self, name: str, text: str) -> None:
        body = {
            "apiVersion": BUNDLES.api_version,
            "kind": BUNDLES.kind,
            "metadata": {"name": name},
            "spec": {"signerName": SIGNER, "trustBundle": text},
        }
        try:
            await self.client.create(BUNDLES, body)
        except rest.ApiError as exc:
            if exc.code != 409:
                raise
