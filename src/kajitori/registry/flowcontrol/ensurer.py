"""Keeps the API Priority and Fairness bootstrap configuration in the cluster.

Upstream's ``priority-and-fairness-config-producer`` post-start hook
(pkg/registry/flowcontrol/rest and .../ensurer), over our stores. One pass
(``ensure``), as upstream's:

1. the bootstrap objects (``api.flowcontrol_v1.bootstrap``), priority
   levels before FlowSchemas: a missing object is created; an existing one is
   revised when needed. A mandatory object always gets the bootstrap spec
   back (the ``exempt`` level keeps its own ``spec.exempt`` values) and the
   ``apf.kubernetes.io/autoupdate-spec`` annotation "true". A suggested one
   follows its annotation: "true" (any spelling Go's ParseBool reads) means
   the bootstrap spec is re-imposed, "false" that it is left alone; without
   a readable value, only an object never edited (generation 1) is kept
   up to date, and the annotation is then set to what was decided.
2. objects annotated "true" whose name is not in the bootstrap set are
   deleted (what an older server version suggested and this one no
   longer does).

A lost race (409) is left for the next pass. ``start`` runs the first pass
after the server is ready (retrying every second until it succeeds), then
one pass every ``RESYNC_INTERVAL`` seconds, as upstream's one-minute loop,
so an operator's edit of a kept object is undone within that time.

Writes are the API server's own (group ``system:masters``) under upstream's
field manager ``api-priority-and-fairness-config-producer-v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from typing import Any

from kajitori.api.flowcontrol_v1 import bootstrap, defaults, validation
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store

log = logging.getLogger(__name__)

Object = dict[str, Any]

FIELD_MANAGER = "api-priority-and-fairness-config-producer-v1"
RESYNC_INTERVAL = 60.0
RETRY_INTERVAL = 1.0
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))

# Go's strconv.ParseBool.
_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_bool(value: Any) -> bool | None:
    """Go's strconv.ParseBool: True/False, or None when ``value`` is not a boolean."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _annotations(obj: Object) -> dict[str, Any]:
    annotations = obj.get("metadata", {}).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _should_update_spec(current: Object) -> bool:
    """A suggested object's own say: its annotation, else whether it was never edited."""
    decided = parse_bool(_annotations(current).get(bootstrap.AUTO_UPDATE_ANNOTATION))
    if decided is not None:
        return decided
    return current.get("metadata", {}).get("generation") == 1


def _flow_schema_spec_equalish(expected: Object, actual: Object) -> bool:
    wanted = copy.deepcopy(expected)
    defaults.set_defaults_flow_schema(wanted)
    return validation.semantically_equal(wanted.get("spec"), actual.get("spec"))


def _priority_level_spec_equalish(expected: Object, actual: Object) -> bool:
    wanted = copy.deepcopy(expected)
    defaults.set_defaults_priority_level_configuration(wanted)
    if wanted["metadata"]["name"] == bootstrap.EXEMPT:
        # The exempt level's own section is the operator's to tune.
        have = (actual.get("spec") or {}).get("exempt")
        if not isinstance(have, dict):
            return False
        wanted["spec"]["exempt"] = {
            "nominalConcurrencyShares": have.get("nominalConcurrencyShares"),
            "lendablePercent": have.get("lendablePercent"),
        }
    return validation.semantically_equal(wanted.get("spec"), actual.get("spec"))


SpecEqualish = Callable[[Object, Object], bool]


def revise(
    current: Object, wanted: Object, *, mandatory: bool, spec_equalish: SpecEqualish
) -> Object | None:
    """The object to write instead of ``current``, or None when it is as it should be."""
    auto_update = mandatory or _should_update_spec(current)
    annotation = parse_bool(_annotations(current).get(bootstrap.AUTO_UPDATE_ANNOTATION))
    update_annotation = annotation is None or annotation != auto_update
    spec_changed = auto_update and not spec_equalish(wanted, current)
    if not (update_annotation or spec_changed):
        return None
    revised = copy.deepcopy(current)
    if spec_changed:
        revised["spec"] = copy.deepcopy(wanted["spec"])
    if update_annotation:
        meta = revised.setdefault("metadata", {})
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            annotations = meta["annotations"] = {}
        annotations[bootstrap.AUTO_UPDATE_ANNOTATION] = "true" if auto_update else "false"
    return revised


class BootstrapEnsurer:
    """Creates and maintains the bootstrap FlowSchemas and PriorityLevelConfigurations."""

    def __init__(self, flow_schemas: Store, priority_levels: Store) -> None:
        self.flow_schemas = flow_schemas
        self.priority_levels = priority_levels
        self._task: asyncio.Task[None] | None = None
        # Set once the first pass has succeeded, for whoever needs the objects in place.
        self.ensured = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="apf-bootstrap-ensurer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.ensure()
            except Exception as exc:  # the loop outlives any one failed pass
                # (a pass's writes run in task groups: failures arrive as ExceptionGroups)
                log.warning("APF bootstrap ensurer failed, will retry: %r", exc)
                await asyncio.sleep(RETRY_INTERVAL)
                continue
            self.ensured.set()
            # Read at each turn, so a test may shorten it for a running server.
            await asyncio.sleep(RESYNC_INTERVAL)

    async def ensure(self) -> None:
        """One pass: every priority level, then every FlowSchema, then unwanted ones removed.

        Upstream goes suggested, then mandatory, each kind's levels first; the
        levels all go first here, so that no FlowSchema is ever written
        before the level it names (its Dangling condition would flap).
        """
        levels = [
            *((pl, False) for pl in bootstrap.suggested_priority_levels()),
            *((pl, True) for pl in bootstrap.mandatory_priority_levels()),
        ]
        schemas = [
            *((fs, False) for fs in bootstrap.suggested_flow_schemas()),
            *((fs, True) for fs in bootstrap.mandatory_flow_schemas()),
        ]
        for store, wanted, equalish in (
            (self.priority_levels, levels, _priority_level_spec_equalish),
            (self.flow_schemas, schemas, _flow_schema_spec_equalish),
        ):
            async with asyncio.TaskGroup() as tasks:
                for obj, mandatory in wanted:
                    tasks.create_task(self._ensure_one(store, obj, mandatory, equalish))
        await self._remove_unwanted(self.flow_schemas, [fs for fs, _ in schemas])
        await self._remove_unwanted(self.priority_levels, [pl for pl, _ in levels])

    @staticmethod
    def _context() -> RequestContext:
        return RequestContext(user=_SYSTEM, field_manager=FIELD_MANAGER)

    async def _ensure_one(
        self, store: Store, wanted: Object, mandatory: bool, spec_equalish: SpecEqualish
    ) -> None:
        name = wanted["metadata"]["name"]
        try:
            current = await store.get("", name)
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
            await self._create(store, wanted)
            return
        revised = revise(current, wanted, mandatory=mandatory, spec_equalish=spec_equalish)
        if revised is None:
            return
        try:
            # ``revised`` carries the resourceVersion read: a concurrent write is a 409.
            await store.update("", name, revised, self._context())
        except errors.StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _create(self, store: Store, wanted: Object) -> None:
        try:
            await store.create("", copy.deepcopy(wanted), self._context())
        except errors.StatusError as exc:
            if exc.code != 409:  # another API server was first
                raise

    async def _remove_unwanted(self, store: Store, wanted: list[Object]) -> None:
        names = {obj["metadata"]["name"] for obj in wanted}
        listed = await store.list("", ListOptions())
        for obj in listed.items:
            name = obj["metadata"]["name"]
            if name in names:
                continue
            if parse_bool(_annotations(obj).get(bootstrap.AUTO_UPDATE_ANNOTATION)) is not True:
                continue  # the operator's own object, or one they took over
            try:
                await store.delete("", name, DeleteOptions(), self._context())
            except errors.StatusError as exc:
                if exc.code != 404:
                    raise
