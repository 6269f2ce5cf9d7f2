"""ResourceQuota: a write that would take a namespace past a quota is refused.

Upstream: plugin/pkg/admission/resourcequota and the quota evaluator in
k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go. Runs last
among the validating plugins, on CREATE and UPDATE of namespaced resources
(events are never quota'd). For each ResourceQuota of the namespace that
tracks a name the object's evaluator (``api.quota``) accounts for and
whose scopes all fit the object:

1. the object must state what the quota needs (``failed quota: q: must
   specify limits.cpu for: nginx; requests.cpu for: nginx``) and the quota
   must have usage for what it tracks (``status unknown for quota: ...``);
2. its cost (on UPDATE, the increase over the stored object) added to
   ``status.used`` may not pass ``status.hard``: ``exceeded quota: q,
   requested: pods=1, used: pods=2, limited: pods=2``;
3. the new usage is written to ``status.used`` before the object is stored,
   as a compare-and-swap on the quota's resourceVersion, so two API servers
   racing for the last unit cannot both win. A lost swap re-reads the
   quotas whose swap failed and checks again (up to three times), as
   upstream's checkQuotas. Within one server, the writes waiting in a
   namespace are charged together, in arrival order, by one task at a time
   (upstream's per-namespace work queue), each changed quota written once
   per batch.

Which namespaces hold a quota at all is kept in memory (``_QuotaIndex``, a
list-then-watch of the ResourceQuota store, as upstream reads quotas from an
informer): a write to a namespace the index knows to have none costs no
storage read. Until the index has listed, and whenever it names a quota, the
quotas are read from storage as before.

Hard limits and usage are read from ``status`` (the resourcequota
controller copies ``spec.hard`` there), so a quota no controller has seen
yet limits nothing, as upstream. Dry runs are checked but not charged.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import logging
from collections.abc import Callable, Iterator
from typing import Any

from kajitori.admission.chain import Plugin
from kajitori.api import quota
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import ListOptions, Store

Object = dict[str, Any]
# (group, version, plural) -> the store serving it, or None.
StoreLookup = Callable[[str, str, str], Store | None]
Clock = Callable[[], datetime.datetime]

log = logging.getLogger(__name__)

RETRIES = 3
_INDEX_RETRY_SECONDS = 1.0
# The API server charges quotas as itself.
APISERVER = UserInfo("system:apiserver", ("system:masters",))


class Refused(Exception):
    """The request does not fit a quota; the message is upstream's reason."""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(eq=False)
class _Waiter:
    """One request waiting for its namespace's batch to charge (or refuse) it."""

    evaluator: quota.Evaluator
    operation: str
    obj: Object
    old: Object | None
    dry_run: bool
    done: asyncio.Future[None]

    def settle(self, error: BaseException | None = None) -> None:
        if self.done.done():
            return  # the request went away (cancelled); nothing to tell it
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


class ResourceQuota(Plugin):
    """The ``ResourceQuota`` admission plugin (validating only).

    Requests of one namespace are charged in batches by one task at a time
    (upstream's per-namespace work queue): the batch reads the quotas once,
    checks each request in arrival order against the running usage, writes
    each changed quota once, then answers every request of the batch.
    """

    def __init__(self, lookup: StoreLookup, *, clock: Clock = _utcnow) -> None:
        self.lookup = lookup
        self.clock = clock
        self._pending: dict[str, list[_Waiter]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._index: _QuotaIndex | None = None

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        info = store.info
        if operation not in ("CREATE", "UPDATE") or not info.namespaced:
            return
        if (info.group, info.plural) in quota.IGNORED:
            return
        evaluator = quota.evaluator_for(info.group, info.plural)
        subresource = ctx.target.subresource if ctx.target is not None else ""
        # Upstream's pod evaluator also charges a resize (pods/resize UPDATE).
        resize = (info.plural, subresource, operation) == ("pods", "resize", "UPDATE")
        if not (evaluator.handles(operation) or resize):
            return
        quotas = self.lookup("", "v1", "resourcequotas")
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        if quotas is None or not namespace:
            return
        # Most namespaces have no quota: their writes need not wait for a batch.
        if isinstance(quotas, Store) and (self._index is None or self._index.store is not quotas):
            self._index = _QuotaIndex(quotas)
        if (
            self._index is not None
            and self._index.store is quotas
            and self._index.none_in(namespace)
        ):
            return
        if not (await quotas.list(namespace, ListOptions(limit=1))).items:
            return
        waiter = _Waiter(
            evaluator, operation, obj, old, ctx.dry_run, asyncio.get_running_loop().create_future()
        )
        self._enqueue(quotas, namespace, waiter)
        try:
            await waiter.done
        except Refused as refused:
            raise errors.forbidden(store.gr, str(meta.get("name") or ""), str(refused)) from None

    def _enqueue(self, quotas: Store, namespace: str, waiter: _Waiter) -> None:
        self._pending.setdefault(namespace, []).append(waiter)
        if namespace not in self._workers:
            self._workers[namespace] = asyncio.ensure_future(self._drain(quotas, namespace))

    async def _drain(self, quotas: Store, namespace: str) -> None:
        """Charge batches until none is waiting; the map entry goes with the last one."""
        try:
            while batch := self._pending.pop(namespace, None):
                try:
                    await self._check_quotas(quotas, namespace, batch)
                except Exception as exc:  # storage trouble: every open request fails with it
                    for waiter in batch:
                        waiter.settle(exc)
                except asyncio.CancelledError:
                    for waiter in batch:
                        waiter.done.cancel()
                    raise
        finally:
            del self._workers[namespace]

    async def _check_quotas(self, quotas: Store, namespace: str, batch: list[_Waiter]) -> None:
        """Upstream's checkQuotas: check all, write changed quotas, retry lost swaps."""
        names: set[str] | None = None  # on a retry: only the quotas whose swap failed
        open_waiters = list(batch)
        conflict: errors.StatusError | None = None
        for _ in range(RETRIES + 1):
            listed = (await quotas.list(namespace, ListOptions())).items
            original = [q for q in listed if names is None or q["metadata"]["name"] in names]
            running = {q["metadata"]["name"]: q for q in original}
            charged = self._check_each(running, open_waiters)
            open_waiters = charged
            failed: set[str] = set()
            for resource_quota in original:
                name = resource_quota["metadata"]["name"]
                if running[name] is resource_quota:
                    continue  # nobody in this batch changed it
                try:
                    await quotas.update(
                        namespace,
                        name,
                        running[name],
                        RequestContext(user=APISERVER),
                        subresource="status",
                    )
                except errors.StatusError as exc:
                    if exc.code not in (404, 409):
                        raise
                    # Lost the swap, or the quota went: re-read; a gone quota drops out.
                    failed.add(name)
                    conflict = exc
            if not failed:
                break
            names = failed
        else:
            assert conflict is not None
            for waiter in open_waiters:
                waiter.settle(conflict)
            return
        for waiter in open_waiters:
            waiter.settle()

    def _check_each(self, running: dict[str, Object], waiters: list[_Waiter]) -> list[_Waiter]:
        """Check waiters in order against ``running`` (updated in place with each charge).

        Refused and unaffected requests are answered now; the rest, whose
        charges must still be written, are returned.
        """
        charged: list[_Waiter] = []
        for waiter in waiters:
            try:
                changed = check_request(
                    list(running.values()),
                    waiter.evaluator,
                    waiter.operation,
                    waiter.obj,
                    waiter.old,
                    now=self.clock(),
                )
            except Refused as refused:
                waiter.settle(refused)
                continue
            if waiter.dry_run or not changed:
                waiter.settle()
                continue
            for resource_quota in changed:
                running[resource_quota["metadata"]["name"]] = resource_quota
            charged.append(waiter)
        return charged


def check_request(
    quotas: list[Object],
    evaluator: quota.Evaluator,
    operation: str,
    obj: Object,
    old: Object | None,
    *,
    now: datetime.datetime,
) -> list[Object]:
    """The quotas whose ``status.used`` this request changes, with the new usage.

    Raises ``Refused`` when the object lacks what a quota needs or does not
    fit. Pure: ``quotas`` are not modified (the result holds copies).
    """
    interesting = list(_interesting(quotas, evaluator, obj))
    if not interesting:
        return []
    delta = evaluator.usage(obj, now)
    negative = quota.negative_names(delta)
    if negative:
        raise Refused(f"quota usage is negative for resource(s): {','.join(negative)}")
    if operation == "UPDATE" and old is not None:
        if (old.get("metadata") or {}).get("resourceVersion"):
            delta = quota.subtract_non_negative(delta, evaluator.usage(old, now))
    if quota.is_zero(delta):
        return []
    return [q for q in (_charge_one(q, delta) for q in interesting) if q is not None]


def _interesting(quotas: list[Object], evaluator: quota.Evaluator, obj: Object) -> Iterator[Object]:
    """Quotas that apply to ``obj``, after checking constraints and usage stats."""
    for resource_quota in quotas:
        if not quota.matches(resource_quota, evaluator, obj):
            continue
        name = resource_quota["metadata"]["name"]
        status = resource_quota.get("status") or {}
        hard = quota.parse_list(status.get("hard"))
        tracked = evaluator.matching_resources(hard)
        problem = evaluator.constraints(tracked, obj)
        if problem:
            raise Refused(f"failed quota: {name}: {problem}")
        used = quota.parse_list(status.get("used"))
        unknown = sorted(n for n in tracked if n not in used)
        if unknown:
            raise Refused(
                f"status unknown for quota: {name}, resources: {','.join(sorted(tracked))}"
            )
        yield resource_quota


def _charge_one(resource_quota: Object, delta: quota.ResourceList) -> Object | None:
    status = resource_quota.get("status") or {}
    hard = quota.parse_list(status.get("hard"))
    used = quota.parse_list(status.get("used"))
    requested = quota.mask(delta, hard)
    new_used = quota.add(used, requested)
    over = quota.exceeded(quota.mask(new_used, requested), hard)
    if over:
        raise Refused(
            f"exceeded quota: {resource_quota['metadata']['name']}, "
            f"requested: {quota.pretty_print(quota.mask(requested, over))}, "
            f"used: {quota.pretty_print(quota.mask(used, over))}, "
            f"limited: {quota.pretty_print(quota.mask(hard, over))}"
        )
    if quota.equals(new_used, used):
        return None
    updated = copy.deepcopy(resource_quota)
    updated.setdefault("status", {})["used"] = quota.encode_list(new_used)
    return updated


class _QuotaIndex:
    """How many ResourceQuotas each namespace holds, kept current by list-then-watch.

    ``none_in`` is only sure once the first list is in; the watch then keeps
    the counts current (a quota created elsewhere shows up with the watch's
    delay, as upstream's informer-fed quota lister). The task stops with the
    event loop.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.counts: dict[str, int] = {}
        self.synced = False
        self._task = asyncio.ensure_future(self._run())

    def none_in(self, namespace: str) -> bool:
        return self.synced and not self.counts.get(namespace)

    async def _run(self) -> None:
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a 410 or a broken watch: list again
                log.info("resourcequota index: %s; listing again", exc)
            self.synced = False
            await asyncio.sleep(_INDEX_RETRY_SECONDS)

    async def _list_and_watch(self) -> None:
        listed = await self.store.list("", ListOptions())
        names: dict[tuple[str, str], None] = {}
        for item in listed.items:
            names[self._id(item)] = None
        self._recount(names)
        self.synced = True
        opts = ListOptions(resource_version=listed.resource_version)
        async for event in self.store.watch("", opts):
            if event.type == "ADDED":
                names[self._id(event.object)] = None
            elif event.type == "DELETED":
                names.pop(self._id(event.object), None)
            else:
                continue
            self._recount(names)

    def _recount(self, names: dict[tuple[str, str], None]) -> None:
        counts: dict[str, int] = {}
        for namespace, _ in names:
            counts[namespace] = counts.get(namespace, 0) + 1
        self.counts = counts

    @staticmethod
    def _id(obj: Object) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace") or ""), str(meta.get("name") or "")
