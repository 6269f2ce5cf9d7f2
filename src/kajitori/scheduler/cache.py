"""The scheduler's cache: each node's ``NodeInfo``, kept current from pod and node events.

Upstream's pkg/scheduler/backend/cache, reduced: rather than rebuild every
``NodeInfo`` from every pod at each scheduling cycle (which costs
O(pods) per pod, so O(pods²) for a rollout), the scheduler tells the cache
what changed — a node added, updated or removed, a pod placed on a node
(bound, or assumed by this scheduler before the API confirms it), moved on
to a terminal phase or gone — and the cache updates the one ``NodeInfo``
concerned. ``node_infos`` is then the snapshot a cycle reads: the same
live objects, sorted by node name, which is safe because a cycle's
decision (PreFilter, Filter, Score) runs without yielding to the event
loop, so no event lands in the middle of it.

Pods whose node is not known yet are kept, and counted once the node
appears, as the full rebuild did. A node update that leaves its cordon and
taints as they were (a status heartbeat) puts the new ``NodeInfo`` in the
old one's place in the snapshot, which keeps its answers remembered by
position for the other nodes (decision 0077).
"""

from __future__ import annotations

from typing import Any

from kajitori.scheduler import framework

Object = dict[str, Any]


class Cache:
    """``NodeInfo`` per node, plus where each counted pod sits."""

    def __init__(self) -> None:
        self._infos: dict[str, framework.NodeInfo] = {}
        # node name → pod key → the pod object added to that node's NodeInfo
        self._placed: dict[str, dict[str, Object]] = {}
        self._node_of: dict[str, str] = {}  # pod key → node name
        self._sorted: framework.NodeList | None = None
        # The NodeInfos holding pods with required anti-affinity, kept as pods come
        # and go (InterPodAffinity's PreFilter reads it instead of scanning every node).
        self._with_anti_affinity: dict[str, framework.NodeInfo] = {}

    # --- nodes --------------------------------------------------------------------

    def set_node(self, node: Object) -> None:
        """A node was added or changed: a fresh NodeInfo over its pods."""
        name = node["metadata"]["name"]
        info = framework.NodeInfo(node)
        for pod in self._placed.get(name, {}).values():
            info.add_pod(pod)
        old = self._infos.get(name)
        self._infos[name] = info
        self._note_anti_affinity(info)
        snapshot = self._sorted
        if (
            snapshot is not None
            and old is not None
            and old.snapshot is snapshot
            and (old.unschedulable, old.taints) == (info.unschedulable, info.taints)
        ):
            # Most node updates are status heartbeats: the node keeps its place in the
            # snapshot, which keeps what it remembers of the others (``NodeList.window``).
            snapshot.replace(old.position, info)
        else:
            self._sorted = None

    def remove_node(self, name: str) -> None:
        """The node is gone; its pods stay recorded in case it comes back."""
        if self._infos.pop(name, None) is not None:
            self._with_anti_affinity.pop(name, None)
            self._sorted = None

    # --- pods ---------------------------------------------------------------------

    def set_pod(self, key: str, pod: Object) -> None:
        """``pod`` is now what ``key`` is: counted on its node when assigned and not terminal."""
        node: str = (pod.get("spec") or {}).get("nodeName") or ""
        counts = bool(node) and framework.counts_on_node(pod)
        if counts and self._node_of.get(key) == node and self._replace(key, node, pod):
            return
        self.remove_pod(key)
        if not node or not counts:
            return
        self._placed.setdefault(node, {})[key] = pod
        self._node_of[key] = node
        info = self._infos.get(node)
        if info is not None:
            info.add_pod(pod)
            self._note_anti_affinity(info)

    def _replace(self, key: str, node: str, pod: Object) -> bool:
        """Swap the object of a pod that stays on ``node`` with the same spec (a status update)."""
        on_node = self._placed[node]
        info = self._infos.get(node)
        if info is not None and not info.replace_pod(on_node[key], pod):
            return False
        if info is None and on_node[key].get("spec") != pod.get("spec"):
            return False
        on_node[key] = pod
        return True

    def remove_pod(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is None:
            return
        on_node = self._placed[node]
        pod = on_node.pop(key)
        if not on_node:
            del self._placed[node]
        info = self._infos.get(node)
        if info is not None:
            info.remove_pod(pod)
            self._note_anti_affinity(info)

    def _note_anti_affinity(self, info: framework.NodeInfo) -> None:
        if info.pods_with_required_anti_affinity:
            self._with_anti_affinity[info.name] = info
        else:
            self._with_anti_affinity.pop(info.name, None)

    def node_of(self, key: str) -> str:
        """The node ``key`` is counted on ("" when none)."""
        return self._node_of.get(key, "")

    # --- reading ------------------------------------------------------------------

    def node_infos(self) -> framework.NodeList:
        """Every known node's NodeInfo, sorted by name (the list is reused until nodes change)."""
        if self._sorted is None:
            infos = sorted(self._infos.values(), key=lambda info: info.name)
            self._sorted = framework.NodeList(infos, self._with_anti_affinity)
        return self._sorted
