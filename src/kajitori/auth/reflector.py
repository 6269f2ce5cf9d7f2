"""Keep an in-memory view of one store current: list, then watch from the list's revision.

The API server's own authorizers (RBAC's policy index, the Node authorizer's
graph) answer every request from memory, so each needs what client-go's
reflector gives a controller, but straight from the registry's store, with
no HTTP in between. ``reflect`` lists, hands the items to ``replace``, marks
``synced``, then feeds every watch event to ``apply``; a 410 (the watch fell
behind compaction) or a broken stream starts over with a fresh list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kajitori.machinery import errors
from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

log = logging.getLogger(__name__)

Object = dict[str, Any]
Replace = Callable[[Iterable[Object]], None]
Apply = Callable[[str, Object], None]
RETRY_SECONDS = 1.0


async def reflect(
    name: str, store: Store, replace: Replace, apply: Apply, synced: asyncio.Event
) -> None:
    """Run until cancelled; ``name`` only labels log lines."""
    while True:
        try:
            listed = await store.list("", ListOptions())
            replace(listed.items)
            synced.set()
            opts = ListOptions(resource_version=listed.resource_version)
            async for event in store.watch("", opts):
                if event.type in ("ADDED", "MODIFIED", "DELETED"):
                    apply(event.type, event.object)
        except errors.StatusError as exc:
            if exc.code != 410:
                log.warning("%s: watch failed: %s; relisting", name, exc.message)
                await asyncio.sleep(RETRY_SECONDS)
        except Exception:
            log.exception("%s: watch failed; relisting", name)
            await asyncio.sleep(RETRY_SECONDS)
