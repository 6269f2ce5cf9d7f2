"""DefaultStorageClass: a claim that names no class gets the cluster's default one.

As upstream's plugin (plugin/pkg/admission/storage/storageclass/setdefault):
on create, a PersistentVolumeClaim
whose ``spec.storageClassName`` is unset (nil: an empty string is an
explicit "no class" and is kept) and that has no
``volume.beta.kubernetes.io/storage-class`` annotation gets the name of the
class annotated ``storageclass.kubernetes.io/is-default-class: "true"`` (or
the beta annotation). With several defaults the newest wins, ties going to
the name that sorts first (upstream since 1.26). No default: nothing
changes, and the PV binder assigns a class later once one appears
(upstream's RetroactiveDefaultStorageClass is not implemented here).

Classes are read through ``list_classes`` (the storageclasses store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
ClassLister = Callable[[], Awaitable[list[Object]]]

ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def _is_default(storage_class: Object) -> bool:
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return "true" in (annotations.get(ANN_DEFAULT_CLASS), annotations.get(ANN_BETA_DEFAULT_CLASS))


def default_class(classes: list[Object]) -> Object | None:
    """The default class: the newest marked one, ties broken by name."""
    marked = [c for c in classes if _is_default(c)]
    if not marked:
        return None
    # RFC 3339 timestamps in UTC sort as text.
    newest = max(str(c["metadata"].get("creationTimestamp") or "") for c in marked)
    return min(
        (c for c in marked if str(c["metadata"].get("creationTimestamp") or "") == newest),
        key=lambda c: str(c["metadata"]["name"]),
    )


class DefaultStorageClass(Plugin):
    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "persistentvolumeclaims")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(self, list_classes: ClassLister) -> None:
        self.list_classes = list_classes

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or store.info.group != "":
            return
        if store.info.plural != "persistentvolumeclaims":
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("storageClassName") is not None:
            return
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if ANN_BETA_STORAGE_CLASS in annotations:
            return
        found = default_class(await self.list_classes())
        if found is not None:
            spec["storageClassName"] = found["metadata"]["name"]
