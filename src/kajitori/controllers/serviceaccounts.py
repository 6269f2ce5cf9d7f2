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

from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]
MANAGED_NAMES = ("default",)


class ServiceAccountsController(base.QueueController[str]):
    """Creates the managed ServiceAccounts in each namespace; ``run(workers)`` until ``shut_down``."""

    name = "serviceaccount"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__()
        self.client = client
        self.namespaces = self.watch(
            informers.informer(rest.NAMESPACES),
            on_add=self.enqueue,
            on_update=lambda _, new: self.enqueue(new),
        )
        self.accounts = self.watch(
            informers.informer(rest.SERVICEACCOUNTS), on_delete=self._delete_account
        )

    def _delete_account(self, account: Object) -> None:
        meta = account.get("metadata") or {}
        if meta.get("name") in MANAGED_NAMES:
            self.enqueue_key(meta.get("namespace", ""))

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
