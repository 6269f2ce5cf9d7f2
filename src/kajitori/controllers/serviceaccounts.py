"""The ServiceAccounts controller: every active namespace has a ``default`` ServiceAccount.

Upstream: pkg/controller/serviceaccount/serviceaccounts_controller.go. Keys
are namespace names, enqueued when a namespace appears or changes and when a
managed account is deleted; ``sync`` reads both caches and creates the
account when it is missing. Reads come only from the informers: the
controller's role (``system:controller:service-account-controller``) may
create ServiceAccounts and nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from kajitori.client import events, informer, rest, workqueue
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]
MANAGED_NAMES = ("default",)


class ServiceAccountsController:
    """Creates the managed ServiceAccounts in each namespace; ``run(workers)`` until ``shut_down``."""

    name = "serviceaccount"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        self.client = client
        self.queue: workqueue.RateLimitingQueue[str] = workqueue.RateLimitingQueue(name=self.name)
        self.namespaces = informers.informer(rest.NAMESPACES)
        self.accounts = informers.informer(rest.SERVICEACCOUNTS)
        self.namespaces.add_event_handler(
            informer.EventHandler(
                on_add=self._enqueue_namespace,
                on_update=lambda _, new: self._enqueue_namespace(new),
            )
        )
        self.accounts.add_event_handler(informer.EventHandler(on_delete=self._delete_account))

    def _enqueue_namespace(self, namespace: Object) -> None:
        self.queue.add(namespace["metadata"]["name"])

    def _delete_account(self, account: Object | informer.DeletedFinalStateUnknown) -> None:
        if isinstance(account, informer.DeletedFinalStateUnknown):
            account = account.obj
        meta = account.get("metadata") or {}
        if meta.get("name") in MANAGED_NAMES:
            self.queue.add(meta.get("namespace", ""))

    async def run(self, workers: int = 1) -> None:
        await self.namespaces.wait_for_sync()
        await self.accounts.wait_for_sync()
        await base.run_workers(self.queue, self.sync, workers, name=self.name)

    def shut_down(self) -> None:
        self.queue.shut_down()

    async def sync(self, namespace: str) -> None:
        ns = self.namespaces.indexer.get(namespace)
        if ns is None or not _active(ns):
            return
        for name in MANAGED_NAMES:
            if self.accounts.indexer.get(f"{namespace}/{name}") is not None:
                continue
            await self._create(namespace, name)

    async def _create(self, namespace: str, name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            await self.client.create(rest.SERVICEACCOUNTS, body, namespace=namespace)
        except rest.ApiError as exc:
            # Already there (the cache lags), or the namespace is going away.
            if exc.conflict or exc.not_found or _terminating_refusal(exc):
                return
            raise


def _active(namespace: Object) -> bool:
    if (namespace.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (namespace.get("status") or {}).get("phase", "Active") == "Active"


def _terminating_refusal(exc: rest.ApiError) -> bool:
    return exc.code == 403 and "is being terminated" in exc.message
