"""The API server process: storage, registry, admission, HTTP server, bootstrap.

``APIServerProcess`` assembles one kube-apiserver equivalent from a config
and runs it until stopped. ``kajitori up`` and ``kajitori apiserver`` (and the
pytest fixture) all build it here, so there is one way to start a server.

Start order: PKI → storage backend (+ compactor) → authorizer, registry and
admission → HTTPS listener → bootstrap objects (initial namespaces, the
``kubernetes`` Service, the default RBAC policy) → RBAC index synced. Stop
order is the reverse; the listener drains in-flight requests first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from pathlib import Path
from typing import Literal

from kajitori.admission.chain import AdmissionChain
from kajitori.admission.plugins.namespace_lifecycle import NamespaceLifecycle
from kajitori.auth import authorizer, pki, rbac
from kajitori.client import kubeconfig
from kajitori.registry import encryption, install
from kajitori.server import bootstrap
from kajitori.server.apis import APIRegistry
from kajitori.server.app import APIServer
from kajitori.server.filters import audit
from kajitori.server.http import HttpServer, make_server_ssl_context
from kajitori.storage import interface as storage
from kajitori.storage.compactor import Compactor

log = logging.getLogger(__name__)

StorageKind = Literal["sqlite", "etcd"]


@dataclasses.dataclass
class APIServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    storage: StorageKind = "sqlite"
    etcd_endpoint: str = ""
    etcd_prefix: str = ""
    compaction_interval: float = 300.0
    advertise_host: str = ""
    # An EncryptionConfiguration file; else, with generate_encryption_config,
    # the data dir's own (created on first start), else no encryption.
    encryption_provider_config: Path | None = None
    generate_encryption_config: bool = False
    rewrite_encrypted_on_start: bool = False
    audit_policy_file: Path | None = None
    audit_log_path: str = ""
    audit_log_maxsize: int = 0
    audit_log_maxbackup: int = 0

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"


class APIServerProcess:
    """One running API server; ``await start()``, then ``await stop()``."""

    def __init__(self, config: APIServerConfig) -> None:
        self.config = config
        self.backend: storage.Backend | None = None
        self.registry: APIRegistry | None = None
        self.http: HttpServer | None = None
        self.compactor: Compactor | None = None
        self.pki: pki.ClusterPKI | None = None
        self.rbac = rbac.RBACAuthorizer()
        self.audit_log: audit.LogBackend | None = None
        self.rewrite_result: encryption.RewriteResult | None = None

    @property
    def url(self) -> str:
        assert self.http is not None
        host = self.config.advertise_host or self.config.host
        return f"https://{host}:{self.http.port}"

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki.ensure_cluster_pki(
            cfg.data_dir / "pki", hostname=socket.gethostname(), extra_ip_addresses=[cfg.host]
        )
        self.backend = _backend(cfg)
        await self.backend.start()
        self.compactor = Compactor(self.backend, interval_seconds=cfg.compaction_interval)
        self.compactor.start()
        authz = authorizer.Union([authorizer.PrivilegedGroups("system:masters"), self.rbac])
        self.registry = _registry(self.backend, authz, self.rbac, transformers=_transformers(cfg))
        if cfg.rewrite_encrypted_on_start:
            self.rewrite_result = await _rewrite_encrypted(self.backend, self.registry)
        self.audit_log, audit_filter = _audit(cfg)
        app = APIServer(
            self.registry,
            server_address=f"{cfg.host}:{cfg.port}",
            authorizer=authz,
            audit=audit_filter,
        )
        ssl_context = make_server_ssl_context(
            self.pki.apiserver_cert_path, self.pki.apiserver_key_path, self.pki.ca_cert_path
        )
        self.http = HttpServer(app, host=cfg.host, port=cfg.port, ssl_context=ssl_context)
        await self.http.start()
        # With --port 0 the real port is known only now; discovery and the
        # kubernetes Endpoints must advertise it.
        app.discovery.server_address = f"{cfg.host}:{self.http.port}"
        await bootstrap.ensure_initial_objects(self.registry, api_port=self.http.port)
        self.rbac.start(bootstrap.rbac_stores(self.registry))
        await self.rbac.wait_synced()
        self._write_kubeconfig()

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        kubeconfig.write_kubeconfig(
            self.config.kubeconfig_path,
            server_url=self.url,
            ca_pem=self.pki.ca.cert_pem,
            client_cert_pem=self.pki.admin.cert_pem,
            client_key_pem=self.pki.admin.key_pem,
        )

    async def stop(self, grace: float = 5.0) -> None:
        if self.http is not None:
            await self.http.shutdown(grace)
        if self.compactor is not None:
            await self.compactor.stop()
        await self.rbac.stop()
        if self.backend is not None:
            await self.backend.close()
        if self.audit_log is not None:
            self.audit_log.close()


def _backend(cfg: APIServerConfig) -> storage.Backend:
    if cfg.storage == "etcd":
        from kajitori.storage.etcd import EtcdBackend

        if not cfg.etcd_endpoint:
            raise ValueError("--etcd-endpoint is required with --storage etcd")
        return EtcdBackend(cfg.etcd_endpoint, prefix=cfg.etcd_prefix)
    from kajitori.storage.sqlite import SqliteBackend

    return SqliteBackend(cfg.data_dir / "kajitori.db")


def _transformers(cfg: APIServerConfig) -> encryption.EncryptionConfig | None:
    path = cfg.encryption_provider_config
    if path is None and cfg.generate_encryption_config:
        path = encryption.ensure_default_config(cfg.data_dir)
    return None if path is None else encryption.load_config(path)


async def _rewrite_encrypted(
    backend: storage.Backend, registry: APIRegistry
) -> encryption.RewriteResult:
    targets = [
        (store.prefix, store.transformer)
        for store in registry.stores.values()
        if isinstance(store.transformer, encryption.ResourceTransformer)
    ]
    return await encryption.rewrite_stale(backend, targets)


def _audit(cfg: APIServerConfig) -> tuple[audit.LogBackend | None, audit.AuditFilter | None]:
    """Upstream audits only with both a policy and a log path."""
    if cfg.audit_policy_file is None or not cfg.audit_log_path:
        return None, None
    policy = audit.load_policy(cfg.audit_policy_file)
    log_backend = audit.LogBackend(
        cfg.audit_log_path, max_mb=cfg.audit_log_maxsize, max_backups=cfg.audit_log_maxbackup
    )
    return log_backend, audit.AuditFilter(policy, log_backend.write)


def _registry(
    backend: storage.Backend,
    authz: authorizer.Union,
    rbac_authorizer: rbac.RBACAuthorizer,
    *,
    transformers: encryption.EncryptionConfig | None = None,
) -> APIRegistry:
    holder: list[APIRegistry] = []

    async def get_namespace(name: str) -> dict:  # type: ignore[type-arg]
        store = holder[0].lookup("", "v1", "namespaces")
        assert store is not None
        return await store.get("", name)

    # Escalation checks come first: upstream makes them in the RBAC REST
    # storage, before admission runs.
    admission = AdmissionChain(
        [rbac.EscalationCheck(rbac_authorizer), NamespaceLifecycle(get_namespace)]
    )
    registry = APIRegistry(
        install.all_resources(authorizer=authz),
        backend,
        admission=admission,
        transformers=transformers.transformer_for if transformers else None,
    )
    holder.append(registry)
    return registry


async def run_until_stopped(process: APIServerProcess, stop: asyncio.Event) -> None:
    await process.start()
    try:
        await stop.wait()
    finally:
        await process.stop()
