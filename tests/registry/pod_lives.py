"""Random pod lives in a real ``Store``, and upstream's watch selection worked out afresh.

Shared by the tests that pin the watch cache's shortcuts (shared field
values, decision 0065; kept keys, decision 0069) to the slow path's answer:
``random_lives`` writes creates, status and label updates, bindings and
deletes, and records for every selector in ``SELECTORS`` the events
upstream's cacheWatcher rules (``selection``) give a watcher of it.
"""

from __future__ import annotations

import asyncio
import random
import types
from collections.abc import Callable
from typing import Any

import orjson

from kajitori.machinery import fields, labels
from kajitori.registry.core import pod_binding, pods
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store

Object = dict[str, Any]
# (type, name, resourceVersion) of each event a selector's watcher must see, in order.
Expected = dict[tuple[str, str], list[tuple[str, str, str]]]
CTX = RequestContext()
TIMEOUT = 5.0
NS = "w"

SELECTORS = [
    ("", "status.phase=Running"),
    ("", "status.phase!=Pending"),
    ("", "spec.nodeName=n1"),
    ("", "spec.nodeName=n1,status.phase!=Failed"),
    ("app=web", "status.phase=Running"),
    ("app in (web,db)", "metadata.name!=p-0"),
    ("app=db", ""),
]


def pod(name: str, node: str, **labels_: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels_},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]},
    }


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.005)


def watch_options(start: int, label: str, field: str) -> ListOptions:
    """A watch from revision ``start`` with the given selectors, as the handler would build it."""
    opts = ListOptions(resource_version=str(start))
    if label:
        opts.label_selector = labels.parse_selector(label)
    if field:
        opts.field_selector = fields.parse_field_selector(field)
        opts.field_names = tuple(r.field for r in opts.field_selector.requirements)
    return opts


def selection(
    kind: str, old: Object | None, new: Object | None, label: str, field: str
) -> str | None:
    """Upstream's cacheWatcher rules, worked out afresh from the two objects."""
    label_sel = labels.parse_selector(label) if label else None
    field_sel = fields.parse_field_selector(field) if field else None

    def matches(obj: Object | None) -> bool:
        if obj is None:
            return False
        if label_sel is not None and not label_sel.matches(obj["metadata"].get("labels") or {}):
            return False
        if field_sel is None:
            return True
        extract = pods.RESOURCE.all_selectable_fields
        return field_sel.matches({r.field: extract[r.field](obj) for r in field_sel.requirements})

    if kind == "DELETE":
        return "DELETED" if matches(old) else None
    now, before = matches(new), matches(old)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


def assert_events(got: list[Any], want: list[tuple[str, str, str]], context: Any) -> None:
    """``got`` (watch events) are ``want``'s (type, name) in order, at its resourceVersions.

    A want without a resourceVersion (a deletion's, not known to the driver)
    checks type and name only.
    """
    assert [(e.type, e.object["metadata"]["name"]) for e in got] == [(t, n) for t, n, _ in want], (
        context
    )
    for event, (_, _, rv) in zip(got, want, strict=True):
        if rv:
            assert event.object["metadata"]["resourceVersion"] == rv, context


async def random_lives(
    store: Store, seed: int, *, steps: int, names: int, deletes: float, bindings: bool
) -> tuple[int, Expected]:
    """Random pod writes; per selector the events upstream's rules give. Returns (writes, those).

    With ``bindings``, pods may be created unbound and bound later through
    ``pods/binding``; otherwise every pod is created on n1 or n2.
    """
    rng = random.Random(seed)
    expected: Expected = {s: [] for s in SELECTORS}
    live: dict[str, Object] = {}
    writes = 0
    for step in range(steps):
        name = f"p-{rng.randrange(names)}"
        old = live.get(name)
        if old is None:
            app = rng.choice(["web", "db", "other"])
            node = rng.choice(["", "n1", "n2"] if bindings else ["n1", "n2"])
            steps_taken = [("PUT", old, await store.create(NS, pod(name, node, app=app), CTX))]
        elif rng.random() < deletes:
            # A pod is a graceful kind: stored marked (grace 0), then deleted, as upstream.
            deleted = await store.delete(NS, name, DeleteOptions(grace_period_seconds=0), CTX)
            steps_taken = [("PUT", old, deleted.obj), ("DELETE", deleted.obj, None)]
        else:
            steps_taken = [("PUT", old, await _change(store, rng, old, step, bindings=bindings))]
        for kind, before, after in steps_taken:
            rv = after["metadata"]["resourceVersion"] if after else None
            if before is not None and after is not None:
                if rv == before["metadata"]["resourceVersion"]:
                    continue  # nothing changed: nothing written, no event
            writes += 1
            for label, field in SELECTORS:
                seen = selection(kind, before, after, label, field)
                if seen is not None:
                    expected[(label, field)].append((seen, name, rv or ""))
            if after is None:
                live.pop(name)
            else:
                live[name] = after
    return writes, expected


async def _change(
    store: Store, rng: random.Random, old: Object, step: int, *, bindings: bool
) -> Object | None:
    """One update of a live pod: its status phase, a binding, or its labels."""
    name = old["metadata"]["name"]
    changed = orjson.loads(orjson.dumps(old))
    roll = rng.random()
    if roll < 0.4:
        changed["status"] = {"phase": rng.choice(["Pending", "Running", "Failed"])}
        new, _ = await store.update(NS, name, changed, CTX, subresource="status")
        return new
    if bindings and roll < 0.7 and not old["spec"].get("nodeName"):
        binding = {"target": {"name": rng.choice(["n1", "n2"])}}
        await pod_binding.create(store, NS, name, binding, types.SimpleNamespace(dry_run=False))
        return await store.get(NS, name)
    changed["metadata"]["labels"] = {"app": rng.choice(["web", "db"]), "s": str(step)}
    new, _ = await store.update(NS, name, changed, CTX)
    return new
