"""The served API: one Store per resource, and the discovery documents describing them.

Built once at start from ``registry.install.all_resources()``; routing looks
stores up here by (group, version, plural), and discovery (``/api``,
``/apis``, per-group and aggregated v2 documents) is rendered from the same
``ResourceInfo`` declarations, so what is served and what is advertised
cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.generic import hooks
from kajitori.registry.generic.store import Store, Transformer
from kajitori.registry.resource import ResourceInfo
from kajitori.server.handlers import streams
from kajitori.storage import interface as storage

# The order upstream lists groups in discovery (by group priority), then by name.
_GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    # Only with the old workload versions served (--api-versions=legacy);
    # last, so that kubectl resolves "deployments" to apps first.
    "extensions",
)

_SUBRESOURCE_VERBS = ("get", "patch", "update")
# Upstream's CSR approval is a full subresource (get/patch/update), unlike namespaces/finalize.
_CSR_APPROVAL = ("certificatesigningrequests", "approval")
# Update-strategy subresources that upstream also serves get and patch on.
_GET_PATCH_UPDATE = (_CSR_APPROVAL, ("pods", "ephemeralcontainers"), ("pods", "resize"))


def storage_version_hash(group: str, version: str, kind: str) -> str:
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


class APIRegistry:
    """Every served resource's Store, indexed for routing and discovery."""

    def __init__(
        self,
        resources: Sequence[ResourceInfo],
        backend: storage.Backend,
        *,
        transformers: Callable[[errors.GroupResource], Transformer] | None = None,
        admission: hooks.Admission | None = None,
    ) -> None:
        """``transformers`` gives each resource its storage transformer (encryption at rest)."""
        self.backend = backend
        self.stores: dict[tuple[str, str, str], Store] = {}
        self._transformers = transformers
        self._admission = admission
        for info in resources:
            transformer = transformers(info.storage_group_resource) if transformers else None
            store = Store(info, backend, transformer=transformer, admission=admission)
            self.stores[(info.group, info.version, info.plural)] = store

    def add_resource(
        self,
        info: ResourceInfo,
        *,
        wrap: Callable[[Transformer | None], Transformer] | None = None,
    ) -> Store:
        """Serve ``info`` from now on (custom resources are added at run time).

        ``wrap`` decorates the resource's storage transformer (a CRD version
        that is not the storage version converts on the way in and out).
        """
        transformers = self._transformers
        transformer = transformers(info.storage_group_resource) if transformers else None
        if wrap is not None:
            transformer = wrap(transformer)
        store = Store(info, self.backend, transformer=transformer, admission=self._admission)
        self.stores[(info.group, info.version, info.plural)] = store
        return store

    def remove_resource(self, group: str, version: str, plural: str) -> Store | None:
        """Stop serving a resource; the caller stops the store's watch cache."""
        return self.stores.pop((group, version, plural), None)

    @property
    def admission(self) -> hooks.Admission | None:
        """The admission every store calls (the server closes it when it stops)."""
        return self._admission

    def lookup(self, group: str, version: str, plural: str) -> Store | None:
        return self.stores.get((group, version, plural))

    def store_for_kind(self, group: str, kind: str) -> Store | None:
        for (g, _, _), store in self.stores.items():
            if g == group and store.info.kind == kind:
                return store
        return None

    def resources(self) -> Iterable[ResourceInfo]:
        return (store.info for store in self.stores.values())

    def group_versions(self) -> dict[str, list[str]]:
        """{group: [versions, preferred first]} in discovery order."""
        groups: dict[str, list[str]] = {}
        for group, version, _ in self.stores:
            versions = groups.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        order = {g: i for i, g in enumerate(_GROUP_ORDER)}
        return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    def has_group_version(self, group: str, version: str) -> bool:
        return version in self.group_versions().get(group, [])

    # ----- discovery documents --------------------------------------------

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": self.group_versions().get("", []),
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }

    def api_group(self, group: str) -> dict[str, Any]:
        versions = self.group_versions()[group]
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = []
        for group in self.group_versions():
            if group:
                groups.append(self.api_group(group))
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for info in self.resources():
            if info.group == group and info.version == version:
                resources.append(_api_resource(info))
                resources.extend(_api_subresources(info))
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def aggregated_discovery(self, *, legacy: bool) -> dict[str, Any]:
        """apidiscovery.k8s.io/v2 APIGroupDiscoveryList for /api (legacy) or /apis."""
        items = []
        for group, versions in self.group_versions().items():
            if (group == "") != legacy:
                continue
            metadata: dict[str, Any] = {"creationTimestamp": None}
            if group:
                metadata["name"] = group
            items.append(
                {
                    "metadata": metadata,
                    "versions": [self._discovery_version(group, v) for v in versions],
                }
            )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }

    def _discovery_version(self, group: str, version: str) -> dict[str, Any]:
        resources = [
            _discovery_resource(info)
            for info in self.resources()
            if info.group == group and info.version == version
        ]
        return {"version": version, "resources": resources, "freshness": "Current"}


def _api_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    # Every served version of a resource reports its storage version's hash.
    entry["storageVersionHash"] = storage_version_hash(*info.storage_gvk)
    return entry


def _subresources(info: ResourceInfo) -> list[str]:
    """Stored and streaming (``handlers/streams.py``) subresources, sorted as upstream lists them."""
    return sorted({*info.subresource_names, *streams.discovery(info.group, info.plural)})


def _subresource_kind(info: ResourceInfo, sub: str) -> tuple[str, str, str]:
    streamed = streams.discovery(info.group, info.plural).get(sub)
    if streamed is not None:  # e.g. services/proxy: ServiceProxyOptions
        return info.group, info.version, streamed[0]
    if sub == "scale":
        return "autoscaling", "v1", "Scale"
    if sub == "eviction":
        # Upstream's EvictionREST reports policy/v1 (kubectl drain looks for it).
        return "policy", "v1", "Eviction"
    return info.group, info.version, info.kind


def _subresource_verbs(info: ResourceInfo, sub: str) -> list[str]:
    streamed = streams.discovery(info.group, info.plural).get(sub)
    if streamed is not None:
        return list(streamed[1])
    if sub in ("status", "scale") or (info.plural, sub) in _GET_PATCH_UPDATE:
        return list(_SUBRESOURCE_VERBS)
    if sub in info.extra_strategies:
        return ["update"]
    return ["create"]


def _api_subresources(info: ResourceInfo) -> list[dict[str, Any]]:
    out = []
    for sub in _subresources(info):
        group, version, kind = _subresource_kind(info, sub)
        entry: dict[str, Any] = {
            "name": f"{info.plural}/{sub}",
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": kind,
            "verbs": _subresource_verbs(info, sub),
        }
        if sub in ("scale", "eviction"):
            entry["group"] = group
            entry["version"] = version
        out.append(entry)
    return out


def _discovery_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs = []
    for sub in _subresources(info):
        group, version, kind = _subresource_kind(info, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": _subresource_verbs(info, sub),
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry
