"""DefaultTolerationSeconds: every pod tolerates a lost node for five minutes.

As upstream's plugin (plugin/pkg/admission/defaulttolerationseconds): a pod
created without a toleration for the NoExecute taints
``node.kubernetes.io/not-ready`` and ``node.kubernetes.io/unreachable``
gets one of each (``operator: Exists``, ``tolerationSeconds: 300``), so the
taint eviction of the node lifecycle controller waits that long before
deleting it. A pod that already tolerates a taint (any toleration matching
its key, or an empty key with ``Exists``, with effect NoExecute or empty)
keeps its own. Only creates are admitted: a pod's tolerations can only grow
afterwards, and the ones added here are already there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _tolerates_key(toleration: Object, key: str) -> bool:
    if toleration.get("effect") not in (None, "", "NoExecute"):
        return False
    if not toleration.get("key"):
        return toleration.get("operator") == "Exists"
    return bool(toleration.get("key") == key)


class DefaultTolerationSeconds(Plugin):
    # What admit / validate act on (chain.py skips the plugin elsewhere).
    ADMITS: ClassVar[frozenset[tuple[str, str]]] = frozenset({("", "pods")})
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(
        self,
        *,
        not_ready_seconds: int = DEFAULT_SECONDS,
        unreachable_seconds: int = DEFAULT_SECONDS,
    ) -> None:
        self.defaults = ((NOT_READY, not_ready_seconds), (UNREACHABLE, unreachable_seconds))

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation != "CREATE" or store.info.group != "" or store.info.plural != "pods":
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        tolerations = spec.get("tolerations")
        if not isinstance(tolerations, list):
            tolerations = []
        for key, seconds in self.defaults:
            if not any(isinstance(t, dict) and _tolerates_key(t, key) for t in tolerations):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": seconds,
                    }
                )
        spec["tolerations"] = tolerations
