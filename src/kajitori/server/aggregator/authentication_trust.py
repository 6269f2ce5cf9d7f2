"""``kube-system/extension-apiserver-authentication``: whom aggregated servers should trust
(upstream: the cluster_authentication_trust_controller).

Owns the ConfigMap's content, as kube-apiserver publishes it with kubeadm's
flags: the client CA (``client-ca-file``) and the front proxy's request-header
settings: its CA, the allowed client name ``front-proxy-client`` and the
``X-Remote-User``/``X-Remote-Uid``/``X-Remote-Group``/``X-Remote-Extra-``
headers, each list JSON-encoded. Written at start when missing or different;
CA certificates already published by others are kept (upstream merges them).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kajitori.auth import pki
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.server.apis import APIRegistry

Object = dict[str, Any]

NAMESPACE = "kube-system"
NAME = "extension-apiserver-authentication"
USERNAME_HEADERS = ("X-Remote-User",)
UID_HEADERS = ("X-Remote-Uid",)
GROUP_HEADERS = ("X-Remote-Group",)
EXTRA_HEADER_PREFIXES = ("X-Remote-Extra-",)
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))


def _merged_bundle(existing: str, required: bytes) -> str:
    """The certificates of both bundles, once each, existing ones first."""
    seen: list[bytes] = []
    for text in (existing.encode(), required):
        try:
            certs = x509.load_pem_x509_certificates(text) if text.strip() else []
        except ValueError:
            certs = []
        for cert in certs:
            pem = cert.public_bytes(serialization.Encoding.PEM)
            if pem not in seen:
                seen.append(pem)
    return b"".join(seen).decode()


def _merged_list(existing: str, required: tuple[str, ...]) -> str:
    try:
        current = json.loads(existing) if existing else []
    except ValueError:
        current = []
    merged = [str(v) for v in current if isinstance(v, str)] if isinstance(current, list) else []
    merged += [v for v in required if v not in merged]
    return json.dumps(merged, separators=(",", ":"))


def config_map_data(
    existing: dict[str, str], client_ca: bytes, front_proxy_ca: bytes
) -> dict[str, str]:
    """The ConfigMap's data: what is stored, combined with what this server requires."""
    return {
        "client-ca-file": _merged_bundle(existing.get("client-ca-file", ""), client_ca),
        "requestheader-username-headers": _merged_list(
            existing.get("requestheader-username-headers", ""), USERNAME_HEADERS
        ),
        "requestheader-uid-headers": _merged_list(
            existing.get("requestheader-uid-headers", ""), UID_HEADERS
        ),
        "requestheader-group-headers": _merged_list(
            existing.get("requestheader-group-headers", ""), GROUP_HEADERS
        ),
        "requestheader-extra-headers-prefix": _merged_list(
            existing.get("requestheader-extra-headers-prefix", ""), EXTRA_HEADER_PREFIXES
        ),
        "requestheader-client-ca-file": _merged_bundle(
            existing.get("requestheader-client-ca-file", ""), front_proxy_ca
        ),
        "requestheader-allowed-names": _merged_list(
            existing.get("requestheader-allowed-names", ""), (pki.FRONT_PROXY_CLIENT_USER,)
        ),
    }


async def publish(registry: APIRegistry, client_ca: bytes, front_proxy_ca: bytes) -> None:
    """Create or update the ConfigMap so it holds this server's trust."""
    store = registry.lookup("", "v1", "configmaps")
    if store is None:
        return
    ctx = RequestContext(user=_SYSTEM, field_validation="Ignore")
    try:
        current = await store.get(NAMESPACE, NAME)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "data": config_map_data({}, client_ca, front_proxy_ca),
        }
        await store.create(NAMESPACE, body, ctx)
        return
    data = config_map_data(current.get("data") or {}, client_ca, front_proxy_ca)
    if data != current.get("data"):
        await store.update(NAMESPACE, NAME, {**current, "data": data}, ctx)
