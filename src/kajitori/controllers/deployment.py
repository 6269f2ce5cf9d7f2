"""The Deployment controller: rolls a Deployment's template out through ReplicaSets.

Mirrors upstream's pkg/controller/deployment (deployment_controller.go,
sync.go, rolling.go, recreate.go, progress.go). A sync of one key:

1. read the Deployment from the cache; an empty selector only gets a
   ``SelectorRequired`` warning;
2. claim the namespace's ReplicaSets (adopt matching orphans, release
   mismatches; ``common.controller_ref``);
3. being deleted → status only; paused or resumed → the Progressing
   condition says so (``DeploymentPaused`` / ``DeploymentResumed``);
4. paused, or a scaling event (an active ReplicaSet's desired-replicas
   annotation differs from ``spec.replicas``) → ``_sync``: scale
   proportionally, clean up history when paused, write status;
5. otherwise roll out: ``Recreate`` scales every old ReplicaSet to zero,
   waits for their pods to go, then creates/scales the new one;
   ``RollingUpdate`` grows the new ReplicaSet up to maxSurge, then shrinks
   old ones (unhealthy replicas first) down to maxUnavailable; once complete,
   ReplicaSets beyond ``revisionHistoryLimit`` are deleted;
6. ``_sync_rollout_status``: status, the Available and Progressing
   conditions with upstream's reasons and messages, and a look again when
   the progress deadline would pass.

The new ReplicaSet is ``<deployment>-<pod-template-hash>``; it carries the
Deployment's annotations plus ``deployment.kubernetes.io/revision`` (one more
than any old ReplicaSet's), ``desired-replicas`` and ``max-replicas``. The
Deployment's own revision annotation is written with a plain update: our
status subresource resets annotations (see decision 0014).
"""

from __future__ import annotations

import copy
import datetime
import logging
from collections.abc import Sequence
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import controller_ref, pod_util
from kajitori.controllers.common import deployment_util as util
from kajitori.machinery import labels, times

log = logging.getLogger(__name__)

Object = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "Deployment"
# How soon a rollout whose progress deadline is about to pass is looked at again.
STUCK_RECHECK_SECONDS = 1.0


class DeploymentController(base.QueueController[str]):
    """Rolls Deployments out through ReplicaSets; ``run(workers)`` until ``shut_down``."""

    name = "deployment"
    # Upstream's maxRetries: 5 ms doubling reaches 82 s on the 15th retry.
    max_retries = 15

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
        self.d_informer = self.watch(informers.informer(rest.DEPLOYMENTS), on_change=self.enqueue)
        self.rs_informer = self.watch(
            informers.informer(rest.REPLICASETS),
            on_add=self._enqueue_owner_or_candidates,
            on_update=self._update_rs,
            on_delete=self._delete_rs,
        )
        self.pod_informer = self.watch(informers.informer(rest.PODS), on_delete=self._delete_pod)

    # ----- event handlers ------------------------------------------------------------

    def _resolve(self, namespace: str, ref: Object | None) -> Object | None:
        return controller_ref.resolve_controller_ref(
            self.d_informer.indexer, namespace, ref, kind=KIND
        )

    def _matching_deployments(self, obj: Object) -> list[Object]:
        return controller_ref.owners_selecting(self.d_informer.indexer, obj)

    def _enqueue_owner_or_candidates(self, rs: Object) -> None:
        namespace = (rs.get("metadata") or {}).get("namespace", "")
        ref = controller_ref.controller_of(rs)
        if ref is not None:
            owner = self._resolve(namespace, ref)
            if owner is not None:
                self.enqueue(owner)
            return
        for d in self._matching_deployments(rs):
            self.enqueue(d)

    def _update_rs(self, old: Object, new: Object) -> None:
        if not base.resource_version_changed(old, new):
            return
        old_ref, new_ref = controller_ref.controller_of(old), controller_ref.controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            owner = self._resolve(old["metadata"].get("namespace", ""), old_ref)
            if owner is not None:
                self.enqueue(owner)
        if (
            new_ref is not None
            or old["metadata"].get("labels") != new["metadata"].get("labels")
            or old_ref != new_ref
        ):
            self._enqueue_owner_or_candidates(new)

    def _delete_rs(self, rs: Object) -> None:
        owner = self._resolve(
            (rs.get("metadata") or {}).get("namespace", ""), controller_ref.controller_of(rs)
        )
        if owner is not None:
            self.enqueue(owner)

    def _delete_pod(self, pod: Object) -> None:
        # Recreate waits for the old pods to be gone; nothing else would say so.
        namespace = (pod.get("metadata") or {}).get("namespace", "")
        ref = controller_ref.controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_informer.indexer.get(f"{namespace}/{ref.get('name')}")
        if rs is None:
            return
        owner = self._resolve(namespace, controller_ref.controller_of(rs))
        if owner is not None and not util.is_rolling(owner):
            self.enqueue(owner)

    # ----- sync ----------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.d_informer.indexer.get(key)
        if cached is None:
            return
        d = pod_util.with_kind(copy.deepcopy(cached), api_version=API_VERSION, kind=KIND)
        spec = d.get("spec") or {}
        if not (spec.get("selector") or {}).get("matchLabels") and not (
            spec.get("selector") or {}
        ).get("matchExpressions"):
            await self._selector_required(d)
            return
        rses = await self._claim_replica_sets(d)
        if controller_ref.is_being_deleted(d):
            await self._sync_status_only(d, rses)
            return
        d = await self._check_paused_conditions(d)
        if spec.get("paused"):
            await self._sync(d, rses)
            return
        if await self._is_scaling_event(d, rses):
            await self._sync(d, rses)
            return
        if util.is_rolling(d):
            await self._rollout_rolling(d, rses)
        else:
            await self._rollout_recreate(d, rses)

    async def _selector_required(self, d: Object) -> None:
        self.recorder.event(
            d,
            "Warning",
            "SelectorRequired",
            "This deployment is selecting all pods. A non-empty selector is required.",
        )
        status = d.get("status") or {}
        if status.get("observedGeneration", 0) < d["metadata"].get("generation", 0):
            status["observedGeneration"] = d["metadata"]["generation"]
            await self.client.update_status(rest.DEPLOYMENTS, {**d, "status": status})

    async def _claim_replica_sets(self, d: Object) -> list[Object]:
        namespace = d["metadata"].get("namespace", "")
        selector = labels.selector_from_label_selector(d["spec"]["selector"])
        manager = controller_ref.manager_for(
            self.client, rest.DEPLOYMENTS, owner=d, selector=selector
        )
        candidates = self.rs_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
        claimed = await manager.claim(rest.REPLICASETS, candidates)
        return [
            pod_util.with_kind(copy.deepcopy(rs), api_version=API_VERSION, kind="ReplicaSet")
            for rs in claimed
        ]

    async def _check_paused_conditions(self, d: Object) -> Object:
        if util.progress_deadline(d) is None:
            return d
        current = util.condition(d, "Progressing")
        if current is not None and current.get("reason") == "ProgressDeadlineExceeded":
            return d
        paused_recorded = current is not None and current.get("reason") == "DeploymentPaused"
        paused = bool(d["spec"].get("paused"))
        if paused == paused_recorded:
            return d
        reason, message = (
            ("DeploymentPaused", "Deployment is paused")
            if paused
            else (
                "DeploymentResumed",
                "Deployment is resumed",
            )
        )
        status = d.setdefault("status", {})
        util.set_condition(
            status,
            util.new_condition("Progressing", "Unknown", reason, message, now=pod_util.now()),
        )
        return await self._write_status(d, status)

    async def _is_scaling_event(self, d: Object, rses: list[Object]) -> bool:
        new_rs, old_rses = await self._get_all_and_sync_revision(d, rses, create=False)
        for rs in util.active([*old_rses, new_rs]):
            desired = util.annotations(rs).get(util.DESIRED_REPLICAS)
            if desired is not None and desired.isdigit() and int(desired) != util.replicas(d):
                return True
        return False

    # ----- new ReplicaSet and revisions ------------------------------------------------

    async def _get_all_and_sync_revision(
        self, d: Object, rses: list[Object], *, create: bool
    ) -> tuple[Object | None, list[Object]]:
        existing = util.find_new_rs(d, rses)
        old = [rs for rs in rses if rs is not existing]
        new_rs = await self._get_new_rs(d, old, existing, create=create)
        return new_rs, old

    async def _get_new_rs(
        self, d: Object, old: list[Object], existing: Object | None, *, create: bool
    ) -> Object | None:
        new_revision = str(max((util.revision(rs) for rs in old), default=0) + 1)
        if existing is not None:
            return await self._sync_existing_new_rs(d, existing, new_revision)
        if not create:
            return None
        return await self._create_new_rs(d, old, new_revision)

    async def _sync_existing_new_rs(self, d: Object, rs: Object, new_revision: str) -> Object:
        changed = util.set_new_rs_annotations(d, rs, new_revision, exists=True)
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        if changed or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            return await self._update_rs_object(rs)
        await self._set_deployment_revision(d, util.annotations(rs).get(util.REVISION, ""))
        if util.progress_deadline(d) is not None and util.condition(d, "Progressing") is None:
            status = d.setdefault("status", {})
            message = f'Found new replica set "{rs["metadata"]["name"]}"'
            util.set_condition(
                status,
                util.new_condition(
                    "Progressing", "True", "FoundNewReplicaSet", message, now=pod_util.now()
                ),
            )
            await self._write_status(d, status)
        return rs

    async def _create_new_rs(self, d: Object, old: list[Object], new_revision: str) -> Object:
        rs = util.new_replica_set(d, replicas=0, revision=new_revision)
        size = util.new_rs_new_replicas(d, [*old, rs], rs)
        rs["spec"]["replicas"] = size
        try:
            created = await self.client.create(rest.REPLICASETS, rs)
        except rest.ApiError as exc:
            if exc.code == 409:
                return await self._on_name_taken(d, rs, exc)
            await self._report_create_failure(d, rs, exc)
            raise
        if size > 0:
            self._scaling_event(d, "up", created, 0, size)
        await self._set_deployment_revision(d, new_revision)
        if util.progress_deadline(d) is not None:
            status = d.setdefault("status", {})
            message = f'Created new replica set "{created["metadata"]["name"]}"'
            util.set_condition(
                status,
                util.new_condition(
                    "Progressing", "True", "NewReplicaSetCreated", message, now=pod_util.now()
                ),
            )
            await self._write_status(d, status)
        return created

    async def _on_name_taken(self, d: Object, rs: Object, exc: rest.ApiError) -> Object:
        """The name exists: ours with our template is fine; anything else is a hash collision."""
        meta = rs["metadata"]
        found = await self.client.get(rest.REPLICASETS, meta["name"], namespace=meta["namespace"])
        ref = controller_ref.controller_of(found)
        if (
            ref is not None
            and ref.get("uid") == d["metadata"]["uid"]
            and util.equal_ignore_hash(d["spec"]["template"], found["spec"]["template"])
        ):
            return found
        status = d.setdefault("status", {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self._write_status(d, status)
        raise exc

    async def _report_create_failure(self, d: Object, rs: Object, exc: rest.ApiError) -> None:
        message = f'Failed to create new replica set "{rs["metadata"]["name"]}": {exc.message}'
        if util.progress_deadline(d) is not None:
            status = d.setdefault("status", {})
            util.set_condition(
                status,
                util.new_condition(
                    "Progressing", "False", "ReplicaSetCreateError", message, now=pod_util.now()
                ),
            )
            try:
                await self._write_status(d, status)
            except rest.ApiError:
                pass
        self.recorder.event(d, "Warning", "ReplicaSetCreateError", message)

    async def _set_deployment_revision(self, d: Object, revision: str) -> None:
        if not revision or util.annotations(d).get(util.REVISION) == revision:
            return
        d["metadata"].setdefault("annotations", {})[util.REVISION] = revision
        updated = await self.client.update(
            rest.DEPLOYMENTS, {k: v for k, v in d.items() if k != "status"}
        )
        d["metadata"] = updated["metadata"]

    # ----- scaling ---------------------------------------------------------------------

    def _scaling_event(self, d: Object, direction: str, rs: Object, old: int, new: int) -> None:
        message = f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {new}"
        self.recorder.event(d, "Normal", "ScalingReplicaSet", message)

    async def _scale_rs(self, d: Object, rs: Object, size: int) -> tuple[bool, Object]:
        """Set ``rs``'s size and replica annotations; (size changed, the ReplicaSet now)."""
        old_size = util.replicas(rs)
        wanted = util.replicas_annotations(d)
        current = util.annotations(rs)
        annotations_stale = any(current.get(k) != v for k, v in wanted.items())
        if old_size == size and not annotations_stale:
            return False, rs
        rs["spec"]["replicas"] = size
        rs["metadata"]["annotations"] = {**current, **wanted}
        updated = await self._update_rs_object(rs)
        if old_size != size:
            self._scaling_event(d, "up" if size > old_size else "down", updated, old_size, size)
        return old_size != size, updated

    async def _update_rs_object(self, rs: Object) -> Object:
        return await self.client.update(rest.REPLICASETS, rs, namespace=rs["metadata"]["namespace"])

    async def _scale_many(
        self, d: Object, rses: list[Object], sizes: dict[str, int]
    ) -> tuple[bool, list[Object]]:
        scaled, result = False, []
        for rs in rses:
            size = sizes.get(rs["metadata"]["name"])
            if size is not None:
                changed, rs = await self._scale_rs(d, rs, size)
                scaled = scaled or changed
            result.append(rs)
        return scaled, result

    async def _scale(self, d: Object, new_rs: Object | None, old_rses: list[Object]) -> None:
        """Upstream's scale(): the one active ReplicaSet, or proportional scaling mid-rollout."""
        live = util.active([*old_rses, new_rs])
        target: Object | None = None
        if len(live) == 1:
            target = live[0]
        elif not live:
            target = (
                new_rs
                if new_rs is not None
                else (util.by_creation(old_rses)[-1] if old_rses else None)
            )
        if target is not None or not live:
            if target is not None and util.replicas(target) != util.replicas(d):
                await self._scale_rs(d, target, util.replicas(d))
            return
        if util.is_saturated(d, new_rs):
            await self._scale_many(
                d, util.active(old_rses), {rs["metadata"]["name"]: 0 for rs in old_rses}
            )
            return
        if util.is_rolling(d):
            await self._scale_many(d, live, util.plan_proportional_scale(d, live))

    async def _sync(self, d: Object, rses: list[Object]) -> None:
        """Scaling and paused Deployments: resize, clean up when paused, write status."""
        new_rs, old_rses = await self._get_all_and_sync_revision(d, rses, create=False)
        await self._scale(d, new_rs, old_rses)
        new_rs, old_rses = await self._fresh(d, new_rs, old_rses)
        if d["spec"].get("paused"):
            await self._cleanup(d, old_rses)
        await self._sync_status(d, [*old_rses, new_rs], new_rs)

    async def _fresh(
        self, d: Object, new_rs: Object | None, old_rses: list[Object]
    ) -> tuple[Object | None, list[Object]]:
        """The ReplicaSets as just written (our own updates may not be in the cache yet)."""
        namespace = d["metadata"]["namespace"]
        listed = await self.client.list(rest.REPLICASETS, namespace=namespace)
        by_uid = {
            rs["metadata"]["uid"]: pod_util.with_kind(
                rs, api_version=API_VERSION, kind="ReplicaSet"
            )
            for rs in listed["items"]
        }

        def latest(rs: Object) -> Object | None:
            return by_uid.get(rs["metadata"]["uid"])

        fresh_old = [found for rs in old_rses if (found := latest(rs)) is not None]
        return (latest(new_rs) if new_rs is not None else None), fresh_old

    async def _sync_status_only(self, d: Object, rses: list[Object]) -> None:
        new_rs, old_rses = await self._get_all_and_sync_revision(d, rses, create=False)
        await self._sync_status(d, [*old_rses, new_rs], new_rs)

    async def _sync_status(
        self, d: Object, all_rses: Sequence[Object | None], new_rs: Object | None
    ) -> None:
        status = util.calculate_status(d, all_rses, new_rs, now=pod_util.now())
        if util.clean_status(status) != util.clean_status(d.get("status") or {}):
            await self._write_status(d, status)

    async def _write_status(self, d: Object, status: Object) -> Object:
        body = {**d, "status": util.clean_status(status)}
        updated = await self.client.update_status(rest.DEPLOYMENTS, body)
        d["metadata"] = updated["metadata"]
        d["status"] = updated.get("status") or {}
        return d

    # ----- rollouts ----------------------------------------------------------------------

    async def _rollout_rolling(self, d: Object, rses: list[Object]) -> None:
        new_rs, old_rses = await self._get_all_and_sync_revision(d, rses, create=True)
        assert new_rs is not None
        all_rses = [*old_rses, new_rs]
        if util.replicas(new_rs) != util.replicas(d):
            size = (
                util.replicas(d)
                if util.replicas(new_rs) > util.replicas(d)
                else util.new_rs_new_replicas(d, all_rses, new_rs)
            )
            scaled, new_rs = await self._scale_rs(d, new_rs, size)
            if scaled:
                await self._sync_rollout_status(d, [*old_rses, new_rs], new_rs)
                return
        all_rses = [*old_rses, new_rs]
        if await self._reconcile_old(d, all_rses, util.active(old_rses), new_rs):
            new_rs, old_rses = await self._fresh(d, new_rs, old_rses)
            await self._sync_rollout_status(d, [*old_rses, new_rs], new_rs)
            return
        if util.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rses)
        await self._sync_rollout_status(d, [*old_rses, new_rs], new_rs)

    async def _reconcile_old(
        self, d: Object, all_rses: list[Object], old_rses: list[Object], new_rs: Object
    ) -> bool:
        if util.total_replicas(old_rses) == 0:
            return False
        budget = util.max_old_scale_down(d, all_rses, new_rs)
        if budget <= 0:
            return False
        cleaned, old_rses = await self._scale_many(
            d, old_rses, util.plan_cleanup_unhealthy(old_rses, budget)
        )
        scaled, _ = await self._scale_many(
            d, old_rses, util.plan_scale_down_old(d, [*old_rses, new_rs], old_rses)
        )
        return cleaned or scaled

    async def _rollout_recreate(self, d: Object, rses: list[Object]) -> None:
        new_rs, old_rses = await self._get_all_and_sync_revision(d, rses, create=False)
        live_old = util.active(old_rses)
        scaled, _ = await self._scale_many(
            d, live_old, {rs["metadata"]["name"]: 0 for rs in live_old}
        )
        if scaled:
            new_rs, old_rses = await self._fresh(d, new_rs, old_rses)
            await self._sync_rollout_status(d, [*old_rses, new_rs], new_rs)
            return
        if self._old_pods_running(d, old_rses):
            await self._sync_rollout_status(d, [*old_rses, new_rs], new_rs)
            return
        if new_rs is None:
            new_rs, old_rses = await self._get_all_and_sync_revision(d, rses, create=True)
            assert new_rs is not None
        _, new_rs = await self._scale_rs(d, new_rs, util.replicas(d))
        if util.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rses)
        await self._sync_rollout_status(d, [*old_rses, new_rs], new_rs)

    def _old_pods_running(self, d: Object, old_rses: list[Object]) -> bool:
        if util.total_status(old_rses, "replicas") > 0:
            return True
        old_uids = {rs["metadata"]["uid"] for rs in old_rses}
        namespace = d["metadata"].get("namespace", "")
        for pod in self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace):
            ref = controller_ref.controller_of(pod)
            if ref is not None and ref.get("uid") in old_uids:
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: Object, old_rses: list[Object]) -> None:
        """Delete the oldest empty ReplicaSets beyond ``revisionHistoryLimit``."""
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old_rses if not controller_ref.is_being_deleted(rs)]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        for rs in util.by_revision(alive)[:excess]:
            observed = (rs.get("status") or {}).get("observedGeneration", 0)
            if (
                util.status(rs, "replicas")
                or util.replicas(rs)
                or rs["metadata"].get("generation", 0) > observed
            ):
                continue
            try:
                await self.client.delete(
                    rest.REPLICASETS, rs["metadata"]["name"], namespace=rs["metadata"]["namespace"]
                )
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise

    # ----- progress ------------------------------------------------------------------------

    async def _sync_rollout_status(
        self, d: Object, all_rses: Sequence[Object | None], new_rs: Object | None
    ) -> None:
        now = pod_util.now()
        status = util.rollout_status(d, all_rses, new_rs, now=now)
        if util.clean_status(status) != util.clean_status(d.get("status") or {}):
            await self._write_status(d, status)
        self._requeue_stuck(d, now)

    def _requeue_stuck(self, d: Object, now: datetime.datetime) -> None:
        """Look again when the progress deadline would pass (upstream's requeueStuckDeployment)."""
        deadline = util.progress_deadline(d)
        current = util.condition(d, "Progressing")
        if (
            deadline is None
            or current is None
            or util.deployment_complete(d, d.get("status") or {})
        ):
            return
        if current.get("reason") in ("ProgressDeadlineExceeded", "NewReplicaSetAvailable"):
            # A rollout recorded as complete cannot time out (``deployment_timed_out``
            # answers no for it, as upstream's DeploymentTimedOut does): a scaled-up
            # Deployment waiting for its pods has nothing for a deadline check to find.
            return
        since = times.parse_time(current.get("lastUpdateTime"))
        if since is None:
            return
        after = (since + datetime.timedelta(seconds=deadline) - now).total_seconds()
        key = informer.meta_namespace_key(d)
        if after < 1:
            # Upstream re-adds the key rate-limited here, but the sync's success then
            # forgets its backoff, so the check repeats every 5 ms until the deadline
            # decides. In a process shared with the API server that spin starved the
            # pods it waited for (decision 0053); once a second is soon enough.
            self.queue.add_after(key, STUCK_RECHECK_SECONDS)
        else:
            self.queue.add_after(key, after)
