"""Local APIServices for what this server serves (upstream: autoregister + crdregistration).

Owns the desired local APIServices and keeps the stored ones in step, as
upstream's autoRegisterController's checkAPIService table does:

- every built-in group version served at start, with its priority from
  ``priorities.BUILT_IN``, labelled ``kube-aggregator.kubernetes.io/automanaged:
  onstart``: created if missing and put back to the desired spec once per
  start, then left to the administrator;
- every served version of every CRD (priority 1000/100), labelled ``true``:
  created, updated and deleted as the CRDs change;
- a stored APIService labelled ``onstart`` that nothing desires any more, and
  that existed when this server started, is deleted once; an unlabelled one is
  never touched.

Local APIServices are created Available (reason ``Local``) by their strategy.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Iterable
from typing import Any

from kajitori.auth import reflector
from kajitori.client.workqueue import RateLimitingQueue
from kajitori.machinery import errors
from kajitori.registry.apiextensions import customresources
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import DeleteOptions, Store
from kajitori.server.aggregator import priorities
from kajitori.server.aggregator.index import APIServiceIndex, name_of
from kajitori.server.aggregator.worker import run_worker
from kajitori.server.apis import APIRegistry

Object = dict[str, Any]

MANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
ON_START = "onstart"
CONTINUOUSLY = "true"
# The API server's own loopback identity (upstream writes through its loopback client).
_WORKERS = 5
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))


def api_service(group: str, version: str, priority: priorities.Priority, managed: str) -> Object:
    """The local APIService serving ``group/version`` here."""
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": f"{version}.{group}", "labels": {MANAGED_LABEL: managed}},
        "spec": {
            "group": group,
            "version": version,
            "groupPriorityMinimum": priority.group,
            "versionPriority": priority.version,
        },
    }


def built_in_api_services(registry: APIRegistry) -> list[Object]:
    """One ``onstart`` APIService per built-in group version served (upstream's ListedPaths)."""
    served: list[tuple[str, str]] = []
    for info in registry.resources():
        if isinstance(info, customresources.CustomResourceInfo):
            continue
        key = (info.group, info.version)
        if key not in served:
            served.append(key)
    return [
        api_service(group, version, priorities.BUILT_IN[(group, version)], ON_START)
        for group, version in served
        if (group, version) in priorities.BUILT_IN
    ]


def crd_api_services(crds: Iterable[Object], built_in: set[str]) -> dict[str, Object]:
    """One ``true`` APIService per served CRD version not already built in."""
    desired: dict[str, Object] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        group = str(spec.get("group") or "")
        for version in spec.get("versions") or ():
            name = f"{version.get('name')}.{group}"
            if version.get("served") and name not in built_in:
                desired[name] = api_service(
                    group, str(version.get("name")), priorities.CRD, CONTINUOUSLY
                )
    return desired


def _managed(obj: Object | None) -> str:
    if obj is None:
        return ""
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_LABEL) or "")


class AutoRegister:
    """Keeps the local APIServices of built-in and CRD group versions."""

    def __init__(self, index: APIServiceIndex, registry: APIRegistry, crds: Store) -> None:
        self.index = index
        self.crd_store = crds
        self.on_start = {name_of(obj): obj for obj in built_in_api_services(registry)}
        self.continuously: dict[str, Object] = {}
        self.crds: dict[str, Object] = {}
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="autoregister")
        self._present_at_start: set[str] = set()
        self._synced_once: set[str] = set()
        self._crds_synced = asyncio.Event()
        self._built_ins_synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ctx = RequestContext(user=_SYSTEM, field_validation="Ignore")
        index.subscribe(self.queue.add)

    async def start(self) -> None:
        """Start once the APIServices and CRDs are known (upstream waits for the CRD sync)."""
        self._tasks.append(
            asyncio.create_task(
                reflector.reflect(
                    "autoregister crds",
                    self.crd_store,
                    self._replace_crds,
                    self._apply_crd,
                    self._crds_synced,
                )
            )
        )
        await self.index.synced.wait()
        await self._crds_synced.wait()
        self._present_at_start = set(self.index.objects)
        if not self.on_start:
            self._built_ins_synced.set()
        for name in [*self.on_start, *self.continuously]:
            self.queue.add(name)
        # Upstream runs five workers; the queue never hands one name to two of them.
        for _ in range(_WORKERS):
            self._tasks.append(
                asyncio.create_task(run_worker(self.queue, self.sync, "autoregister"))
            )

    async def wait_synced(self, timeout: float = 30.0) -> None:
        """Until every built-in APIService has been synced once (upstream's autoregister-completion)."""
        async with asyncio.timeout(timeout):
            await self._built_ins_synced.wait()

    async def stop(self) -> None:
        self.queue.shut_down()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # ----- CRDs -----------------------------------------------------------------

    def _replace_crds(self, items: Iterable[Object]) -> None:
        self.crds = {name_of(obj): obj for obj in items}
        self._recompute_crds()

    def _apply_crd(self, event_type: str, obj: Object) -> None:
        if event_type == "DELETED":
            self.crds.pop(name_of(obj), None)
        else:
            self.crds[name_of(obj)] = obj
        self._recompute_crds()

    def _recompute_crds(self) -> None:
        desired = crd_api_services(self.crds.values(), set(self.on_start))
        changed = {
            name
            for name in set(desired) | set(self.continuously)
            if desired.get(name) != self.continuously.get(name)
        }
        self.continuously = desired
        for name in changed:
            self.queue.add(name)

    # ----- syncing --------------------------------------------------------------

    def desired(self, name: str) -> Object | None:
        return self.continuously.get(name) or self.on_start.get(name)

    async def sync(self, name: str) -> None:
        """checkAPIService: create, update or delete one APIService."""
        await self._check(name)
        self._synced_once.add(name)
        if not self._built_ins_synced.is_set() and set(self.on_start) <= self._synced_once:
            self._built_ins_synced.set()

    async def _check(self, name: str) -> None:
        desired = self.desired(name)
        current = self.index.objects.get(name)
        synced = name in self._synced_once
        if current is None and desired is None:
            return
        if _managed(desired) == ON_START and synced:
            return
        if current is None:
            assert desired is not None
            await self._create(desired)
            return
        managed = _managed(current)
        if managed not in (ON_START, CONTINUOUSLY):
            return  # not ours: an administrator's or another component's
        if managed == ON_START and (name not in self._present_at_start or synced):
            return
        if desired is None:
            await self._delete(name)
            return
        if current.get("spec") == desired["spec"]:
            return
        updated = copy.deepcopy(current)
        updated["spec"] = copy.deepcopy(desired["spec"])
        await self.index.store.update("", name, updated, self._ctx)

    async def _create(self, desired: Object) -> None:
        try:
            await self.index.store.create("", copy.deepcopy(desired), self._ctx)
        except errors.StatusError as exc:
            if exc.code != 409:  # created meanwhile: the watch brings it back here
                raise

    async def _delete(self, name: str) -> None:
        with contextlib.suppress(errors.StatusError):
            await self.index.store.delete("", name, DeleteOptions(), self._ctx)
