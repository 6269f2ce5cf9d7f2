"""The API server process: storage, registry, admission, HTTP server, bootstrap.

``APIServerProcess`` assembles one kube-apiserver equivalent from a config
and runs it until stopped. ``kajitori up`` and ``kajitori apiserver`` (and the
pytest fixture) all build it here, so there is one way to start a server.

Start order: PKI → storage backend (+ compactor) → authorizer, registry and
admission → HTTPS listener → bootstrap objects (initial namespaces, the
``kubernetes`` Service, the default RBAC policy) → RBAC index synced → stored
CRDs served → APIServices registered (the aggregator). The steps after the
listener are upstream's post-start hooks: /healthz, /livez and /readyz fail,
naming the unfinished ones, until all have run (``POST_START_HOOKS``). Stop order is the reverse; the listener drains
in-flight requests first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from kajitori.admission import webhooks
from kajitori.admission.chain import AdmissionChain
from kajitori.admission.lister import StoreLister
from kajitori.admission.plugins import certificates as certificate_admission
from kajitori.admission.plugins.cluster_trust_bundle_attest import ClusterTrustBundleAttest
from kajitori.admission.plugins.default_storage_class import DefaultStorageClass
from kajitori.admission.plugins.default_toleration_seconds import DefaultTolerationSeconds
from kajitori.admission.plugins.dra_admin_access import DRAAdminAccess
from kajitori.admission.plugins.limit_ranger import LimitRanger
from kajitori.admission.plugins.namespace_lifecycle import NamespaceLifecycle
from kajitori.admission.plugins.node_restriction import NodeRestriction
from kajitori.admission.plugins.pod_certificate_request import (
    PodCertificateRequestNodeRestriction,
    PodCertificateRequestSigning,
)
from kajitori.admission.plugins.pod_security.admission import PodSecurity
from kajitori.admission.plugins.priority import Priority
from kajitori.admission.plugins.resource_quota import ResourceQuota
from kajitori.admission.plugins.runtime_class import RuntimeClass
from kajitori.admission.plugins.service_account import ServiceAccount
from kajitori.admission.plugins.storage_object_in_use_protection import (
    StorageObjectInUseProtection,
)
from kajitori.admission.policy.mutating import MutatingAdmissionPolicy
from kajitori.admission.policy.validating import ValidatingAdmissionPolicy
from kajitori.admission.webhooks.client import ServiceResolver
from kajitori.auth import authenticator as authenticators
from kajitori.auth import authorizer, bootstrap_policy, pki, rbac
from kajitori.auth import node as node_authz
from kajitori.auth.authn import bootstrap as bootstrap_tokens
from kajitori.auth.authn import serviceaccount, tokenfile, union
from kajitori.client import kubeconfig, rest
from kajitori.machinery import errors
from kajitori.metrics_server import scraper as metrics_scraper
from kajitori.metrics_server import storage as metrics_storage
from kajitori.registry import encryption, install, resource
from kajitori.registry.authentication import tokenreviews
from kajitori.registry.core import (
    bindings,
    componentstatuses,
    pod_eviction,
    serviceaccount_token,
)
from kajitori.registry.flowcontrol import dangling, ensurer
from kajitori.registry.generic.request import UserInfo
from kajitori.registry.generic.store import ListOptions, Store
from kajitori.registry.metrics import resources as metrics_resources
from kajitori.registry.scheduling import priorityclasses
from kajitori.server import bootstrap, crds, master_endpoints
from kajitori.server.aggregator.aggregator import Aggregator
from kajitori.server.apis import APIRegistry
from kajitori.server.app import APIServer
from kajitori.server.filters import audit
from kajitori.server.flowcontrol.filter import PriorityAndFairness
from kajitori.server.handlers import streams
from kajitori.server.http import HttpServer, make_server_ssl_context
from kajitori.storage import interface as storage
from kajitori.storage.compactor import Compactor

log = logging.getLogger(__name__)

StorageKind = Literal["sqlite", "etcd"]
APIVersions = Literal["legacy", "upstream"]
# Upstream's post-start hooks for what ``start`` does once serving: the
# initial objects, the priority classes, the RBAC policy in force, stored CRDs served.
HOOK_BOOTSTRAP = "poststarthook/bootstrap-controller"
HOOK_PRIORITY_CLASSES = "poststarthook/scheduling/bootstrap-system-priority-classes"
HOOK_RBAC = "poststarthook/rbac/bootstrap-roles"
HOOK_CRDS = "poststarthook/crd-informer-synced"
POST_START_HOOKS = (HOOK_BOOTSTRAP, HOOK_PRIORITY_CLASSES, HOOK_RBAC, HOOK_CRDS)
# The user of ``node-simulator.kubeconfig``; bootstrap RBAC binds system:node to it (0049).
NODE_SIMULATOR_USER = "system:kajitori:node-simulator"
# The in-process metrics-server's user; bootstrap RBAC binds system:metrics-server to it.
METRICS_SERVER_USER = "system:metrics-server"


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
    # "legacy": also serve the workload versions upstream removed in 1.16
    # (apps/v1beta1, apps/v1beta2, extensions/v1beta1); "upstream": exactly
    # 1.37's versions. See docs/decisions/0015-legacy-api-versions.md.
    api_versions: APIVersions = "legacy"
    # The in-process metrics-server's scrape period (its --metric-resolution); 0: none,
    # and no metrics.k8s.io served.
    metric_resolution: float = metrics_scraper.DEFAULT_METRIC_RESOLUTION
    # Static bearer tokens (CSV: token,user,uid[,"group1,group2"]).
    token_auth_file: Path | None = None
    # ``up``'s node network (decision 0031): also listen on this host-bridge address (same
    # port), put it in the serving certificate, advertise it in the ``kubernetes``
    # endpoints, and publish ``kube-system/kube-dns`` with endpoints at <it>:53.
    node_network_address: str = ""

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def node_simulator_kubeconfig_path(self) -> Path:
        """For ``kajitori kubelet --nodes N`` in another process (decision 0049)."""
        return self.data_dir / "node-simulator.kubeconfig"


class APIServerProcess:
    """One running API server; ``await start()``, then ``await stop()``."""

    def __init__(self, config: APIServerConfig) -> None:
        self.config = config
        self.backend: storage.Backend | None = None
        self.registry: APIRegistry | None = None
        self.http: HttpServer | None = None
        self.node_network_http: HttpServer | None = None  # on the host bridge (decision 0031)
        self.compactor: Compactor | None = None
        self.pki: pki.ClusterPKI | None = None
        self.rbac = rbac.RBACAuthorizer()
        self.node_authorizer = node_authz.NodeAuthorizer(bootstrap_policy.node_rules())
        self.crds: crds.CRDController | None = None
        self.aggregator: Aggregator | None = None
        self.audit_log: audit.LogBackend | None = None
        self.rewrite_result: encryption.RewriteResult | None = None
        self.token_issuer: serviceaccount.TokenIssuer | None = None
        # What ``v1 componentstatuses`` reports (``up`` marks its in-process components).
        self.component_health: componentstatuses.ComponentHealth | None = None
        # APF's bootstrap configuration and Dangling conditions (started once ready).
        self.apf_ensurer: ensurer.BootstrapEnsurer | None = None
        self.apf_dangling: dangling.DanglingConditionController | None = None
        # API Priority and Fairness: classifies, limits and queues requests.
        self.flow_control: PriorityAndFairness | None = None
        # metrics-server's equivalent: scrapes kubelets for metrics.k8s.io (started once ready).
        self.metrics_storage: metrics_storage.Storage | None = None
        self.metrics_server: metrics_scraper.MetricsServer | None = None
        # Service -> ready endpoint, for the admission webhooks and the aggregator alike.
        self.service_resolver = ServiceResolver(
            lambda: self._lookup("", "v1", "services"),
            lambda: self._lookup("discovery.k8s.io", "v1", "endpointslices"),
        )

    def _lookup(self, group: str, version: str, plural: str) -> Store | None:
        return None if self.registry is None else self.registry.lookup(group, version, plural)

    @property
    def url(self) -> str:
        assert self.http is not None
        host = self.config.advertise_host or self.config.host
        return f"https://{host}:{self.http.port}"

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki.ensure_cluster_pki(
            cfg.data_dir / "pki",
            hostname=socket.gethostname(),
            extra_ip_addresses=[cfg.host, *filter(None, [cfg.node_network_address])],
        )
        self.token_issuer = serviceaccount.TokenIssuer(
            serviceaccount.ensure_signing_key(cfg.data_dir / "pki")
        )
        token_file = (
            tokenfile.TokenFile.from_path(cfg.token_auth_file) if cfg.token_auth_file else None
        )
        self.backend = _backend(cfg)
        await self.backend.start()
        self.compactor = Compactor(self.backend, interval_seconds=cfg.compaction_interval)
        self.compactor.start()
        # --authorization-mode=Node,RBAC as kubeadm sets it, behind the privileged group.
        authz = authorizer.Union(
            [authorizer.PrivilegedGroups("system:masters"), self.node_authorizer, self.rbac]
        )
        reader = _ObjectReader()
        authn = _authenticator(self.token_issuer, reader, token_file)
        self.component_health = componentstatuses.ComponentHealth(
            lambda *gvr: self.registry.lookup(*gvr) if self.registry else None, self.backend
        )
        if cfg.metric_resolution > 0:
            self.metrics_storage = metrics_storage.Storage(cfg.metric_resolution)
        self.registry = _registry(
            self.backend,
            authz,
            self.rbac,
            transformers=_transformers(cfg),
            legacy_versions=cfg.api_versions == "legacy",
            token_apis=_token_apis(self.token_issuer, authn, reader),
            reader=reader,
            component_health=self.component_health,
            metrics=self.metrics_storage,
            service_resolver=self.service_resolver,
        )
        reader.registry = self.registry
        if cfg.rewrite_encrypted_on_start:
            self.rewrite_result = await _rewrite_encrypted(self.backend, self.registry)
        self.audit_log, audit_filter = _audit(cfg)
        self.flow_control = PriorityAndFairness(self.registry.lookup)
        kubelet_client = _kubelet_client(self.pki)
        app = APIServer(
            self.registry,
            server_address=f"{cfg.host}:{cfg.port}",
            authorizer=authz,
            audit=audit_filter,
            authenticator=authn,
            kubelet_client=kubelet_client,
            flow_control=self.flow_control,
        )
        ssl_context = make_server_ssl_context(
            self.pki.apiserver_cert_path, self.pki.apiserver_key_path, self.pki.ca_cert_path
        )
        self.http = HttpServer(app, host=cfg.host, port=cfg.port, ssl_context=ssl_context)
        # Serving starts before the hooks below have run: health fails until they have.
        app.unfinished_hooks.update(POST_START_HOOKS)
        await self.http.start()
        # With --port 0 the real port is known only now; discovery and the
        # kubernetes Endpoints must advertise it.
        app.discovery.server_address = f"{cfg.host}:{self.http.port}"
        advertised: dict[str, str] = {}
        if cfg.node_network_address:
            self.node_network_http = HttpServer(
                app, host=cfg.node_network_address, port=self.http.port, ssl_context=ssl_context
            )
            await self.node_network_http.start()
            advertised = {"api_address": cfg.node_network_address}
        await bootstrap.ensure_initial_objects(self.registry, api_port=self.http.port, **advertised)
        if cfg.node_network_address:
            await master_endpoints.reconcile_cluster_dns(
                self.registry, address=cfg.node_network_address
            )
        app.unfinished_hooks.discard(HOOK_BOOTSTRAP)
        priority_classes = self.registry.lookup("scheduling.k8s.io", "v1", "priorityclasses")
        if priority_classes is not None:
            await priorityclasses.ensure_system_classes(priority_classes)
        app.unfinished_hooks.discard(HOOK_PRIORITY_CLASSES)
        self.rbac.start(bootstrap.rbac_stores(self.registry))
        self.node_authorizer.start(_node_graph_stores(self.registry))
        await self.rbac.wait_synced()
        await self.node_authorizer.wait_synced()
        app.unfinished_hooks.discard(HOOK_RBAC)
        # Stored CRDs are served again before the server reports ready.
        self.crds = crds.CRDController(self.registry, app.openapi)
        self.crds.start()
        await self.crds.wait_synced()
        # Upstream's kube-apiserver-autoregistration: APIServices for what is served,
        # then remote ones proxied. Counted under the CRD hook (it starts after it).
        self.aggregator = Aggregator(
            self.registry,
            front_proxy=pki.ensure_front_proxy_pki(cfg.data_dir / "pki"),
            client_ca_pem=self.pki.ca.cert_pem,
            service_resolver=self.service_resolver,
        )
        await self.aggregator.start()
        app.discovery.remote = self.aggregator.discovery
        app.aggregator = self.aggregator
        app.unfinished_hooks.discard(HOOK_CRDS)
        self._write_kubeconfig()
        self._start_flowcontrol()
        self._start_metrics_server(app, kubelet_client)

    def _start_metrics_server(self, app: APIServer, kubelet: streams.KubeletClient) -> None:
        """Scraping starts once serving: it lists Nodes through the API as metrics-server."""
        if self.metrics_storage is None:
            return
        assert self.pki is not None
        identity = pki.issue_client_cert(self.pki.ca, user=METRICS_SERVER_USER, groups=())
        client = rest.Client.in_process(app, client_cert_pem=identity.cert_pem)
        self.metrics_server = metrics_scraper.MetricsServer(
            client,
            kubelet.ssl_context,
            metric_resolution=self.config.metric_resolution,
            store=self.metrics_storage,
        )
        self.metrics_server.start()

    def _start_flowcontrol(self) -> None:
        """Upstream's APF config producer and consumer, after ready: they cost start-up nothing."""
        assert self.registry is not None
        group = "flowcontrol.apiserver.k8s.io"
        schemas = self.registry.lookup(group, "v1", "flowschemas")
        levels = self.registry.lookup(group, "v1", "prioritylevelconfigurations")
        if schemas is None or levels is None:
            return
        self.apf_ensurer = ensurer.BootstrapEnsurer(schemas, levels)
        self.apf_ensurer.start()
        self.apf_dangling = dangling.DanglingConditionController(schemas, levels)
        self.apf_dangling.start()

    def sign_legacy_token(self, namespace: str, name: str, uid: str, secret_name: str) -> str:
        """A legacy token for a ``kubernetes.io/service-account-token`` Secret (tokens controller)."""
        assert self.token_issuer is not None
        return self.token_issuer.issue_legacy(namespace, name, uid, secret_name=secret_name)

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        kubeconfig.write_kubeconfig(
            self.config.kubeconfig_path,
            server_url=self.url,
            ca_pem=self.pki.ca.cert_pem,
            client_cert_pem=self.pki.admin.cert_pem,
            client_key_pem=self.pki.admin.key_pem,
        )
        # The simulated nodes of another process: one user for all of them, bound to the
        # system:node role cluster-wide (decision 0049). Issued afresh at each start (~1 ms).
        simulator = pki.issue_client_cert(self.pki.ca, user=NODE_SIMULATOR_USER, groups=())
        kubeconfig.write_kubeconfig(
            self.config.node_simulator_kubeconfig_path,
            server_url=self.url,
            ca_pem=self.pki.ca.cert_pem,
            client_cert_pem=simulator.cert_pem,
            client_key_pem=simulator.key_pem,
            user_name=NODE_SIMULATOR_USER,
            context_name=f"{NODE_SIMULATOR_USER}@kajitori",
        )

    async def stop(self, grace: float = 5.0) -> None:
        if self.metrics_server is not None:
            await self.metrics_server.stop()
            await self.metrics_server.client.aclose()
        if self.node_network_http is not None:
            await self.node_network_http.shutdown(grace)
        if self.http is not None:
            await self.http.shutdown(grace)
        if self.compactor is not None:
            await self.compactor.stop()
        for apf in (self.apf_ensurer, self.apf_dangling, self.flow_control):
            if apf is not None:
                await apf.stop()
        if self.aggregator is not None:
            await self.aggregator.stop()
        if self.crds is not None:
            await self.crds.stop()
        await self.rbac.stop()
        await self.node_authorizer.stop()
        if self.registry is not None and isinstance(self.registry.admission, AdmissionChain):
            await self.registry.admission.close()  # webhook plugins' HTTPS connections
        await self.service_resolver.stop()
        if self.backend is not None:
            await self.backend.close()
        if self.audit_log is not None:
            self.audit_log.close()


def _kubelet_client(cluster: pki.ClusterPKI) -> streams.KubeletClient:
    """The API server's client certificate towards kubelets (kubeadm's apiserver-kubelet-client).

    Group ``system:masters``, as kubeadm before 1.29, so a kubelet's
    SubjectAccessReview allows it; issued in memory at each start.
    """
    pair = pki.issue_client_cert(
        cluster.ca, user=streams.KUBELET_CLIENT_USER, groups=("system:masters",)
    )
    return streams.KubeletClient.from_pem(
        ca_pem=cluster.ca.cert_pem, cert_pem=pair.cert_pem, key_pem=pair.key_pem
    )


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


class _ObjectReader:
    """Reads core/v1 objects from the registry for the auth layer (which may not import it)."""

    def __init__(self) -> None:
        self.registry: APIRegistry | None = None

    async def __call__(self, plural: str, namespace: str, name: str) -> dict | None:  # type: ignore[type-arg]
        store = self.registry.lookup("", "v1", plural) if self.registry else None
        if store is None or not name:
            return None
        try:
            return await store.get(namespace, name)
        except errors.StatusError as exc:
            if exc.code == 404:
                return None
            raise

    async def service_account(self, namespace: str, name: str) -> dict | None:  # type: ignore[type-arg]
        return await self("serviceaccounts", namespace, name)


def _authenticator(
    issuer: serviceaccount.TokenIssuer,
    reader: _ObjectReader,
    token_file: tokenfile.TokenFile | None,
) -> authenticators.Authenticator:
    """Upstream's order: token file, service-account tokens, bootstrap tokens."""
    tokens: list[union.TokenAuthenticator] = [] if token_file is None else [token_file]
    tokens.append(serviceaccount.ServiceAccountTokens(issuer.key.public_pem, get_object=reader))
    tokens.append(bootstrap_tokens.BootstrapTokens(reader))
    return authenticators.new_authenticator(tokens)


def _token_apis(
    issuer: serviceaccount.TokenIssuer,
    authn: authenticators.Authenticator,
    reader: _ObjectReader,
) -> tuple[resource.SubresourceCreate, resource.ResourceInfo]:
    """The serviceaccounts/token handler and the TokenReview resource."""
    audiences = (serviceaccount.ISSUER,)

    def sign(namespace: str, name: str, uid: str, *, audiences, expiration_seconds, bound):  # type: ignore[no-untyped-def]
        bound_object = serviceaccount.BoundObject(*bound) if bound else None
        return issuer.issue(
            namespace,
            name,
            uid,
            audiences=audiences,
            expiration_seconds=expiration_seconds,
            bound=bound_object,
        )

    async def check(token: str, audiences: Sequence[str]) -> tuple[UserInfo | None, str]:
        try:
            return await authn.tokens.authenticate_token(token, audiences=audiences), ""
        except union.AuthenticationError as exc:
            return None, str(exc)

    token_request = serviceaccount_token.token_request_handler(
        sign, get_object=reader, api_audiences=audiences
    )
    return token_request, tokenreviews.resource_for(check, api_audiences=audiences)


def _with_token_apis(
    resources: Sequence[resource.ResourceInfo],
    token_apis: tuple[resource.SubresourceCreate, resource.ResourceInfo],
) -> list[resource.ResourceInfo]:
    token_request, token_review = token_apis
    out: list[resource.ResourceInfo] = []
    for info in resources:
        if info.group == "" and info.plural == "serviceaccounts":
            creates = {**info.subresource_create, "token": token_request}
            info = dataclasses.replace(info, subresource_create=creates)
        out.append(info)
    out.append(token_review)
    return out


def _node_graph_stores(registry: APIRegistry) -> dict[str, Store]:
    """The pod, claim and volume stores the Node authorizer's graph follows."""
    stores = {}
    for plural in node_authz.WATCHED:
        store = registry.lookup("", "v1", plural)
        assert store is not None
        stores[plural] = store
    slices = registry.lookup("resource.k8s.io", "v1", node_authz.RESOURCE_SLICES)
    if slices is not None:  # the graph's ResourceSlice -> node edges
        stores[node_authz.RESOURCE_SLICES] = slices
    return stores


def _registry(
    backend: storage.Backend,
    authz: authorizer.Union,
    rbac_authorizer: rbac.RBACAuthorizer,
    *,
    transformers: encryption.EncryptionConfig | None = None,
    legacy_versions: bool = False,
    token_apis: tuple[resource.SubresourceCreate, resource.ResourceInfo] | None = None,
    reader: _ObjectReader | None = None,
    component_health: componentstatuses.ComponentHealth | None = None,
    metrics: metrics_storage.Storage | None = None,
    service_resolver: ServiceResolver | None = None,
) -> APIRegistry:
    holder: list[APIRegistry] = []

    async def get_namespace(name: str) -> dict:  # type: ignore[type-arg]
        store = holder[0].lookup("", "v1", "namespaces")
        assert store is not None
        return await store.get("", name)

    async def get_node(name: str) -> dict:  # type: ignore[type-arg]
        store = holder[0].lookup("", "v1", "nodes")
        assert store is not None
        return await store.get("", name)

    async def list_priority_classes() -> list[dict]:  # type: ignore[type-arg]
        store = holder[0].lookup("scheduling.k8s.io", "v1", "priorityclasses")
        return [] if store is None else (await store.list("", ListOptions())).items

    async def list_storage_classes() -> list[dict]:  # type: ignore[type-arg]
        store = holder[0].lookup("storage.k8s.io", "v1", "storageclasses")
        return [] if store is None else (await store.list("", ListOptions())).items

    # Escalation checks come first: upstream makes them in the RBAC REST
    # storage, before admission runs.
    # Upstream's order: LimitRanger before ServiceAccount, ResourceQuota last,
    # so it charges what every other plugin has let through.
    # One watch of namespaces serves every plugin that reads them by name.
    namespaces = StoreLister(
        lambda: holder[0].lookup("", "v1", "namespaces"), name="admission namespaces watch"
    )
    plugins: list[Any] = [
        rbac.EscalationCheck(rbac_authorizer),
        NamespaceLifecycle(get_namespace, namespaces),
        NodeRestriction(get_node),
        # Upstream's NodeRestriction checks of PodCertificateRequests a kubelet creates.
        PodCertificateRequestNodeRestriction(lambda *gvr: holder[0].lookup(*gvr)),
        LimitRanger(lambda *gvr: holder[0].lookup(*gvr)),
        DefaultTolerationSeconds(),
        Priority(
            list_priority_classes,
            lister=StoreLister(
                lambda: holder[0].lookup("scheduling.k8s.io", "v1", "priorityclasses"),
                name="Priority priorityclasses watch",
            ),
        ),
        DefaultStorageClass(list_storage_classes),
        StorageObjectInUseProtection(),
        # Upstream's CertificateApproval, CertificateSigning, CertificateSubjectRestriction,
        # plus the CSR strategy's requestor filling (needs the request's user).
        certificate_admission.CertificateSigningRequestUser(),
        certificate_admission.CertificateApproval(authz),
        certificate_admission.CertificateSigning(authz),
        certificate_admission.CertificateSubjectRestriction(),
        # Upstream's ClusterTrustBundleAttest, and the PodCertificateRequest status
        # strategy's "sign" check (it needs the request's user).
        ClusterTrustBundleAttest(authz),
        PodCertificateRequestSigning(authz),
    ]
    if reader is not None:
        accounts = StoreLister(
            lambda: holder[0].lookup("", "v1", "serviceaccounts"),
            name="ServiceAccount serviceaccounts watch",
        )
        plugins.append(ServiceAccount(reader.service_account, lister=accounts))
    # Upstream's RuntimeClass comes late, before ResourceQuota charges the overhead it sets.
    plugins.append(RuntimeClass(lambda *gvr: holder[0].lookup(*gvr)))
    # Upstream's PodSecurity validates the final pod: after the mutating plugins,
    # before ValidatingAdmissionPolicy and the webhooks.
    plugins.append(PodSecurity(lambda *gvr: holder[0].lookup(*gvr), namespaces=namespaces))
    # Upstream's ResourceClaim(Template) strategies refuse adminAccess outside admin namespaces.
    plugins.append(
        DRAAdminAccess(lambda: holder[0].lookup("", "v1", "namespaces"), namespaces=namespaces)
    )

    def store_of_kind(group: str, version: str, kind: str) -> Any:
        return next(
            (
                s
                for s in holder[0].stores.values()
                if (s.info.group, s.info.version, s.info.kind) == (group, version, kind)
            ),
            None,
        )

    # Upstream: MutatingAdmissionPolicy, MutatingAdmissionWebhook, ValidatingAdmissionPolicy,
    # ValidatingAdmissionWebhook, ResourceQuota (the chain runs every admit before any validate).
    plugins.append(
        MutatingAdmissionPolicy(
            lambda *gvr: holder[0].lookup(*gvr),
            store_of_kind,
            authz,
            served=lambda: holder[0].resources(),
            namespaces=namespaces,
        )
    )
    plugins.append(
        ValidatingAdmissionPolicy(
            lambda *gvr: holder[0].lookup(*gvr),
            store_of_kind,
            authz,
            served=lambda: holder[0].resources(),
            namespaces=namespaces,
        )
    )
    # Upstream: MutatingAdmissionWebhook after the built-in mutating plugins,
    # ValidatingAdmissionWebhook just before ResourceQuota.
    plugins.extend(
        webhooks.plugins(
            lambda *gvr: holder[0].lookup(*gvr),
            lambda: holder[0].resources(),
            authz,
            namespaces=namespaces,
            service_resolver=service_resolver,
        )
    )
    plugins.append(ResourceQuota(lambda *gvr: holder[0].lookup(*gvr)))
    admission = AdmissionChain(plugins)
    resources: Sequence[resource.ResourceInfo] = install.all_resources(
        authorizer=authz, legacy_versions=legacy_versions
    )
    if token_apis is not None:
        resources = _with_token_apis(resources, token_apis)
    resources = pod_eviction.install(
        resources, lambda: holder[0].lookup("policy", "v1", "poddisruptionbudgets")
    )
    resources = bindings.install(resources, lambda: holder[0].lookup("", "v1", "pods"))
    if component_health is not None:
        resources = [*resources, componentstatuses.resource_for(component_health)]
    if metrics is not None:
        # metrics-server's API, served in process (registry/metrics/resources.py).
        readings = metrics_storage.Readings(metrics)
        resources = [
            *resources,
            *metrics_resources.resources_for(lambda *gvr: holder[0].lookup(*gvr), readings),
        ]
    registry = APIRegistry(
        resources,
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
