"""Serving custom resources: the in-process CRD controller of the API server.

Owns what upstream's apiextensions-apiserver does with its naming,
establishing, finalizing and OpenAPI controllers, in one small reconciler fed
by a list+watch of the CRD store (the shape of ``auth/rbac.py``'s loop):

- names: a CRD whose plural or kind is already taken in its group (by another
  CRD's accepted names or a built-in resource) gets NamesAccepted False
  (``PluralConflict``/``KindConflict``, ``"foos" is already in use``) and is
  not served; otherwise NamesAccepted True (``NoConflicts``), Established
  True (``InitialNamesAccepted``), ``acceptedNames`` and ``storedVersions``;
- serving: an established CRD's served versions are added to the
  ``APIRegistry`` (discovery, aggregated discovery and routing read it per
  request, so kubectl sees new types at once) and its group versions get an
  OpenAPI v3 document built from the schemas;
- deletion: a terminating CRD's custom resources are all deleted, then the
  ``customresourcecleanup.apiextensions.k8s.io`` finalizer is removed (the
  store then deletes the CRD) and the versions stop being served.

One task reads the watch and one worker reconciles names from a
deduplicating set, retrying failures after a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.apiextensions import customresourcedefinitions as crds
from kajitori.registry.apiextensions import customresources
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store
from kajitori.server import openapi
from kajitori.server.apis import APIRegistry

log = logging.getLogger(__name__)

Object = dict[str, Any]
Key = tuple[str, str, str]

_SYSTEM = UserInfo("system:apiserver", ("system:masters",))
_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_RETRY_SECONDS = 1.0


def version_priority(name: str) -> tuple[int, int, int, str]:
    """Sort key: GA before beta before alpha, higher numbers first, others by name last."""
    match = _VERSION.match(name)
    if match is None:
        return (3, 0, 0, name)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), name)


class CRDController:
    """Keeps the served custom resources in step with the stored CRDs."""

    def __init__(self, registry: APIRegistry, docs: openapi.OpenAPIV3 | None = None) -> None:
        store = registry.lookup(crds.GROUP, "v1", "customresourcedefinitions")
        assert store is not None, "the CRD resource must be installed"
        self.registry = registry
        self.store: Store = store
        self.docs = docs
        self.objects: dict[str, Object] = {}
        self._served: dict[str, tuple[Any, list[Key]]] = {}
        self._schemas: dict[str, dict[str, list[tuple[Any, Object]]]] = {}
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ctx = RequestContext(user=_SYSTEM, field_validation="Ignore")

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._reflect()))
        self._tasks.append(asyncio.create_task(self._work()))

    async def wait_synced(self) -> None:
        """Until the CRDs stored at start have been reconciled once."""
        await self._synced.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # ----- feeding ----------------------------------------------------------

    async def _reflect(self) -> None:
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except errors.StatusError as exc:
                if exc.code != 410:
                    log.warning("crds: watch failed: %s; relisting", exc.message)
                    await asyncio.sleep(_RETRY_SECONDS)
            except Exception:
                log.exception("crds: watch failed; relisting")
                await asyncio.sleep(_RETRY_SECONDS)

    async def _list_and_watch(self) -> None:
        listed = await self.store.list("", ListOptions())
        current = {obj["metadata"]["name"]: obj for obj in listed.items}
        for name in set(self.objects) | set(current):
            self._enqueue(name)
        self.objects = current
        if not self._synced.is_set():
            await self._drain()
            self._synced.set()
        async for event in self.store.watch(
            "", ListOptions(resource_version=listed.resource_version)
        ):
            name = event.object.get("metadata", {}).get("name", "")
            if event.type in ("ADDED", "MODIFIED"):
                self.objects[name] = event.object
            elif event.type == "DELETED":
                self.objects.pop(name, None)
            else:
                continue
            self._enqueue(name)

    def _enqueue(self, name: str) -> None:
        self._pending.add(name)
        self._wake.set()

    async def _drain(self) -> None:
        while self._pending:
            name = self._pending.pop()
            await self._sync_or_retry(name)

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _sync_or_retry(self, name: str) -> None:
        try:
            await self.sync(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("crds: syncing %s failed: %s; retrying", name, exc)
            asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._enqueue, name)

    # ----- reconciling ------------------------------------------------------

    async def sync(self, name: str) -> None:
        crd = self.objects.get(name)
        if crd is None:
            await self._unserve(name)
            return
        if crd["metadata"].get("deletionTimestamp"):
            if name not in self._served and crds.condition_true(crd, "Established"):
                # After a restart: serve it again so its objects can be found and deleted.
                await self._serve(crd)
            await self._finalize(crd)
            return
        conflict = self._name_conflict(crd)
        desired = _with_status(crd, conflict)
        if desired.get("status") != crd.get("status"):
            updated, _ = await self.store.update("", name, desired, self._ctx, subresource="status")
            self.objects[name] = updated
            crd = updated
        if conflict is None:
            await self._serve(crd)
        else:
            await self._unserve(name)

    def _name_conflict(self, crd: Object) -> tuple[str, str] | None:
        """(reason, message) when the CRD's plural or kind is taken in its group."""
        spec = crd["spec"]
        group, crd_names = spec["group"], spec["names"]
        for other in self.objects.values():
            if other["metadata"]["name"] == crd["metadata"]["name"]:
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            if other["spec"].get("group") != group or not accepted:
                continue
            if accepted.get("plural") == crd_names["plural"]:
                return "PluralConflict", f'"{crd_names["plural"]}" is already in use'
            if accepted.get("kind") == crd_names["kind"]:
                return "KindConflict", f'"{crd_names["kind"]}" is already in use'
        for info in self.registry.resources():
            if info.group != group or isinstance(info, customresources.CustomResourceInfo):
                continue
            if info.plural == crd_names["plural"]:
                return "PluralConflict", f'"{crd_names["plural"]}" is already in use'
        return None

    async def _serve(self, crd: Object) -> None:
        name = crd["metadata"]["name"]
        fingerprint = (crd["spec"], (crd.get("status") or {}).get("acceptedNames"))
        served = self._served.get(name)
        if served is not None and served[0] == fingerprint:
            return
        # A changed CRD is served anew; watchers of the old stores re-watch.
        await self._unserve(name)
        keys: list[Key] = []
        schemas: dict[str, list[tuple[Any, Object]]] = {}
        versions = sorted(
            customresources.served_versions(crd), key=lambda v: version_priority(v["name"])
        )
        for version in versions:
            info = customresources.resource_info(crd, version)
            self.registry.add_resource(info, wrap=customresources.conversion_for(info))
            keys.append((info.group, info.version, info.plural))
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
            schemas.setdefault(openapi.gv_path(info.group, info.version), []).append((info, schema))
        self._served[name] = (copy.deepcopy(fingerprint), keys)
        self._schemas[name] = schemas
        self._publish_openapi(schemas)

    async def _unserve(self, name: str) -> None:
        stores = self._drop_stores(name)
        for store in stores:
            await store.stop_watch_cache()

    def _drop_stores(self, name: str) -> list[Store]:
        served = self._served.pop(name, None)
        if served is None:
            return []
        stores = [s for s in (self.registry.remove_resource(*key) for key in served[1]) if s]
        self._publish_openapi(self._schemas.pop(name, {}))
        return stores

    def _publish_openapi(self, changed: dict[str, list[tuple[Any, Object]]]) -> None:
        """Rebuild the documents of the group versions ``changed`` touches."""
        if self.docs is None:
            return
        for path in changed:
            entries = [e for per_crd in self._schemas.values() for e in per_crd.get(path, [])]
            self.docs.set_custom_document(
                path, openapi.build_custom_document(entries) if entries else None
            )

    async def _finalize(self, crd: Object) -> None:
        """Delete every custom resource, then let the CRD go."""
        name = crd["metadata"]["name"]
        if crds.CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return
        self._refuse_creates(name)
        store = self._storage_store(name)
        if store is not None:
            remaining = await self._delete_all(store)
            if remaining:
                asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._enqueue, name)
                return
        current = await self.store.get("", name)
        current["metadata"]["finalizers"] = [
            f for f in current["metadata"].get("finalizers", []) if f != crds.CLEANUP_FINALIZER
        ]
        await self.store.update("", name, current, self._ctx)

    def _refuse_creates(self, name: str) -> None:
        """A terminating CRD's resources accept no new objects (upstream: 405)."""
        for key in self._served.get(name, (None, []))[1]:
            store = self.registry.lookup(*key)
            strategy = store.info.strategy if store is not None else None
            if isinstance(strategy, customresources.CustomResourceStrategy):
                strategy.terminating = True

    def _storage_store(self, name: str) -> Store | None:
        """The store of the storage version (any served version reads the same keys)."""
        served = self._served.get(name)
        if served is None or not served[1]:
            return None
        stores = [s for s in (self.registry.lookup(*key) for key in served[1]) if s is not None]
        for store in stores:
            info = store.info
            if isinstance(info, customresources.CustomResourceInfo):
                if info.version == info.storage_version:
                    return store
        return stores[0] if stores else None

    async def _delete_all(self, store: Store) -> int:
        """Delete every object; how many are still there (held by finalizers)."""
        listed = await store.list("", ListOptions())
        for obj in listed.items:
            meta = obj["metadata"]
            with contextlib.suppress(errors.StatusError):
                await store.delete(
                    meta.get("namespace", ""), meta["name"], DeleteOptions(), self._ctx
                )
        return len((await store.list("", ListOptions())).items)


def _with_status(crd: Object, conflict: tuple[str, str] | None) -> Object:
    """The CRD with the naming and establishing conditions it should have."""
    desired = copy.deepcopy(crd)
    spec = desired["spec"]
    status = desired.setdefault("status", {})
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    stored = list(status.get("storedVersions") or [])
    for version in storage:
        if version not in stored:
            stored.append(version)
    status["storedVersions"] = stored
    if conflict is not None:
        crds.set_condition(desired, "NamesAccepted", "False", *conflict)
        if not crds.condition_true(desired, "Established"):
            crds.set_condition(
                desired, "Established", "False", "NotAccepted", "not all names are accepted"
            )
        status.setdefault("acceptedNames", {"plural": "", "kind": ""})
        return desired
    status["acceptedNames"] = copy.deepcopy(spec["names"])
    crds.set_condition(desired, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
    crds.set_condition(
        desired,
        "Established",
        "True",
        "InitialNamesAccepted",
        "the initial names have been accepted",
    )
    return desired
