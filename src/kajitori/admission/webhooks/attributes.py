"""What a webhook learns about a request, and the object in the version a webhook asked for.

Owns ``Attributes`` (upstream: admission.Attributes as the webhook plugins
read it) built from what the admission chain hands a plugin (store,
operation, object, old object, request context), and ``Versions``: the
served resources a request's resource is equivalent to (the same stored
resource under another group or version, upstream's
EquivalentResourceMapper) and the conversions between them.

The store keeps one shape per resource: its storage version for the legacy
workload versions (apps/v1beta1 requests reach admission as apps/v1
objects), the served version for each custom resource version. A webhook
that matched through another version gets the object converted to it
(legacy ``Conversion``; only ``apiVersion`` for custom resources, whose
conversion strategy is None), and its patch is applied to that view and
converted back. A ``/scale`` request gets an ``autoscaling/v1 Scale`` view of
the workload, whose ``spec.replicas`` is carried back into the workload.

Some requests carry an object that is not of the store's kind: CONNECT
(``pods/exec``, ``attach``, ``portforward`` and the proxies) carries its
options (``PodExecOptions``…), the create of ``pods/eviction`` a
``policy/v1 Eviction``, of ``pods/binding`` (and of the older ``bindings``) a
``v1 Binding``, of ``serviceaccounts/token`` an ``authentication.k8s.io/v1
TokenRequest``. Their kind comes from ``SUBRESOURCE_KINDS`` (what
upstream's installer registers for those subresources), and webhooks get the
object as it is. A DELETE carries the request's DeleteOptions
(``delete_options_object``) with the grace period a graceful kind (pods)
settled on, as upstream's BeforeDelete sets it before admission.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kajitori.machinery import names
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.resource import ResourceInfo, ScaleSubresource

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
ServedResources = Callable[[], Iterable[ResourceInfo]]


@dataclass(frozen=True, slots=True)
class GVR:
    group: str
    version: str
    resource: str

    def to_dict(self) -> dict[str, str]:
        return {"group": self.group, "version": self.version, "resource": self.resource}


@dataclass(frozen=True, slots=True)
class GVK:
    group: str
    version: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        return {"group": self.group, "version": self.version, "kind": self.kind}


NAMESPACES = GVR("", "v1", "namespaces")
# What names.simple_name_generator appends (upstream's utilrand alphabet, five characters).
_SUFFIX = re.compile(r"[bcdfghjklmnpqrstvwxz2456789]{5}")
SCALE_KIND = GVK("autoscaling", "v1", "Scale")
# (resource, subresource) -> the kind of the object such a request carries.
SUBRESOURCE_KINDS = {
    ("pods", "exec"): GVK("", "v1", "PodExecOptions"),
    ("pods", "attach"): GVK("", "v1", "PodAttachOptions"),
    ("pods", "portforward"): GVK("", "v1", "PodPortForwardOptions"),
    ("pods", "proxy"): GVK("", "v1", "PodProxyOptions"),
    ("nodes", "proxy"): GVK("", "v1", "NodeProxyOptions"),
    ("services", "proxy"): GVK("", "v1", "ServiceProxyOptions"),
    ("pods", "eviction"): GVK("policy", "v1", "Eviction"),
    ("pods", "binding"): GVK("", "v1", "Binding"),
    ("bindings", ""): GVK("", "v1", "Binding"),  # the older POST namespaces/{ns}/bindings
    ("serviceaccounts", "token"): GVK("authentication.k8s.io", "v1", "TokenRequest"),
}


@dataclass(slots=True)
class Attributes:
    """One admission request as webhooks see it (the resource and kind as the client sent them).

    ``obj`` and ``old`` are in the store's shape (``info.storage_gvk``);
    ``obj`` is None for DELETE. ``name`` is empty for a create by
    ``generateName``; ``namespace`` is the namespace's own name for a request
    on a Namespace (a create too), as upstream's handlers set them.
    """

    operation: str
    name: str
    namespace: str
    resource: GVR
    subresource: str
    kind: GVK
    obj: Object | None
    old: Object | None
    info: ResourceInfo
    user: UserInfo
    dry_run: bool
    options: Object | None
    # The object is not of the store's kind (CONNECT options, an Eviction): sent as it is.
    foreign: bool = False


def attributes_for(
    store: Store,
    operation: str,
    obj: Object | None,
    old: Object | None,
    ctx: RequestContext,
    delete: DeleteOptions | None = None,
) -> Attributes:
    info = store.info
    target = ctx.target
    if target is None:  # a call from inside the server: the store's own resource
        resource, subresource = GVR(info.group, info.version, info.plural), ""
    else:
        resource = GVR(target.group, target.version, target.resource)
        subresource = target.subresource
    if subresource == "scale" and info.scale is not None:
        kind = SCALE_KIND
    else:
        kind = GVK(resource.group, resource.version, info.kind)
    meta = (obj if obj is not None else old or {}).get("metadata") or {}
    name = meta.get("name", "")
    if operation == "CREATE" and _generated(name, meta.get("generateName") or ""):
        name = ""  # upstream's attributes carry the name as sent: none for generateName
    namespace = meta.get("namespace", "") if info.namespaced else ""
    if resource == NAMESPACES:
        namespace = name  # upstream's handlers: a Namespace's namespace is its own name
    return Attributes(
        operation=operation,
        name=name,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        kind=kind,
        obj=obj,
        old=old,
        info=info,
        user=ctx.user,
        dry_run=ctx.dry_run,
        options=operation_options(operation, ctx)
        if operation != "DELETE"
        else delete_options_object(store, old, delete, ctx),
    )


def _generated(name: str, generate_name: str) -> bool:
    """Whether ``name`` is ``generateName`` plus the five characters the server appended.

    The store generates the name before validating admission; upstream's
    attributes keep the name the request sent.
    """
    base = generate_name[: names.MAX_GENERATED_NAME_LENGTH]
    suffix = name[len(base) :]
    return bool(base) and name.startswith(base) and bool(_SUFFIX.fullmatch(suffix))


def subresource_attributes(
    store: Store, operation: str, name: str, namespace: str, obj: Object, ctx: RequestContext
) -> Attributes:
    """A request whose object is not of the store's kind (``SUBRESOURCE_KINDS``)."""
    info = store.info
    target = ctx.target
    assert target is not None  # only client requests name such subresources
    resource = GVR(target.group, target.version, target.resource)
    kind = SUBRESOURCE_KINDS[(target.resource, target.subresource)]
    return Attributes(
        operation=operation,
        name=name,
        namespace=namespace,
        resource=resource,
        subresource=target.subresource,
        kind=kind,
        obj=obj,
        old=None,
        info=info,
        user=ctx.user,
        dry_run=ctx.dry_run,
        options=operation_options(operation, ctx),
        foreign=True,
    )


def delete_options_object(
    store: Store, obj: Object | None, delete: DeleteOptions | None, ctx: RequestContext
) -> Object:
    """The request's ``meta.k8s.io/v1 DeleteOptions`` as admission sees them.

    A graceful kind (pods) not yet being deleted carries the grace period its
    strategy settled on (upstream's CheckGracefulDelete fills it in first).
    """
    out: Object = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
    grace = None if delete is None else delete.grace_period_seconds
    strategy = store.info.strategy
    deleting = bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))
    if strategy.graceful and obj is not None and not deleting:
        grace = strategy.graceful_deletion_seconds(obj, grace)
    if grace is not None:
        out["gracePeriodSeconds"] = grace
    if delete is not None:
        preconditions: Object = {}
        if delete.preconditions_uid:
            preconditions["uid"] = delete.preconditions_uid
        if delete.preconditions_resource_version:
            preconditions["resourceVersion"] = delete.preconditions_resource_version
        if preconditions:
            out["preconditions"] = preconditions
        if delete.orphan_dependents is not None:
            out["orphanDependents"] = delete.orphan_dependents
        if delete.propagation_policy:
            out["propagationPolicy"] = delete.propagation_policy
    if ctx.dry_run:
        out["dryRun"] = ["All"]
    return out


_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}


def operation_options(operation: str, ctx: RequestContext) -> Object | None:
    """A CREATE's or UPDATE's options as upstream's admission sees them (``meta.k8s.io/v1``).

    ``fieldManager`` is the request's option only: upstream derives a manager from the
    User-Agent for managedFields without writing it into the options.
    """
    kind = _OPTIONS_KIND.get(operation)
    if kind is None:
        return None  # DELETE has delete_options_object; CONNECT carries none
    options: Object = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if ctx.dry_run:
        options["dryRun"] = ["All"]
    if ctx.field_manager_option:
        options["fieldManager"] = ctx.field_manager_option
    return options


# ----- equivalent resources and versions ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Equivalent:
    """A served resource the request's resource is the same stored resource as."""

    resource: GVR
    kind: GVK
    info: ResourceInfo


class Versions:
    """The served resources, grouped by the resource they store (upstream's equivalence)."""

    def __init__(self, served: ServedResources) -> None:
        self._served = served

    def equivalents(self, attrs: Attributes) -> list[Equivalent]:
        """Every served version of the request's stored resource; the storage version first."""
        stored = attrs.info.storage_group_resource
        found = []
        for info in self._served():
            if info.storage_group_resource != stored or info.plural != attrs.resource.resource:
                continue
            if not _has_subresource(info, attrs.subresource):
                continue
            gvr = GVR(info.group, info.version, info.plural)
            if attrs.subresource == "scale":
                kind = SCALE_KIND
            else:
                kind = GVK(info.group, info.version, info.kind)
            found.append(Equivalent(gvr, kind, info))
        found.sort(key=lambda e: e.info.conversion is not None)
        return found


def _has_subresource(info: ResourceInfo, subresource: str) -> bool:
    if subresource == "status":
        return info.status is not None
    if subresource == "scale":
        return info.scale is not None
    return True


@dataclass(slots=True)
class VersionedView:
    """The request's objects in one webhook's version, and the way back to the store's shape."""

    obj: Object | None
    old: Object | None
    back: Callable[[Object], Object]


def view_for(attrs: Attributes, target: ResourceInfo, kind: GVK) -> VersionedView:
    """``attrs``' objects as a webhook that matched ``target`` (and ``kind``) gets them."""
    if attrs.foreign:
        return VersionedView(copy.deepcopy(attrs.obj), None, _identity)
    if kind == SCALE_KIND and attrs.info.scale is not None:
        return _scale_view(attrs, attrs.info.scale)
    to_view, back = _converters(attrs.info, target)
    return VersionedView(
        None if attrs.obj is None else to_view(attrs.obj),
        None if attrs.old is None else to_view(attrs.old),
        back,
    )


def _converters(
    have: ResourceInfo, want: ResourceInfo
) -> tuple[Callable[[Object], Object], Callable[[Object], Object]]:
    stored = have.storage_gvk[:2]
    if (want.group, want.version) == stored:
        return copy.deepcopy, _identity
    conversion = want.conversion
    if conversion is not None and (conversion.storage_group, conversion.storage_version) == stored:
        return conversion.from_storage, conversion.to_storage
    # Custom resource versions (conversion strategy None): only apiVersion differs.
    stored_api = f"{stored[0]}/{stored[1]}" if stored[0] else stored[1]
    return _with_api_version(want.group_version), _with_api_version(stored_api)


def _identity(obj: Object) -> Object:
    return obj


def _with_api_version(api_version: str) -> Callable[[Object], Object]:
    def convert(obj: Object) -> Object:
        out = copy.deepcopy(obj)
        out["apiVersion"] = api_version
        return out

    return convert


def _scale_view(attrs: Attributes, spec: ScaleSubresource) -> VersionedView:
    workload = attrs.obj

    def back(scale: Object) -> Object:
        # Only spec.replicas of a Scale reaches the workload (as the /scale handler writes it).
        assert workload is not None
        out = copy.deepcopy(workload)
        node = out
        for key in spec.spec_replicas[:-1]:
            node = node.setdefault(key, {})
        node[spec.spec_replicas[-1]] = (scale.get("spec") or {}).get("replicas", 0)
        return out

    return VersionedView(
        None if attrs.obj is None else spec.scale_of(attrs.obj),
        None if attrs.old is None else spec.scale_of(attrs.old),
        back,
    )
