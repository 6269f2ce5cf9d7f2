"""Kubeconfig files: writing the admin.conf-style file kubectl reads, and reading one back.

Owns the file format for both directions. ``write_kubeconfig`` embeds the CA
and client credentials as base64 ``*-data`` fields, as kubeadm and kind write
admin.conf, so the file is self-contained; it is created mode 0600 because it
holds a private key. ``load_kubeconfig`` resolves a context to the few things
our own components need to reach the API server (server URL, CA, client cert
and key or bearer token, default namespace), accepting both embedded data and
file paths (relative paths resolve against the kubeconfig's directory, as
client-go does).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import yaml


@dataclasses.dataclass(frozen=True, slots=True)
class KubeConfig:
    """The resolved settings of one kubeconfig context."""

    context: str
    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    namespace: str = "default"
    insecure_skip_tls_verify: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the cluster CA and presenting the client certificate."""
        if self.insecure_skip_tls_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            cadata = self.ca_pem.decode("ascii") if self.ca_pem else None
            context = ssl.create_default_context(cadata=cadata)
        if self.client_cert_pem and self.client_key_pem:
            _load_client_pair(context, self.client_cert_pem, self.client_key_pem)
        return context


def write_kubeconfig(
    path: Path | str,
    *,
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    cluster_name: str = "kajitori",
    user_name: str = "kubernetes-admin",
    context_name: str = "kubernetes-admin@kajitori",
) -> None:
    """Write a single-context kubeconfig with embedded credentials, mode 0600."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": _b64(ca_pem),
                },
            }
        ],
        "users": [
            {
                "name": user_name,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
        "contexts": [
            {"name": context_name, "context": {"cluster": cluster_name, "user": user_name}}
        ],
        "current-context": context_name,
        "preferences": {},
    }
    text = yaml.safe_dump(document, sort_keys=False).encode("utf-8")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.write(fd, text)
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def load_kubeconfig(path: Path | str, context: str | None = None) -> KubeConfig:
    """Resolve ``context`` (default: current-context) of the kubeconfig at ``path``.

    Raises ``ValueError`` naming what is missing when the context, its cluster
    or its user cannot be found.
    """
    source = Path(path)
    document: dict[str, Any] = yaml.safe_load(source.read_text()) or {}
    name = context or document.get("current-context") or ""
    ctx = _named(document, "contexts", "context", name)
    cluster = _named(document, "clusters", "cluster", ctx.get("cluster", ""))
    user = _named(document, "users", "user", ctx["user"]) if ctx.get("user") else {}
    base = source.parent
    if "server" not in cluster:
        raise ValueError(f"cluster {ctx.get('cluster')!r} in {source} has no server")
    return KubeConfig(
        context=name,
        server=cluster["server"],
        ca_pem=_data_or_file(cluster, "certificate-authority", base),
        client_cert_pem=_data_or_file(user, "client-certificate", base),
        client_key_pem=_data_or_file(user, "client-key", base),
        token=_token(user, base),
        namespace=ctx.get("namespace") or "default",
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def _named(document: dict[str, Any], section: str, field: str, name: str) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if entry.get("name") == name:
            value: dict[str, Any] = entry.get(field) or {}
            return value
    raise ValueError(f"kubeconfig has no {field} named {name!r}")


def _data_or_file(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / entry[key]).read_bytes()
    return None


def _token(user: dict[str, Any], base: Path) -> str | None:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        return (base / user["tokenFile"]).read_text().strip()
    return None


def _load_client_pair(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # ssl can only load a certificate chain from files, so the pair passes
    # through a private temporary directory that is removed straight away.
    with tempfile.TemporaryDirectory(prefix="kajitori-tls-") as directory:
        cert_path, key_path = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert_path.write_bytes(cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(key_pem)
        context.load_cert_chain(cert_path, key_path)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
