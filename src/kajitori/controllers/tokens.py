"""The tokens controller: legacy service-account token Secrets get their token.

Upstream: pkg/controller/serviceaccount/tokens_controller.go. A Secret of type
``kubernetes.io/service-account-token`` annotated
``kubernetes.io/service-account.name`` is filled with a non-expiring token
for that ServiceAccount (``data.token``), the cluster CA (``ca.crt``) and the
namespace (``namespace``), and gets the account's uid annotation; ``kubectl
describe secret`` then shows the token. A Secret whose ServiceAccount does not
exist, or whose uid annotation names an account that was replaced, is
deleted, as upstream does. Signing is injected (the signer is the API
server's key, which this layer may not touch); keys are ``namespace/name`` of
Secrets, and this controller acts with the controller manager's own
credentials, as upstream's tokens controller.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Callable
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]
# (namespace, account name, account uid, secret name) -> a legacy token
LegacySigner = Callable[[str, str, str, str], str]

SECRET_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"


class TokensController(base.QueueController[str]):
    """Fills legacy token Secrets; ``run(workers)`` until ``shut_down``."""

    name = "serviceaccount-token"
    # Upstream's TokensControllerOptions.MaxRetries default.
    max_retries = 10

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        ca_pem: bytes | str = "",
        sign_legacy: LegacySigner | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.ca = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        self.sign_legacy = sign_legacy
        self.secrets = self.watch(
            informers.informer(rest.SECRETS),
            on_add=self._enqueue_secret,
            on_update=lambda _, new: self._enqueue_secret(new),
        )
        self.accounts = self.watch(informers.informer(rest.SERVICEACCOUNTS))

    def _enqueue_secret(self, secret: Object) -> None:
        if secret.get("type") == SECRET_TYPE:
            self.enqueue(secret)

    async def run(self, workers: int = 1) -> None:
        if self.sign_legacy is None or not self.ca:
            # Standalone over HTTPS there is no signing key to use (upstream needs
            # --service-account-private-key-file); do nothing rather than guess.
            log.warning("%s: no signing key or CA given; not running", self.name)
            return
        await super().run(workers)

    async def sync(self, key: str) -> None:
        secret = self.secrets.indexer.get(key)
        if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
            return
        namespace, name = key.split("/", 1)
        annotations = secret["metadata"].get("annotations") or {}
        account_name = annotations.get(NAME_ANNOTATION, "")
        account = await self._account(namespace, account_name)
        wanted_uid = annotations.get(UID_ANNOTATION, "")
        if account is None or (wanted_uid and wanted_uid != account["metadata"].get("uid")):
            await self._delete(namespace, name)
            return
        if _complete(secret):
            return
        await self.client.update(rest.SECRETS, self._filled(secret, account))

    async def _account(self, namespace: str, name: str) -> Object | None:
        if not name:
            return None
        cached = self.accounts.indexer.get(f"{namespace}/{name}")
        if cached is not None:
            return cached
        try:  # the cache may lag behind an account created just before its Secret
            return await self.client.get(rest.SERVICEACCOUNTS, name, namespace=namespace)
        except rest.ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def _delete(self, namespace: str, name: str) -> None:
        try:
            await self.client.delete(rest.SECRETS, name, namespace=namespace)
        except rest.ApiError as exc:
            if not exc.not_found:
                raise

    def _filled(self, secret: Object, account: Object) -> Object:
        filled = copy.deepcopy(secret)
        meta, account_meta = filled["metadata"], account["metadata"]
        assert self.sign_legacy is not None
        token = self.sign_legacy(
            meta.get("namespace", ""), account_meta["name"], account_meta["uid"], meta["name"]
        )
        data = filled.get("data") or {}
        data.update(
            {
                "token": _b64(token),
                "ca.crt": _b64(self.ca),
                "namespace": _b64(meta.get("namespace", "")),
            }
        )
        filled["data"] = data
        meta.setdefault("annotations", {})[UID_ANNOTATION] = account_meta["uid"]
        return filled


def _complete(secret: Object) -> bool:
    data = secret.get("data") or {}
    uid = ((secret.get("metadata") or {}).get("annotations") or {}).get(UID_ANNOTATION)
    return bool(data.get("token") and data.get("ca.crt") and data.get("namespace") and uid)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
