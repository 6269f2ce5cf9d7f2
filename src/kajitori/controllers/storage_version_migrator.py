"""The storage version migrator: rewrites every object of a resource through the API.

Mirrors upstream's pkg/controller/storageversionmigrator, which
kube-controller-manager runs by default since 1.37 (StorageVersionMigration
GA). For each ``storagemigration.k8s.io/v1`` StorageVersionMigration that has
neither Succeeded nor Failed:

1. find ``spec.resource`` (group and plural) in discovery, at its preferred
   version; unknown: Failed, "resource does not exist in discovery";
2. record the resource's current list resourceVersion in
   ``status.resourceVersion`` (upstream's resource-version controller; done
   once, and the status write brings the SVM back here);
3. set Running, then write each object back unchanged: a merge patch naming
   only its ``uid`` and ``resourceVersion``, so a deleted, recreated or
   meanwhile updated object is a conflict (skipped: it needs no migration)
   while the others are re-encoded by storage, e.g. with the encryption
   configuration's current key (``registry.encryption``: a no-op write of a
   value read with an older key is still written); any other error: Failed,
   "migration encountered unhandled error";
4. Succeeded, with Running set to False.

Upstream writes each object with a server-side apply of the same two
fields and waits for the garbage collector's cache to reach the recorded
resourceVersion before listing; here the objects are listed from the API
directly (a list is always at least as new as the recorded version), and a
merge patch stands in for the apply, which our client does not send: both
are no-op writes guarded by the same preconditions.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]

SVMS = rest.Resource(
    "storagemigration.k8s.io", "v1", "storageversionmigrations", False, "StorageVersionMigration"
)
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
REASON_SUCCEEDED = "StorageVersionMigrationSucceeded"
REASON_RUNNING = "StorageVersionMigrationInProgress"
REASON_FAILED = "StorageVersionMigrationFailed"
_PAGE = 500


def _conditions(svm: Object) -> list[Object]:
    status = svm.get("status")
    found = status.get("conditions") if isinstance(status, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def is_true(svm: Object, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in _conditions(svm))


def with_condition(svm: Object, kind: str, reason: str, message: str = "") -> Object:
    """A copy of ``svm`` with ``kind`` True (upstream's setStatusConditions).

    A terminal condition turns a True Running to False, so that the status
    stays valid; a condition already True is left as it is.
    """
    out = copy.deepcopy(svm)
    if is_true(out, kind):
        return out
    status = out.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    if kind in (SUCCEEDED, FAILED):
        for condition in conditions:
            if condition.get("type") == RUNNING and condition.get("status") == "True":
                condition["status"] = "False"
    # metav1.Condition's message has no omitempty: Go always sends it, "" included.
    conditions.append(
        {
            "type": kind,
            "status": "True",
            "lastTransitionTime": times.now_rfc3339(),
            "reason": reason,
            "message": message,
        }
    )
    return out


def _target(svm: Object) -> tuple[str, str]:
    spec = svm.get("spec")
    res = spec.get("resource") if isinstance(spec, dict) else None
    res = res if isinstance(res, dict) else {}
    return str(res.get("group") or ""), str(res.get("resource") or "")


class StorageVersionMigratorController(base.QueueController[str]):
    """Migrates the objects each StorageVersionMigration names."""

    name = "storage-version-migrator-controller"

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
        self.svm_informer = self.watch(
            informers.informer(SVMS), on_add=self.enqueue, on_update=self._update
        )

    def _update(self, old: Object, new: Object) -> None:
        self.enqueue(new)

    async def sync(self, key: str) -> None:
        cached = self.svm_informer.indexer.get(key)
        if cached is None or is_true(cached, SUCCEEDED) or is_true(cached, FAILED):
            return
        target = await self._resolve(cached)
        if target is None:
            await self._update_status(
                with_condition(
                    cached, FAILED, REASON_FAILED, "resource does not exist in discovery"
                )
            )
            return
        status = cached.get("status")
        if not (isinstance(status, dict) and status.get("resourceVersion")):
            await self._record_resource_version(cached, target)
            return
        await self._migrate(cached, target)

    async def _resolve(self, svm: Object) -> rest.Resource | None:
        """The served resource ``spec.resource`` names, at its preferred version."""
        group, plural = _target(svm)
        for found in await self.client.discover():
            if found.group == group and found.plural == plural:
                return found
        return None

    async def _record_resource_version(self, svm: Object, target: rest.Resource) -> None:
        # One item is enough: only the list's own resourceVersion is wanted.
        page = await self.client.list(target, limit=1, metadata_only=True)
        updated = copy.deepcopy(svm)
        updated.setdefault("status", {})["resourceVersion"] = page["metadata"]["resourceVersion"]
        await self._update_status(updated)

    async def _migrate(self, svm: Object, target: rest.Resource) -> None:
        svm = await self._update_status(with_condition(svm, RUNNING, REASON_RUNNING))
        token = ""
        while True:
            page = await self.client.list(target, limit=_PAGE, continue_=token, metadata_only=True)
            for item in page.get("items") or ():
                if not await self._rewrite(target, item):
                    await self._update_status(
                        with_condition(
                            svm, FAILED, REASON_FAILED, "migration encountered unhandled error"
                        )
                    )
                    return
            token = (page.get("metadata") or {}).get("continue", "")
            if not token:
                break
        await self._update_status(with_condition(svm, SUCCEEDED, REASON_SUCCEEDED))
        log.info("storage version migration %s succeeded", svm["metadata"]["name"])

    async def _rewrite(self, target: rest.Resource, item: Object) -> bool:
        """One no-op write; False when it failed for another reason than a conflict."""
        meta = item.get("metadata") or {}
        patch = {
            "metadata": {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        }
        try:
            await self.client.patch(
                target, meta.get("name", ""), patch, namespace=meta.get("namespace", "")
            )
        except rest.ApiError as exc:
            # Changed, deleted or recreated meanwhile: nothing left to migrate.
            if exc.conflict or exc.not_found:
                return True
            log.warning(
                "storage version migration of %s %s/%s failed: %s",
                target.plural,
                meta.get("namespace", ""),
                meta.get("name", ""),
                exc,
            )
            return False
        return True

    async def _update_status(self, svm: Object) -> Object:
        return await self.client.update_status(SVMS, svm)
