"""ResourceInfo: the one declaration of a resource, from which everything is derived.

Each resource module (``registry/core/pods.py``, ``registry/apps/deployments.py``,
...) declares one ``ResourceInfo``: scope, names, strategy, subresources,
selectable fields and table. Discovery, routing, field-selector allow-lists,
Table output and storage keys all read it; nothing repeats it (upstream spreads
the same facts over storage.go, strategy.go, conversion.go and printers.go).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kajitori.machinery import errors, labels
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]
FieldExtractor = Callable[[Object], str]
Rollback = Callable[[], Awaitable[None]]
# A create that is answered, not stored (SubjectAccessReview, SelfSubjectReview):
# (namespace, decoded object, request context) -> the response object.
VirtualCreate = Callable[[str, Object, Any], Awaitable[Object]]


class VirtualReads(Protocol):
    """Answers get and list of a read-only kind computed per request, never stored.

    ``namespace`` is the request's ("" for cluster-scoped kinds and for a list
    across all namespaces).
    """

    async def get(self, namespace: str, name: str) -> Object: ...

    async def list(self, namespace: str) -> list[Object]: ...


# POST to a subresource of one object (pods/binding): (store, namespace, name,
# decoded body, request context) -> the response object.
SubresourceCreate = Callable[[Any, str, str, Object, Any], Awaitable[Object]]


class Allocator(Protocol):
    """Hands out cluster-wide unique values (Service IPs, NodePorts) before a write.

    ``allocate`` fills them into ``obj`` (``old`` is the stored object on
    update) and returns how to give them back if the write then fails;
    ``release`` frees what ``obj`` held and ``keep`` (its replacement) does not.
    """

    async def allocate(
        self, backend: Any, obj: Object, old: Object | None, *, dry_run: bool
    ) -> Rollback: ...

    async def release(self, backend: Any, obj: Object, keep: Object | None = None) -> None: ...


ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def _meta_name(obj: Object) -> str:
    value: str = obj.get("metadata", {}).get("name", "")
    return value


def _meta_namespace(obj: Object) -> str:
    value: str = obj.get("metadata", {}).get("namespace", "")
    return value


METADATA_FIELDS: Mapping[str, FieldExtractor] = {
    "metadata.name": _meta_name,
    "metadata.namespace": _meta_namespace,
}


def nested_str(*path: str) -> FieldExtractor:
    """An extractor for a string at ``path`` ("" when absent), for selectable fields."""

    def extract(obj: Object) -> str:
        node: Any = obj
        for key in path:
            if not isinstance(node, dict):
                return ""
            node = node.get(key)
        if node is None:
            return ""
        if isinstance(node, bool):
            return "true" if node else "false"
        return str(node)

    return extract


@dataclass(frozen=True, slots=True)
class ScaleSubresource:
    """Where a kind keeps what ``/scale`` reads and writes (JSON paths as key tuples)."""

    spec_replicas: tuple[str, ...] = ("spec", "replicas")
    status_replicas: tuple[str, ...] = ("status", "replicas")
    # Path to a metav1.LabelSelector (rendered to a string) or to a string selector.
    label_selector: tuple[str, ...] | None = ("spec", "selector")
    selector_is_string: bool = False

    def scale_of(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The ``autoscaling/v1 Scale`` that ``/scale`` shows for ``obj`` (and admission sends)."""
        meta = obj.get("metadata") or {}
        status: dict[str, Any] = {"replicas": _dig(obj, self.status_replicas) or 0}
        if selector := self._selector_text(obj):
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in _SCALE_METADATA if k in meta},
            "spec": {"replicas": _dig(obj, self.spec_replicas) or 0},
            "status": status,
        }

    def _selector_text(self, obj: Mapping[str, Any]) -> str:
        raw = None if self.label_selector is None else _dig(obj, self.label_selector)
        if raw is None:
            return ""
        if self.selector_is_string:
            return str(raw)
        if isinstance(raw, dict) and "matchLabels" not in raw and "matchExpressions" not in raw:
            # A plain map selector (ReplicationController).
            return ",".join(f"{k}={v}" for k, v in sorted(raw.items()))
        try:
            return str(labels.selector_from_label_selector(raw))
        except labels.SelectorError:  # never stored: validation refuses it
            return ""


# The workload's metadata a Scale carries.
_SCALE_METADATA = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")


def _dig(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _no_definitions() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Conversion:
    """How a resource served in an older version maps onto its stored version.

    Upstream keeps one storage version per resource and converts every
    request and response through its internal type; we keep only the
    storage version's shape and convert at the handler boundary:
    ``to_storage`` takes a decoded request body in the served version,
    applies that version's defaults (they differ: selector from template
    labels, other rollout defaults) and returns the storage-version object
    (it may reuse its argument); ``from_storage`` returns a new object in the
    served version and never mutates its argument (watch events are shared).
    ``definitions`` gives the served version's OpenAPI definitions, keyed and
    shaped as ``api.definitions`` (upstream no longer ships them).
    """

    storage_group: str
    storage_version: str
    to_storage: Callable[[Object], Object]
    from_storage: Callable[[Object], Object]
    definitions: Callable[[], Mapping[str, Any]] = _no_definitions
    # ``to_storage`` without the served version's defaults, for a server-side apply
    # configuration: upstream defaults the merged result (in the served version), so
    # the applier owns only the fields it sent. None: ``to_storage`` has no defaults.
    to_storage_undefaulted: Callable[[Object], Object] | None = None


@dataclass(frozen=True)
class ResourceInfo:
    """Everything the API server needs to know to serve one resource."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    strategy: strategies.Strategy
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status: strategies.Strategy | None = None
    scale: ScaleSubresource | None = None
    # Field selectors beyond metadata.name/metadata.namespace, as upstream's
    # AddFieldLabelConversionFunc + ToSelectableFields (one table, both uses).
    selectable_fields: Mapping[str, FieldExtractor] = field(default_factory=dict)
    table: tables.Table = tables.DEFAULT_TABLE
    # Extra subresources served by dedicated handlers (e.g. pods/log, pods/binding).
    extra_subresources: tuple[str, ...] = ()
    # Strategies for extra subresources that are plain updates (e.g. namespaces/finalize).
    extra_strategies: Mapping[str, strategies.Strategy] = field(default_factory=dict)
    # Whether metadata.generation counts desired-state changes (upstream sets
    # it in the kind's PrepareForCreate/PrepareForUpdate; kinds without it
    # have no generation at all).
    tracks_generation: bool = False
    # Unique values handed out before storing (Service ClusterIPs and NodePorts).
    allocator: Allocator | None = None
    # DELETE answers with the deleted object instead of a Status (upstream's
    # ReturnDeletedObject, e.g. pods).
    return_deleted_object: bool = False
    # Create-only kinds that are computed per request and never stored
    # (upstream's rest.Creater without a store); verbs should be ("create",).
    virtual_create: VirtualCreate | None = None
    # Read-only kinds computed per request and never stored (componentstatuses);
    # verbs should be ("get", "list").
    virtual_reads: VirtualReads | None = None
    # Extra subresources answered by a create handler (upstream's
    # rest.Creater on a subresource, e.g. pods/binding); each is also listed
    # in ``extra_subresources``.
    subresource_create: Mapping[str, SubresourceCreate] = field(default_factory=dict)
    # Served in a version other than the stored one (apps/v1beta1, ...): see Conversion.
    conversion: Conversion | None = None
    # Sent as a Warning header on every request to this version (upstream's
    # deprecated-API warnings).
    deprecation_warning: str = ""
    # DELETE without a policy: "" (background) or upstream's per-version
    # DefaultGarbageCollectionPolicy ("Orphan" for the old workload versions).
    default_propagation_policy: str = ""

    def __post_init__(self) -> None:
        if not self.singular:
            object.__setattr__(self, "singular", self.kind.lower())

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> errors.GroupResource:
        return errors.GroupResource(self.group, self.plural)

    @property
    def storage_gvk(self) -> tuple[str, str, str]:
        """(group, version, kind) of what the store keeps and validates."""
        if self.conversion is None:
            return self.group, self.version, self.kind
        return self.conversion.storage_group, self.conversion.storage_version, self.kind

    @property
    def storage_group_resource(self) -> errors.GroupResource:
        """The stored resource (encryption at rest is configured by it)."""
        return errors.GroupResource(self.storage_gvk[0], self.plural)

    @property
    def group_kind(self) -> errors.GroupKind:
        return errors.GroupKind(self.group, self.kind)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def all_selectable_fields(self) -> Mapping[str, FieldExtractor]:
        return {**METADATA_FIELDS, **self.selectable_fields}

    @property
    def subresource_names(self) -> tuple[str, ...]:
        names: list[str] = []
        if self.status is not None:
            names.append("status")
        if self.scale is not None:
            names.append("scale")
        names.extend(self.extra_subresources)
        return tuple(names)

    def storage_prefix(self) -> str:
        """Key prefix as upstream's etcd layout: /registry/<group?>/<plural>/."""
        # Upstream stores core kinds under /registry/<resource>, others too
        # (e.g. /registry/deployments); kind-specific exceptions like
        # "minions" for nodes and "services/specs" are kept where they exist.
        # Older served versions share the stored version's keys.
        group = self.storage_gvk[0]
        if self.virtual_reads is not None and group:
            # Nothing is stored (metrics.k8s.io pods, nodes): keys of its own, clear of
            # the stored kind of the same plural (encryption rewrites walk every prefix).
            return f"/registry/{group}/{self.plural}/"
        return f"/registry/{_STORAGE_PATHS.get((group, self.plural), self.plural)}/"


# Where upstream's etcd layout differs from the plural (kept so that tools
# reading etcd directly, like etcdctl users following guides, find things).
_STORAGE_PATHS: dict[tuple[str, str], str] = {
    ("", "nodes"): "minions",
    ("", "services"): "services/specs",
    ("", "endpoints"): "services/endpoints",
    ("", "replicationcontrollers"): "controllers",
    ("", "persistentvolumes"): "persistentvolumes",
    ("", "events"): "events",
    ("apps", "deployments"): "deployments",
    ("networking.k8s.io", "ingresses"): "ingress",
    ("coordination.k8s.io", "leases"): "leases",
    ("rbac.authorization.k8s.io", "clusterroles"): "clusterroles",
}
