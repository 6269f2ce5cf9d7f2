"""The resourcequota controller: ``status.hard`` and ``status.used`` of every ResourceQuota.

Upstream: pkg/controller/resourcequota/resource_quota_controller.go and its
replenishment monitors. The ResourceQuota admission plugin charges creates
as they happen; this controller owns the full count:

* a quota is synced when it appears, when its ``spec.hard`` changes, and
  every ``resync_period`` seconds (upstream's ``--resource-quota-sync-period``,
  5 minutes), which also catches what no event tells (a pod whose deletion
  grace ran out, objects of resources we do not watch);
* replenishment: when a watched object goes away or its usage shrinks (a pod
  turning Succeeded or Failed, a Service losing node ports), the quotas of
  its namespace that track one of its names are synced at once, so freed
  quota is usable without waiting for the resync;
* ``sync`` recomputes usage from a live list of each resource the quota
  names (``api.quota`` says which resource and what each object costs,
  filtered by the quota's scopes), copies ``spec.hard`` to ``status.hard``
  and writes the status when it changed. The write carries the cached
  resourceVersion, so a race with admission's own charge is a conflict and
  the key is retried rather than overwriting a newer count.

Keys are ``namespace/name`` of quotas. Resources named by ``count/<r>.<g>``
are found through discovery (refreshed when a name is not found).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import logging
from collections.abc import Callable
from typing import Any

from kajitori.api import quota
from kajitori.client import events, informer, rest
from kajitori.controllers import base

log = logging.getLogger(__name__)

Object = dict[str, Any]
Clock = Callable[[], datetime.datetime]

DEFAULT_RESYNC_PERIOD = 300.0
REPLICATIONCONTROLLERS = rest.Resource(
    "", "v1", "replicationcontrollers", True, "ReplicationController"
)
# Resources whose deletes and usage changes are watched for replenishment.
REPLENISHED = (
    rest.PODS,
    rest.SERVICES,
    rest.PERSISTENTVOLUMECLAIMS,
    rest.CONFIGMAPS,
    rest.SECRETS,
    REPLICATIONCONTROLLERS,
    rest.RESOURCEQUOTAS,
)
_KNOWN = {(r.group, r.plural): r for r in REPLENISHED}


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ResourceQuotaController(base.QueueController[str]):
    """Keeps quota status current; ``run(workers)`` until ``shut_down``."""

    name = "resourcequota"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        resync_period: float = DEFAULT_RESYNC_PERIOD,
        clock: Clock = _utcnow,
    ) -> None:
        super().__init__()
        self.client = client
        self.resync_period = resync_period
        self.clock = clock
        self.quotas = self.watch(
            informers.informer(rest.RESOURCEQUOTAS),
            on_add=self.enqueue,
            on_update=self._update_quota,
        )
        self.monitors = [self._monitor(informers, resource) for resource in REPLENISHED]
        self._discovered: dict[tuple[str, str], rest.Resource] = {}

    def _monitor(
        self, informers: informer.InformerFactory, resource: rest.Resource
    ) -> informer.Informer:
        evaluator = quota.evaluator_for(resource.group, resource.plural)

        def on_update(old: Object, new: Object) -> None:
            if not self._quotas_in((new.get("metadata") or {}).get("namespace") or ""):
                return  # most namespaces have none: skip pricing every status update
            now = self.clock()
            if not quota.equals(evaluator.usage(old, now), evaluator.usage(new, now)):
                self._replenish(evaluator, new)

        return self.watch(
            informers.informer(resource),
            on_update=on_update,
            on_delete=lambda obj: self._replenish(evaluator, obj),
        )

    # ----- event handlers ---------------------------------------------------------

    def _update_quota(self, old: Object, new: Object) -> None:
        # Status writes (ours and admission's) are not a reason to recount.
        if (old.get("spec") or {}).get("hard") != (new.get("spec") or {}).get("hard"):
            self.enqueue(new)

    def _replenish(self, evaluator: quota.Evaluator, obj: Object) -> None:
        """Sync the quotas of ``obj``'s namespace that track something it is charged for."""
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        for resource_quota in self._quotas_in(namespace):
            hard = ((resource_quota.get("spec") or {}).get("hard") or {}).keys()
            if evaluator.matching_resources(hard):
                self.enqueue(resource_quota)

    def _quotas_in(self, namespace: str) -> list[Object]:
        return self.quotas.indexer.by_index(informer.NAMESPACE_INDEX, namespace)

    def _enqueue_all(self) -> None:
        for resource_quota in self.quotas.indexer.list():
            self.enqueue(resource_quota)

    # ----- running ----------------------------------------------------------------

    async def work(self, workers: int) -> None:
        resync = asyncio.ensure_future(self._resync_loop())
        try:
            await super().work(workers)
        finally:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resync

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            self._enqueue_all()

    # ----- sync -------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.quotas.indexer.get(key)
        if cached is None:
            return
        resource_quota = copy.deepcopy(cached)
        namespace, _ = informer.split_key(key)
        spec_hard = dict((resource_quota.get("spec") or {}).get("hard") or {})
        status = resource_quota.get("status") or {}
        used = quota.parse_list(status.get("used"))
        used.update(
            await self._usage(namespace, list(spec_hard), quota.scope_selectors(resource_quota))
        )
        wanted = {
            "hard": spec_hard,
            "used": quota.encode_list(quota.mask(used, spec_hard)),
        }
        if _same_status(status, wanted):
            return
        resource_quota["status"] = wanted
        try:
            await self.client.update_status(rest.RESOURCEQUOTAS, resource_quota)
        except rest.ApiError as exc:
            if exc.not_found:
                return  # deleted meanwhile
            raise  # a conflict: admission charged it; retry from the newer cache

    async def _usage(
        self, namespace: str, names: list[str], selectors: list[quota.ScopeSelector]
    ) -> quota.ResourceList:
        """Usage of ``names`` in ``namespace``, one live list per resource they name."""
        by_resource: dict[tuple[str, str], list[str]] = {}
        for name in names:
            target = quota.resource_for_name(name)
            if target is not None:
                by_resource.setdefault(target, []).append(name)
        total: quota.ResourceList = {}
        now = self.clock()
        for (group, plural), tracked in by_resource.items():
            resource = await self._resource(group, plural)
            if resource is None:
                continue  # not served (yet); its names stay without usage
            listed = await self.client.list_all(resource, namespace=namespace)
            evaluator = quota.evaluator_for(group, plural)
            usage = quota.usage_of(tracked, selectors, evaluator, listed.get("items") or (), now)
            total.update(usage)
        return total

    async def _resource(self, group: str, plural: str) -> rest.Resource | None:
        known = _KNOWN.get((group, plural)) or self._discovered.get((group, plural))
        if known is not None:
            return known
        for found in await self.client.discover():
            if found.namespaced and "list" in found.verbs and "/" not in found.plural:
                self._discovered[(found.group, found.plural)] = found
        return self._discovered.get((group, plural))


def _same_status(status: Object, wanted: Object) -> bool:
    """Equal as quantities (``1000m`` is ``1``), so we do not rewrite an unchanged status."""
    return quota.equals(
        quota.parse_list(status.get("hard")), quota.parse_list(wanted["hard"])
    ) and quota.equals(quota.parse_list(status.get("used")), quota.parse_list(wanted["used"]))
