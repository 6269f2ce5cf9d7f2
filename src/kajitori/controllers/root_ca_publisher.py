"""The root CA publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

Upstream: pkg/controller/certificates/rootcacertpublisher/publisher.go. Pods
read the cluster CA from it (the ServiceAccount admission plugin projects
its ``ca.crt`` next to the token). Keys are namespace names, enqueued when a
namespace appears or changes and when the ConfigMap is changed or deleted;
``sync`` creates the ConfigMap, or puts back its content (``ca.crt`` and
upstream's description annotation) when someone altered it. Reads come from
the informers only: the controller's role may create and update ConfigMaps.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]
CONFIGMAP_NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


class RootCACertPublisher(base.QueueController[str]):
    """Keeps ``kube-root-ca.crt`` current in each namespace; ``run(workers)`` until ``shut_down``."""

    name = "root-ca-cert-publisher"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        ca_pem: bytes | str = "",
    ) -> None:
        super().__init__()
        self.client = client
        self.ca = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        self.namespaces = self.watch(
            informers.informer(rest.NAMESPACES),
            on_add=self.enqueue,
            on_update=lambda _, new: self.enqueue(new),
        )
        self.configmaps = self.watch(
            informers.informer(rest.CONFIGMAPS),
            on_update=lambda _, new: self._enqueue_configmap(new),
            on_delete=self._enqueue_configmap,
        )

    def _enqueue_configmap(self, configmap: Object) -> None:
        meta = configmap.get("metadata") or {}
        if meta.get("name") == CONFIGMAP_NAME:
            self.enqueue_key(meta.get("namespace", ""))

    async def run(self, workers: int = 1) -> None:
        if not self.ca:
            # Upstream needs --root-ca-file; without a CA there is nothing to publish.
            log.warning("%s: no CA given; not running", self.name)
            return
        await super().run(workers)

    async def sync(self, namespace: str) -> None:
        ns = self.namespaces.indexer.get(namespace)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        current = self.configmaps.indexer.get(f"{namespace}/{CONFIGMAP_NAME}")
        try:
            if current is None:
                await self.client.create(
                    rest.CONFIGMAPS, self._wanted(namespace), namespace=namespace
                )
            elif not self._up_to_date(current):
                await self.client.update(rest.CONFIGMAPS, self._repaired(current))
        except rest.ApiError as exc:
            if exc.conflict or exc.not_found or _terminating(exc):
                return  # the cache lags or the namespace is going; events bring us back
            raise

    def _wanted(self, namespace: str) -> Object:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP_NAME,
                "namespace": namespace,
                "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
            },
            "data": {"ca.crt": self.ca},
        }

    def _up_to_date(self, configmap: Object) -> bool:
        annotations = (configmap.get("metadata") or {}).get("annotations") or {}
        return (
            configmap.get("data") == {"ca.crt": self.ca}
            and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION
        )

    def _repaired(self, configmap: Object) -> Object:
        repaired = copy.deepcopy(configmap)
        repaired["data"] = {"ca.crt": self.ca}
        annotations = repaired["metadata"].setdefault("annotations", {})
        annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
        return repaired


def _terminating(exc: rest.ApiError) -> bool:
    return exc.code == 403 and "is being terminated" in exc.message
