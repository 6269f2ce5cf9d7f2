"""DefaultBinder: writes the decision as ``POST pods/{name}/binding``.

Upstream's plugins/defaultbinder: a ``v1 Binding`` whose target is the
node; the API server sets ``spec.nodeName`` and ``PodScheduled=True``.
"""

from __future__ import annotations

from typing import Any

from kajitori.client import rest


class DefaultBinder:
    name = "DefaultBinder"

    def __init__(self, client: rest.Client) -> None:
        self.client = client

    async def bind(self, pod: dict[str, Any], node_name: str) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        await self.client.create(
            rest.PODS, binding, namespace=meta["namespace"], subresource="binding"
        )
