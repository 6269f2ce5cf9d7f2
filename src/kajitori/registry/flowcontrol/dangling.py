"""Keeps each FlowSchema's ``Dangling`` condition current.

The part of upstream's APF configuration controller
(apiserver/pkg/util/flowcontrol/apf_controller.go) that writes to the API:
every FlowSchema carries the condition ``Dangling``, "True" with reason
``NotFound`` while the priority level it names does not exist, "False"
with reason ``Found`` once it does, each with upstream's message. The
condition is written (``flowschemas/status``, field manager
``api-priority-and-fairness-config-consumer-v1``, a new
``lastTransitionTime``) only when its status, reason or message differ
from what is stored, so a quiet cluster sees no writes.

The controller follows both kinds with watches (as upstream's informers) and
reconsiders every FlowSchema whenever either kind changes; there are tens
of them, not thousands. Request classification and queueing, the rest of
that controller, are the API server's flowcontrol filter's
(``server/flowcontrol/``, decision 0100).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.flowcontrol.flowschemas import DANGLING
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import ListOptions, Store, WatchEvent, now_rfc3339

log = logging.getLogger(__name__)

Object = dict[str, Any]

FIELD_MANAGER = "api-priority-and-fairness-config-consumer-v1"
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))
_RETRY_SECONDS = 1.0


def _level_name(flow_schema: Object) -> str:
    spec = flow_schema.get("spec")
    reference = spec.get("priorityLevelConfiguration") if isinstance(spec, dict) else None
    name = reference.get("name") if isinstance(reference, dict) else None
    return name if isinstance(name, str) else ""


def desired_condition(flow_schema: Object, levels: set[str] | frozenset[str]) -> Object:
    """The Dangling condition ``flow_schema`` should carry (without its transition time)."""
    level = _level_name(flow_schema)
    quoted = _go_quote(level)
    if level in levels:
        return {
            "type": DANGLING,
            "status": "False",
            "reason": "Found",
            "message": f"This FlowSchema references the PriorityLevelConfiguration object named {quoted} and it exists",
        }
    return {
        "type": DANGLING,
        "status": "True",
        "reason": "NotFound",
        "message": f"This FlowSchema references the PriorityLevelConfiguration object named {quoted} but there is no such object",
    }


def _go_quote(text: str) -> str:
    """Go's %q for the names a level may have (DNS subdomains: nothing to escape)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _conditions(flow_schema: Object) -> list[Any]:
    status = flow_schema.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return conditions if isinstance(conditions, list) else []


def current_condition(flow_schema: Object) -> Object | None:
    for condition in _conditions(flow_schema):
        if isinstance(condition, dict) and condition.get("type") == DANGLING:
            return condition
    return None


def is_current(flow_schema: Object, desired: Object) -> bool:
    have = current_condition(flow_schema) or {}
    return all(have.get(key) == desired[key] for key in ("status", "reason", "message"))


def with_condition(flow_schema: Object, desired: Object, now: str) -> Object:
    """``flow_schema`` with its Dangling condition replaced (others kept in place)."""
    condition = {
        "type": desired["type"],
        "status": desired["status"],
        "lastTransitionTime": now,
        "reason": desired["reason"],
        "message": desired["message"],
    }
    updated = copy.deepcopy(flow_schema)
    status = updated.get("status")
    if not isinstance(status, dict):
        status = updated["status"] = {}
    conditions = [c for c in _conditions(updated)]
    for i, existing in enumerate(conditions):
        if isinstance(existing, dict) and existing.get("type") == DANGLING:
            conditions[i] = condition
            break
    else:
        conditions.append(condition)
    status["conditions"] = conditions
    return updated


class DanglingConditionController:
    """Follows FlowSchemas and priority levels; writes the Dangling conditions that are stale."""

    def __init__(self, flow_schemas: Store, priority_levels: Store) -> None:
        self.flow_schemas = flow_schemas
        self.priority_levels = priority_levels
        self._schemas: dict[str, Object] = {}
        self._levels: dict[str, Object] = {}
        self._synced = {"schemas": False, "levels": False}
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Set after each pass that found (or made) every condition current.
        self.reconciled = asyncio.Event()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(
                self._follow(self.flow_schemas, self._schemas, "schemas"), name="apf-fs-watch"
            ),
            asyncio.create_task(
                self._follow(self.priority_levels, self._levels, "levels"), name="apf-pl-watch"
            ),
            asyncio.create_task(self._work(), name="apf-dangling"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _follow(self, store: Store, known: dict[str, Object], kind: str) -> None:
        """Mirror ``store`` into ``known``; list again (from scratch) whenever the watch ends."""
        while True:
            self._synced[kind] = False
            fresh: dict[str, Object] = {}
            batches = store.watch_batches("", ListOptions(), send_initial_events=True)
            try:
                async for batch in batches:
                    for event in batch:
                        self._apply(event, fresh, known, kind)
                    self._dirty.set()
            except Exception as exc:  # e.g. 410 Gone, storage trouble: start over
                log.info("APF %s watch ended: %r", kind, exc)
            finally:
                # Now, also when cancelled: its watch-cache subscription is released.
                await batches.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(_RETRY_SECONDS)

    def _apply(
        self, event: WatchEvent, fresh: dict[str, Object], known: dict[str, Object], kind: str
    ) -> None:
        if event.type == "BOOKMARK":
            if event.extra.get("initial_events_end"):
                known.clear()
                known.update(fresh)
                self._synced[kind] = True
            return
        target = known if self._synced[kind] else fresh
        name = event.object.get("metadata", {}).get("name", "")
        if event.type == "DELETED":
            target.pop(name, None)
        else:
            target[name] = event.object

    async def _work(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not all(self._synced.values()):
                continue
            try:
                await self.reconcile()
                self.reconciled.set()
            except Exception as exc:  # the loop outlives any one failed write
                log.warning("APF dangling conditions not written, will retry: %r", exc)
                await asyncio.sleep(_RETRY_SECONDS)
                self._dirty.set()

    async def reconcile(self) -> None:
        """Write every FlowSchema's condition that is not what its priority level implies."""
        levels = frozenset(self._levels)
        stale = [
            name
            for name, fs in list(self._schemas.items())
            if not is_current(fs, desired_condition(fs, levels))
        ]
        for name in stale:
            await self._write(name, lambda fs: desired_condition(fs, frozenset(self._levels)))

    async def _write(self, name: str, desire: Callable[[Object], Object]) -> None:
        async def mutate(current: Object) -> Object:
            # Decided again on the stored object: its spec may have moved on.
            wanted = desire(current)
            if is_current(current, wanted):
                return current
            return with_condition(current, wanted, now_rfc3339())

        ctx = RequestContext(user=_SYSTEM, field_manager=FIELD_MANAGER)
        try:
            await self.flow_schemas.guaranteed_update("", name, mutate, ctx, subresource="status")
        except errors.StatusError as exc:
            if exc.code != 404:  # deleted meanwhile: nothing to keep current
                raise
