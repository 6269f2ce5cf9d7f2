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
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kajitori.machinery import labels
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.resource import ResourceInfo, ScaleSubresource

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

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
SCALE_KIND = GVK("autoscaling", "v1", "Scale")


@dataclass(slots=True)
class Attributes:
    """One admission request as webhooks see it (the resource and kind as the client sent them).

    ``obj`` and ``old`` are in the store's shape (``info.storage_gvk``);
    ``obj`` is None for DELETE. ``namespace`` is the namespace's own name for
    a request on a Namespace, as upstream's request info sets it.
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
    annotations: dict[str, str] = field(default_factory=dict)


def attributes_for(
    store: Store, operation: str, obj: Object | None, old: Object | None, ctx: RequestContext
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
    namespace = name if resource == NAMESPACES else meta.get("namespace", "")
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
        options=_options(operation, ctx),
    )


_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


def _options(operation: str, ctx: RequestContext) -> Object | None:
    """The operation's options as upstream sends them (``meta.k8s.io/v1``)."""
    kind = _OPTIONS_KIND.get(operation)
    if kind is None:
        return None
    options: Object = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if ctx.dry_run:
        options["dryRun"] = ["All"]
    if ctx.field_manager and operation != "DELETE":
        options["fieldManager"] = ctx.field_manager
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


def _dig(obj: Object, path: tuple[str, ...]) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def to_scale(obj: Object, spec: ScaleSubresource) -> Object:
    """The ``autoscaling/v1 Scale`` a ``/scale`` GET would show for ``obj``."""
    meta = obj.get("metadata") or {}
    scale_meta = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if k in meta
    }
    status: Object = {"replicas": _dig(obj, spec.status_replicas) or 0}
    selector = _scale_selector(obj, spec)
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": _dig(obj, spec.spec_replicas) or 0},
        "status": status,
    }


def _scale_selector(obj: Object, spec: ScaleSubresource) -> str:
    raw = None if spec.label_selector is None else _dig(obj, spec.label_selector)
    if raw is None:
        return ""
    if spec.selector_is_string:
        return str(raw)
    if isinstance(raw, dict) and "matchLabels" not in raw and "matchExpressions" not in raw:
        return ",".join(f"{k}={v}" for k, v in sorted(raw.items()))
    try:
        return str(labels.selector_from_label_selector(raw))
    except labels.SelectorError:
        return ""


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
        None if attrs.obj is None else to_scale(attrs.obj, spec),
        None if attrs.old is None else to_scale(attrs.old, spec),
        back,
    )
