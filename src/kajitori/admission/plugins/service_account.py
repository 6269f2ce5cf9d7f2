"""ServiceAccount admission: every pod runs as a ServiceAccount that exists.

Upstream: plugin/pkg/admission/serviceaccount/admission.go. On pod CREATE:

1. ``spec.serviceAccountName`` defaults to ``default`` (and the deprecated
   ``spec.serviceAccount`` follows it);
2. the account must exist, else 403 ``error looking up service account
   <ns>/<name>: serviceaccount "<name>" not found`` (the ServiceAccount
   controller creates ``default`` shortly after a namespace appears, so
   ``default`` is looked for for up to about 1.5 s, as upstream);
3. unless ``automountServiceAccountToken`` is false on the pod (or, when the
   pod does not say, on the account), the projected volume
   ``kube-api-access-<5 random chars>`` (a bound token refreshed hourly, the
   namespace's ``kube-root-ca.crt`` and the namespace from the downward API)
   is added and mounted read-only at
   ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container and
   init container that does not mount something there already;
4. a pod without ``imagePullSecrets`` gets the account's.

The account is read through an injected getter; given a ``lister``
(``admission.lister``), from there first, as upstream reads its informer,
and through the getter (storage) when the lister cannot answer or does not
hold the account (upstream's live lookup for an account created a moment ago).
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
# (namespace, name) -> the ServiceAccount, or None when it does not exist.
ServiceAccountGetter = Callable[[str, str], Awaitable[Object | None]]

DEFAULT_SERVICE_ACCOUNT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# Upstream's warn-only expiry: a bit over an hour, so kubelets refresh it hourly.
TOKEN_EXPIRATION_SECONDS = 3607
DEFAULT_MODE = 0o644
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_ACCOUNT_ATTEMPTS = 10
# Upstream's rand.String alphabet: no vowels, no confusable characters.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class ServiceAccount(Plugin):
    """The ``ServiceAccount`` admission plugin (mutating on pod create)."""

    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(
        self, get_service_account: ServiceAccountGetter, *, lister: StoreLister | None = None
    ) -> None:
        self.get_service_account = get_service_account
        self.lister = lister

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or store.info.group != "" or store.info.plural != "pods":
            return
        meta = obj.get("metadata") or {}
        if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
            return  # static pods mirrored by a kubelet are not given credentials
        spec = obj.setdefault("spec", {})
        name = (
            spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
        )
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        namespace = meta.get("namespace", "")
        account = await self._lookup(namespace, name)
        if account is None:
            raise errors.forbidden(
                store.gr,
                meta.get("name", ""),
                f"error looking up service account {namespace}/{name}: "
                f'serviceaccount "{name}" not found',
            )
        if should_automount(account, spec):
            mount_token(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = copy.deepcopy(account["imagePullSecrets"])

    async def _lookup(self, namespace: str, name: str) -> Object | None:
        # The ServiceAccount controller creates ``default`` just after its
        # namespace; upstream looks for it up to 10 times, 100-200 ms apart.
        attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(0.1 + random.random() * 0.1)
            if self.lister is not None:
                account = self.lister.cached_get(namespace, name)
                if account is not None:
                    return account
            account = await self.get_service_account(namespace, name)
            if account is not None:
                return account
        return None


def should_automount(account: Object, spec: Object) -> bool:
    """The pod's ``automountServiceAccountToken`` if set, else the account's, else true."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def mount_token(spec: Object) -> None:
    """Add the kube-api-access volume and mount it where no container mounts the path yet."""
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    wanting = [
        c
        for c in containers
        if not any(m.get("mountPath") == MOUNT_PATH for m in c.get("volumeMounts") or ())
    ]
    if not wanting:
        return
    volumes = spec.setdefault("volumes", [])
    name = _volume_name({v.get("name") for v in volumes})
    volumes.append(token_volume(name))
    for container in wanting:
        container.setdefault("volumeMounts", []).append(
            {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}
        )


def token_volume(name: str) -> Object:
    """The projected volume upstream's plugin adds (token, CA bundle, namespace)."""
    return {
        "name": name,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                        "path": "token",
                    }
                },
                {
                    "configMap": {
                        "name": ROOT_CA_CONFIGMAP,
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
            "defaultMode": DEFAULT_MODE,
        },
    }


def _volume_name(taken: set[Any]) -> str:
    while True:
        # Upstream draws these from math/rand: a name, not a secret, so no
        # urandom syscall per character.
        name = VOLUME_PREFIX + "".join(random.choices(_ALPHABET, k=5))
        if name not in taken:
            return name
