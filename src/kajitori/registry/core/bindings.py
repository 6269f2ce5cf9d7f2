"""``POST /api/v1/namespaces/{namespace}/bindings``: the older form of ``pods/{name}/binding``.

Upstream still serves ``v1 bindings`` (create only; LegacyBindingREST in
pkg/registry/core/pod/storage): the Binding's own ``metadata.name`` names
the pod, and everything else is ``pods/binding``'s (``pod_binding.create``):
the same validation, the same compare-and-swap of the pod, the same
``Status`` of Success. The pods store is reached through the registry,
which the composition root hands to ``install`` (registry modules do not
know each other's stores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kajitori.registry import resource
from kajitori.registry.core import pod_binding
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic.request import RequestContext

Object = dict[str, Any]
# The registry's pods store, looked up when a binding arrives.
PodStore = Callable[[], Any]


def install(infos: Sequence[resource.ResourceInfo], pods: PodStore) -> list[resource.ResourceInfo]:
    """``infos`` and the ``v1 bindings`` resource, binding through ``pods()``."""
    return [*infos, resource_for(pods)]


def resource_for(pods: PodStore) -> resource.ResourceInfo:
    async def create(namespace: str, binding: Object, ctx: RequestContext) -> Object:
        name = (binding.get("metadata") or {}).get("name") or ""
        return await pod_binding.create(pods(), namespace, name, binding, ctx)

    return resource.ResourceInfo(
        group="",
        version="v1",
        kind="Binding",
        plural="bindings",
        namespaced=True,
        strategy=strategies.Strategy(),
        verbs=("create",),
        virtual_create=create,
    )
