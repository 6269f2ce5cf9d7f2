"""The StatefulSet controller: ordered, named pods with their own claims (upstream's stateful_set.go).

A sync of one StatefulSet key:

1. read the set from the informer cache (gone → nothing to do: the garbage
   collector removes its pods, and the claims the retention policy hands it);
2. adopt orphan ControllerRevisions matching its selector;
3. claim its pods: members (named ``<set>-<n>``) matching the selector,
   adopting orphans and releasing owned pods that stopped matching
   (``common.controller_ref``);
4. find or record the update revision (``common.history``) and the current
   one (``status.currentRevision``, else the update revision);
5. plan (``control.plan_update``, pure) and run the plan's actions through
   ``StatefulPodControl``; Parallel runs creations and deletions in
   slow-start batches, OrderedReady gets at most one write per sync from the
   planner;
6. write the status when it changed, then drop revisions beyond
   ``revisionHistoryLimit``;
7. with ``minReadySeconds``, look again once ready pods can be available.

No expectations: pod names are fixed, so a create the cache has not seen
yet fails with AlreadyExists instead of making a second pod, and the pod's
informer event brings the set back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import controller_ref, history, pod_util
from kajitori.controllers.replicaset import slow_start_batches
from kajitori.controllers.statefulset import control, pod_control, utils
from kajitori.machinery import labels

log = logging.getLogger(__name__)

Object = dict[str, Any]
API_VERSION = utils.API_VERSION
KIND = utils.KIND


class StatefulSetController(base.QueueController[str]):
    """Reconciles StatefulSets with their pods, claims and revisions."""

    name = "statefulset"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.set_informer = self.watch(
            informers.informer(rest.STATEFULSETS), on_change=self.enqueue
        )
        self.pod_informer = self.watch(
            informers.informer(rest.PODS),
            on_add=self._add_pod,
            on_update=self._update_pod,
            on_delete=self._delete_pod,
        )
        self.claim_informer = self.watch(
            informers.informer(rest.PERSISTENTVOLUMECLAIMS), on_delete=self._delete_claim
        )
        self.revision_informer = self.watch(informers.informer(rest.CONTROLLERREVISIONS))
        self.history = history.History(client, self.revision_informer.indexer)
        self.pod_control = pod_control.StatefulPodControl(client, recorder, self._cached_claim)

    # ----- event handlers (enqueue keys only) ----------------------------------------

    def _resolve(self, namespace: str, ref: Object | None) -> Object | None:
        return controller_ref.resolve_controller_ref(
            self.set_informer.indexer, namespace, ref, kind=KIND
        )

    def _add_pod(self, pod: Object) -> None:
        if utils.is_terminating(pod):
            self._delete_pod(pod)
            return
        namespace = pod["metadata"].get("namespace", "")
        ref = controller_ref.controller_of(pod)
        if ref is not None:
            sts = self._resolve(namespace, ref)
            if sts is not None:
                self.enqueue(sts)
            return
        for sts in controller_ref.owners_selecting(self.set_informer.indexer, pod):
            self.enqueue(sts)

    def _update_pod(self, old: Object, new: Object) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
            return
        namespace = new_meta.get("namespace", "")
        old_ref, new_ref = controller_ref.controller_of(old), controller_ref.controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self.enqueue(previous)
        if new_ref is not None:
            sts = self._resolve(namespace, new_ref)
            if sts is not None:
                self.enqueue(sts)
                self._enqueue_when_available(sts, old, new)
            return
        if old_meta.get("labels") != new_meta.get("labels") or old_ref != new_ref:
            for sts in controller_ref.owners_selecting(self.set_informer.indexer, new):
                self.enqueue(sts)

    def _enqueue_when_available(self, sts: Object, old: Object, new: Object) -> None:
        # Nothing announces that a ready pod became available: look again then.
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and not pod_util.is_ready(old) and pod_util.is_ready(new):
            self.queue.add_after(informer.meta_namespace_key(sts), min_ready + 1)

    def _delete_pod(self, pod: Object) -> None:
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        sts = self._resolve(namespace, controller_ref.controller_of(pod))
        if sts is not None:
            self.enqueue(sts)

    def _delete_claim(self, claim: Object) -> None:
        # A claim left by a scaled-down pod (whenScaled: Delete) blocks the new pod
        # of that ordinal until the garbage collector removes it: look again then.
        meta = claim.get("metadata") or {}
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") == "Pod":
                parent, _ = utils.parent_and_ordinal({"metadata": {"name": ref.get("name", "")}})
                if parent:
                    self.enqueue_key(f"{meta.get('namespace', '')}/{parent}")

    def _cached_claim(self, namespace: str, name: str) -> Object | None:
        return self.claim_informer.indexer.get(f"{namespace}/{name}")

    # ----- sync ------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.set_informer.indexer.get(key)
        if cached is None:
            return
        sts = pod_util.with_kind(cached, api_version=API_VERSION, kind=KIND)
        try:
            selector = labels.selector_from_label_selector((sts.get("spec") or {}).get("selector"))
        except labels.SelectorError as exc:
            log.warning("statefulset %s has an invalid selector: %s", key, exc)
            return
        if selector.empty:
            return  # upstream: an empty selector selects nothing here
        revisions = await self._adopt_revisions(sts, selector)
        pods = await self._claim_pods(sts, selector)
        current, update, collisions = await self._revisions(sts, revisions)
        snap = control.Snapshot(
            sts=sts,
            current_set=utils.apply_revision(sts, current),
            update_set=utils.apply_revision(sts, update),
            current_revision=current["metadata"]["name"],
            update_revision=update["metadata"]["name"],
            collision_count=collisions,
            pods=pods,
            claims=self._claims(sts),
            now=pod_util.now(),
        )
        plan = control.plan_update(snap)
        error = await self._execute(sts, snap, plan.actions)
        status = plan.status
        control.complete_rolling_update(sts, status)
        updated = await self._update_status(sts, status)
        live = (current["metadata"]["name"], update["metadata"]["name"])
        for doomed in control.truncate_history(sts, revisions, pods, live):
            await self.history.delete_revision(doomed)
        if error is not None:
            raise error
        self._requeue_for_availability(key, updated)

    async def _adopt_revisions(self, sts: Object, selector: labels.Selector) -> list[Object]:
        revisions = self.history.list_revisions(sts, selector)
        if any(history.is_orphan(r) for r in revisions):
            await controller_ref.recheck_deletion(self.client, rest.STATEFULSETS, sts)()
            for index, revision in enumerate(revisions):
                if history.is_orphan(revision):
                    revisions[index] = await self.history.adopt_revision(sts, revision, kind=KIND)
        return history.sort_revisions(revisions)

    async def _claim_pods(self, sts: Object, selector: labels.Selector) -> list[Object]:
        # Only members (<set>-<n>) are candidates, as upstream's isMemberOf filter.
        namespace = sts["metadata"].get("namespace", "")
        candidates = [
            pod
            for pod in self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if utils.is_member_of(sts, pod)
        ]
        manager = controller_ref.manager_for(
            self.client, rest.STATEFULSETS, owner=sts, selector=selector
        )
        return await manager.claim(rest.PODS, candidates)

    async def _revisions(self, sts: Object, revisions: list[Object]) -> tuple[Object, Object, int]:
        """(current, update, collision count), recording the update revision if new."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        candidate = utils.new_revision(sts, history.next_revision(revisions), collisions)
        update, collisions = await self.history.ensure_revision(
            sts, revisions, candidate, collisions
        )
        wanted = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == wanted), update)
        return current, update, collisions

    def _claims(self, sts: Object) -> dict[str, Object]:
        namespace = sts["metadata"].get("namespace", "")
        return {
            claim["metadata"]["name"]: claim
            for claim in self.claim_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        }

    async def _execute(
        self, sts: Object, snap: control.Snapshot, actions: list[control.Action]
    ) -> Exception | None:
        """Run the plan; the first failure stops it and is returned (status is still written)."""
        parallel = (sts.get("spec") or {}).get("podManagementPolicy") == "Parallel"
        if not parallel:
            for action in actions:
                try:
                    await self._run(snap, action)
                except (rest.ApiError, pod_control.ClaimError) as exc:
                    return exc
            return None
        for size in slow_start_batches(len(actions)):
            batch, actions = actions[:size], actions[size:]
            results = await asyncio.gather(
                *(self._run(snap, a) for a in batch), return_exceptions=True
            )
            for result in results:
                if isinstance(result, Exception):
                    return result
        return None

    async def _run(self, snap: control.Snapshot, action: control.Action) -> None:
        sts = snap.sts
        if action.kind == "create":
            await self.pod_control.create_pod(sts, action.pod)
        elif action.kind == "delete":
            if action.reason == "failed":
                self.recorder.event(
                    sts,
                    "Warning",
                    "RecreatingFailedPod",
                    f"StatefulSet {sts['metadata']['namespace']}/{sts['metadata']['name']} "
                    f"is recreating failed Pod {action.name}",
                )
            await self.pod_control.delete_pod(sts, action.pod)
        elif action.kind == "update":
            await self.pod_control.update_pod(snap.update_set, action.pod)
        elif action.kind == "claims":
            await self.pod_control.ensure_claims(snap.update_set, action.pod)
        else:
            await self.pod_control.fix_retention(snap.update_set, action.pod)

    async def _update_status(self, sts: Object, status: Object) -> Object:
        """Write ``status`` when it differs; conflicts retry on a fresh read, as upstream."""
        if not control.status_changed(sts, status):
            return sts
        for attempt in range(3):
            old = sts.get("status") or {}
            body = {**sts, "status": {**old, **status}}
            try:
                return await self.client.update_status(rest.STATEFULSETS, body)
            except rest.ApiError as exc:
                if attempt == 2 or not exc.conflict:
                    raise
                meta = sts["metadata"]
                fresh = await self.client.get(
                    rest.STATEFULSETS, meta["name"], namespace=meta["namespace"]
                )
                sts = pod_util.with_kind(fresh, api_version=API_VERSION, kind=KIND)
        return sts

    def _requeue_for_availability(self, key: str, sts: Object) -> None:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        status = sts.get("status") or {}
        if min_ready > 0 and status.get("readyReplicas") != status.get("availableReplicas"):
            self.queue.add_after(key, min_ready)
