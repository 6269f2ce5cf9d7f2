"""VolumeBinding: a pod goes only where its PersistentVolumeClaims can be (or are) bound.

Upstream's plugins/volumebinding with its SchedulerVolumeBinder
(binder.go), at kajitori's size. The claims of a pod are its
``persistentVolumeClaim`` volumes and its generic ephemeral volumes (claim
``<pod>-<volume>``).

* PreFilter: a pod without claims is skipped (the plugin does nothing else
  for it — the scheduler's throughput for volume-less pods must not pay
  for volumes). A missing claim (``persistentvolumeclaim "x" not found``),
  one being deleted, a bound claim whose volume is gone, or an unbound
  claim of an ``Immediate`` class (``pod has unbound immediate
  PersistentVolumeClaims``: the PV binder, not the scheduler, binds those)
  rejects the pod on every node.
* Filter: a bound claim's volume must accept the node by its node affinity
  (``node(s) had volume node affinity conflict``). An unbound
  ``WaitForFirstConsumer`` claim needs either a free volume matching it on
  that node (``pv_util.find_matching_volume`` with the node), or a class
  that can provision there (not ``kubernetes.io/no-provisioner``, allowed
  topologies matching); a claim already given a node
  (``volume.kubernetes.io/selected-node``, or reserved by a pod in flight)
  fits only that node. Otherwise ``node(s) didn't find available
  persistent volumes to bind``.
* Reserve (``reserve``): for the chosen node, which free volume each
  WaitForFirstConsumer claim takes and which claims are to be provisioned;
  both are remembered as assumed so that pods scheduled meanwhile do not
  take the same volume or send the same claim elsewhere.
* PreBind (``pre_bind``): writes the decisions — a chosen volume's claimRef
  (with ``pv.kubernetes.io/bound-by-controller``), a provisioned claim's
  ``volume.kubernetes.io/selected-node`` — and then waits, as upstream
  does, until the PV binder (and the provisioner) have bound every claim
  to a volume the node can reach, at most ``bind_timeout`` seconds
  (upstream's 600). A claim losing its selected node means provisioning
  failed there; the pod is then retried.

The plugin reads claims, volumes and classes through ``VolumeListers``
(the scheduler's informer caches, or plain dicts in tests), writes through
a client, and calls ``on_change`` when any of them changes, so pods waiting
for a claim or volume are retried.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from kajitori.client import informer, rest
from kajitori.controllers.volume import pv_util
from kajitori.scheduler import framework
from kajitori.scheduler.plugins import node_affinity

Object = dict[str, Any]

NAME = "VolumeBinding"
STATE_KEY = "VolumeBinding"
# Upstream's default bindTimeoutSeconds.
BIND_TIMEOUT = 600.0
POLL_INTERVAL = 0.1
NO_PROVISIONER = "kubernetes.io/no-provisioner"

UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"


class VolumeBindingError(Exception):
    """PreBind could not finish binding a pod's claims (retried like any binding failure)."""


class VolumeListers(Protocol):
    def claim(self, namespace: str, name: str) -> Object | None: ...

    def volume(self, name: str) -> Object | None: ...

    def volumes(self) -> list[Object]: ...

    def storage_class(self, name: str) -> Object | None: ...


class InformerListers:
    """``VolumeListers`` over informer caches (the scheduler's shared factory)."""

    def __init__(self, informers: informer.InformerFactory) -> None:
        self.claims = informers.informer(rest.PERSISTENTVOLUMECLAIMS)
        self.pvs = informers.informer(rest.PERSISTENTVOLUMES)
        self.classes = informers.informer(rest.STORAGECLASSES)

    def claim(self, namespace: str, name: str) -> Object | None:
        return self.claims.indexer.get(f"{namespace}/{name}")

    def volume(self, name: str) -> Object | None:
        return self.pvs.indexer.get(name)

    def volumes(self) -> list[Object]:
        return self.pvs.indexer.list()

    def storage_class(self, name: str) -> Object | None:
        return self.classes.indexer.get(name) if name else None

    def on_change(self, callback: Callable[[], None]) -> None:
        handler = informer.EventHandler(
            on_add=lambda _: callback(), on_update=lambda _, __: callback()
        )
        for source in (self.claims, self.pvs, self.classes):
            source.add_event_handler(handler)


def claim_names(pod: Object) -> list[str]:
    """The claims ``pod`` uses (``persistentVolumeClaim`` and generic ephemeral volumes)."""
    return pv_util.pod_claim_names(pod)


def _missing_claim(pod: Object, name: str) -> str:
    ephemeral = {
        pv_util.ephemeral_claim_name(pod, v)
        for v in pv_util.spec(pod).get("volumes") or ()
        if v.get("ephemeral") is not None
    }
    if name in ephemeral:
        return (
            f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"'
        )
    return f'persistentvolumeclaim "{name}" not found'


@dataclasses.dataclass(slots=True)
class PodClaims:
    """A pod's claims as PreFilter sorted them."""

    bound: list[tuple[Object, Object]] = dataclasses.field(default_factory=list)
    delayed: list[Object] = dataclasses.field(default_factory=list)
    # Volumes a delayed claim could take on some node (computed once, not per node).
    candidates: list[Object] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class PodVolumes:
    """Reserve's decisions for one node: volumes to pre-bind, claims to provision."""

    node: str
    node_object: Object = dataclasses.field(default_factory=dict)
    static: list[tuple[Object, Object]] = dataclasses.field(default_factory=list)
    provision: list[Object] = dataclasses.field(default_factory=list)
    waits: list[Object] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.static or self.provision or self.waits)


def _is_fully_bound(claim: Object) -> bool:
    return bool(pv_util.spec(claim).get("volumeName")) and (
        pv_util.ANN_BIND_COMPLETED in pv_util.annotations(claim)
    )


def _topology_allows(storage_class: Object, node: framework.NodeInfo) -> bool:
    terms = storage_class.get("allowedTopologies") or []
    if not terms:
        return True
    for term in terms:
        expressions = term.get("matchLabelExpressions") or []
        if all(
            node_affinity.requirement_matches(
                {"key": e.get("key"), "operator": "In", "values": e.get("values")}, node.labels
            )
            for e in expressions
        ):
            return True
    return False


class VolumeBinding:
    name = NAME

    def __init__(
        self,
        listers: VolumeListers,
        client: rest.Client | None = None,
        *,
        bind_timeout: float = BIND_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.listers = listers
        self.client = client
        self.bind_timeout = bind_timeout
        self.poll_interval = poll_interval
        # Reserved but not yet seen bound: volume name -> claim key, claim key -> node.
        self.assumed_volumes: dict[str, str] = {}
        self.assumed_claims: dict[str, str] = {}
        self._reserved: dict[str, PodVolumes] = {}

    # ----- PreFilter -------------------------------------------------------------

    def pre_filter(
        self, state: framework.CycleState, pod: Object, nodes: list[framework.NodeInfo]
    ) -> framework.Status:
        names = claim_names(pod)
        if not names:
            state[STATE_KEY] = None
            return framework.Status(framework.Code.SKIP)
        claims, problem = self._pod_claims(pod, names)
        if problem:
            return framework.unschedulable(problem, unresolvable=True)
        state[STATE_KEY] = claims
        return framework.SUCCESS

    def _pod_claims(self, pod: Object, names: list[str]) -> tuple[PodClaims, str]:
        """The pod's claims sorted into bound and delayed, or why the pod cannot go anywhere."""
        namespace = pv_util.meta(pod).get("namespace", "")
        claims = PodClaims()
        immediate = False
        for name in names:
            claim = self.listers.claim(namespace, name)
            if claim is None:
                return claims, _missing_claim(pod, name)
            if pv_util.meta(claim).get("deletionTimestamp"):
                return claims, f'persistentvolumeclaim "{name}" is being deleted'
            if _is_fully_bound(claim):
                volume = self.listers.volume(pv_util.spec(claim)["volumeName"])
                if volume is None:
                    return claims, REASON_PV_NOT_EXIST
                claims.bound.append((claim, volume))
                continue
            class_name = pv_util.claim_class(claim)
            storage_class = self.listers.storage_class(class_name)
            if class_name and storage_class is None:
                return claims, f'storageclass.storage.k8s.io "{class_name}" not found'
            if pv_util.is_delay_binding_class(storage_class):
                claims.delayed.append(claim)
            else:
                immediate = True
        if immediate:
            return claims, UNBOUND_IMMEDIATE
        if claims.delayed:
            claims.candidates = self._candidates(claims.delayed)
        return claims, ""

    def _candidates(self, delayed: list[Object]) -> list[Object]:
        """What ``find_matching_volume`` may pick for ``delayed`` on any node.

        Volumes of one of their classes, free or pre-bound to one of them, and
        not assumed by another pod in flight.
        """
        classes = {pv_util.claim_class(c) for c in delayed}
        keys = {pv_util.claim_key(c) for c in delayed}
        return [
            v
            for v in self.listers.volumes()
            if self._free_for(v)
            and pv_util.volume_class(v) in classes
            and pv_util.claim_ref_key(v) in ("", *keys)
        ]

    # ----- Filter ----------------------------------------------------------------

    def filter(
        self, state: framework.CycleState, pod: Object, node: framework.NodeInfo
    ) -> framework.Status:
        claims: PodClaims | None = state.get(STATE_KEY)
        if claims is None:
            return framework.SUCCESS
        for _, volume in claims.bound:
            if not pv_util.node_affinity_matches(volume, node.node):
                return framework.unschedulable(REASON_NODE_CONFLICT, unresolvable=True)
        if claims.delayed and self._decide(claims, node) is None:
            return framework.unschedulable(REASON_BIND_CONFLICT, unresolvable=True)
        return framework.SUCCESS

    def _decide(self, claims: PodClaims, node: framework.NodeInfo) -> PodVolumes | None:
        """How the delayed claims would bind on ``node``; None when one of them cannot."""
        decisions = PodVolumes(node.name, node.node)
        chosen: set[str] = set()
        for claim in claims.delayed:
            key = pv_util.claim_key(claim)
            selected = pv_util.annotations(claim).get(pv_util.ANN_SELECTED_NODE)
            selected = selected or self.assumed_claims.get(key)
            if selected:
                if selected != node.name:
                    return None
                decisions.waits.append(claim)
                continue
            volume = pv_util.find_matching_volume(
                claim, claims.candidates, node=node.node, excluded=chosen
            )
            if volume is not None:
                chosen.add(pv_util.meta(volume)["name"])
                decisions.static.append((claim, volume))
                continue
            storage_class = self.listers.storage_class(pv_util.claim_class(claim)) or {}
            if storage_class.get("provisioner") in (None, "", NO_PROVISIONER):
                return None
            if not _topology_allows(storage_class, node):
                return None
            decisions.provision.append(claim)
        return decisions

    def _free_for(self, volume: Object) -> bool:
        return pv_util.meta(volume).get("name") not in self.assumed_volumes

    # ----- Reserve / Unreserve ---------------------------------------------------

    def reserve(self, pod: Object, node: framework.NodeInfo) -> PodVolumes:
        """Decide and assume the pod's bindings on ``node`` (empty when nothing is to be done)."""
        names = claim_names(pod)
        decisions = PodVolumes(node.name, node.node)
        if not names:
            return decisions
        claims, problem = self._pod_claims(pod, names)
        if problem:
            raise VolumeBindingError(problem)
        if claims.delayed:
            decided = self._decide(claims, node)
            if decided is None:
                raise VolumeBindingError(REASON_BIND_CONFLICT)
            decisions = decided
        for claim, volume in decisions.static:
            self.assumed_volumes[pv_util.meta(volume)["name"]] = pv_util.claim_key(claim)
            self.assumed_claims[pv_util.claim_key(claim)] = node.name
        for claim in decisions.provision:
            self.assumed_claims[pv_util.claim_key(claim)] = node.name
        if not decisions.empty:
            self._reserved[_pod_key(pod)] = decisions
        return decisions

    def unreserve(self, pod: Object) -> None:
        """Forget what ``reserve`` assumed for ``pod`` (bound, failed or deleted)."""
        decisions = self._reserved.pop(_pod_key(pod), None)
        if decisions is None:
            return
        for claim, volume in decisions.static:
            self.assumed_volumes.pop(pv_util.meta(volume)["name"], None)
            self.assumed_claims.pop(pv_util.claim_key(claim), None)
        for claim in decisions.provision:
            self.assumed_claims.pop(pv_util.claim_key(claim), None)

    # ----- PreBind ---------------------------------------------------------------

    async def pre_bind(self, pod: Object, node_name: str) -> None:
        """Write the reserved decisions, then wait until every claim is bound for the node."""
        decisions = self._reserved.get(_pod_key(pod))
        if decisions is None or decisions.empty:
            return
        assert self.client is not None, "PreBind writes through a client"
        # Step 1: pre-bind the chosen volumes to their claims.
        for claim, volume in decisions.static:
            await self._pre_bind_volume(claim, volume)
        # Step 2: ask for provisioning on the node.
        for claim in decisions.provision:
            await self._select_node(claim, node_name)
        # Step 3: wait for the PV binder (and the provisioner).
        await self._wait_bound(pod, decisions)

    async def _pre_bind_volume(self, claim: Object, volume: Object) -> None:
        assert self.client is not None
        current = copy.deepcopy(self.listers.volume(pv_util.meta(volume)["name"]) or volume)
        if pv_util.is_volume_bound_to_claim(current, claim):
            return
        current.setdefault("spec", {})["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": pv_util.meta(claim).get("namespace", ""),
            "name": pv_util.meta(claim).get("name", ""),
            "uid": pv_util.meta(claim).get("uid", ""),
            "resourceVersion": pv_util.meta(claim).get("resourceVersion", ""),
        }
        current["metadata"].setdefault("annotations", {})[pv_util.ANN_BOUND_BY_CONTROLLER] = "yes"
        await self.client.update(rest.PERSISTENTVOLUMES, current)

    async def _select_node(self, claim: Object, node_name: str) -> None:
        assert self.client is not None
        meta = pv_util.meta(claim)
        current = self.listers.claim(meta.get("namespace", ""), meta.get("name", "")) or claim
        if pv_util.annotations(current).get(pv_util.ANN_SELECTED_NODE) == node_name:
            return
        updated = copy.deepcopy(current)
        updated["metadata"].setdefault("annotations", {})[pv_util.ANN_SELECTED_NODE] = node_name
        await self.client.update(rest.PERSISTENTVOLUMECLAIMS, updated)

    async def _wait_bound(self, pod: Object, decisions: PodVolumes) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bind_timeout
        seen: set[str] = set()
        while True:
            pending = self._unbound_claims(pod, decisions, seen)
            if not pending:
                return
            if loop.time() >= deadline:
                raise VolumeBindingError(
                    f"binding volumes: context deadline exceeded (claims {', '.join(pending)})"
                )
            await asyncio.sleep(self.poll_interval)

    def _unbound_claims(self, pod: Object, decisions: PodVolumes, seen: set[str]) -> list[str]:
        """The pod's claims not yet bound to a volume usable on the node (raises when hopeless).

        ``seen`` collects the claims whose selected node the cache has shown:
        only those can have been handed back (right after our write the
        cache may simply not show it yet).
        """
        namespace = pv_util.meta(pod).get("namespace", "")
        pending = []
        for name in claim_names(pod):
            claim = self.listers.claim(namespace, name)
            if claim is None:
                raise VolumeBindingError(f'persistentvolumeclaim "{name}" not found')
            if not _is_fully_bound(claim):
                if pv_util.ANN_SELECTED_NODE in pv_util.annotations(claim):
                    seen.add(name)
                elif name in seen:
                    # Provisioning failed and the provisioner handed the claim back.
                    raise VolumeBindingError(
                        f'binding volumes: provisioning failed for PVC "{name}"'
                    )
                pending.append(name)
                continue
            volume = self.listers.volume(pv_util.spec(claim)["volumeName"])
            if volume is None or not pv_util.is_volume_bound_to_claim(volume, claim):
                pending.append(name)
            elif not pv_util.node_affinity_matches(volume, decisions.node_object):
                raise VolumeBindingError(
                    f'binding volumes: pv "{pv_util.meta(volume)["name"]}" node affinity '
                    f'doesn\'t match node "{decisions.node}"'
                )
        return pending


def _pod_key(pod: Object) -> str:
    meta = pv_util.meta(pod)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
