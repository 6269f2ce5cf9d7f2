"""The one controller mechanism: a work queue fed by informer handlers, and its worker loop.

Every controller here has upstream's shape (client-go's workqueue + shared
informer pattern): informer handlers only turn cache changes into keys on a
rate-limited work queue, and workers take keys off it and ``sync`` them.
This module owns that shape once:

* ``QueueController`` — the queue (``self.queue``), ``watch`` (register
  handlers on an informer and wait for its cache before working; a delete
  handler gets the object itself, tombstones unwrapped by
  ``informer.unwrap``), ``enqueue``/``enqueue_key``, ``run`` (wait for the
  caches, then run the workers) and ``shut_down``. A controller with a second
  queue (the Job controller's orphan pods, the garbage collector's orphaner)
  makes it with ``new_queue`` and adds its loop in ``work``.
* ``run_workers``/``process_item`` — client-go's processNextWorkItem plus
  handleErr, around one ``sync(key)``:

  - success → ``forget`` (the key's backoff starts again from 5 ms);
  - ``RequeueAfter`` → look again after the given delay, without counting a
    failure (upstream's namespace controller does this while content remains);
  - ``RequeueRateLimited`` → look again after the key's back-off, as after a
    failure but logged as none (the garbage collector polling an owner its
    informer has not shown yet);
  - any other exception → ``add_rate_limited`` (exponential backoff per key),
    or, once ``max_retries`` requeues have failed (upstream's ``maxRetries``
    where a controller has one: Deployment and endpoints 15, tokens 10), the
    key is dropped and forgotten until its next event;
  - always → ``done``, so that a key re-added while it was being synced is
    synced once more.

A key is never synced by two workers at once (the queue guarantees it), so
``sync`` needs no locking per key. Workers end when the queue shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ClassVar, Generic, TypeVar

from kajitori.client import informer, workqueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Sync = Callable[[K], Awaitable[None]]
Object = dict[str, Any]
Handler = Callable[[Object], None]
UpdateHandler = Callable[[Object, Object], None]


class RequeueAfter(Exception):
    """Raised by ``sync`` to have its key looked at again after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"requeue after {delay:.1f}s")
        self.delay = delay


class RequeueRateLimited(Exception):
    """Raised by ``sync`` to have its key looked at again after its back-off (no error)."""


async def run_workers(
    queue: workqueue.RateLimitingQueue[K],
    sync: Sync[K],
    workers: int = 1,
    *,
    name: str = "",
    max_retries: int | None = None,
) -> None:
    """Run ``workers`` loops over ``queue`` until it is shut down."""
    await asyncio.gather(*(_worker(queue, sync, name, max_retries) for _ in range(workers)))


async def _worker(
    queue: workqueue.RateLimitingQueue[K], sync: Sync[K], name: str, max_retries: int | None
) -> None:
    while True:
        try:
            key = await queue.get()
        except workqueue.ShutDown:
            return
        await process_item(queue, sync, key, name=name, max_retries=max_retries)


async def process_item(
    queue: workqueue.RateLimitingQueue[K],
    sync: Sync[K],
    key: K,
    *,
    name: str = "",
    max_retries: int | None = None,
) -> None:
    """Sync one key taken from ``queue`` and settle it (forget, delay, back off or drop)."""
    try:
        await sync(key)
    except RequeueAfter as requeue:
        queue.add_after(key, requeue.delay)
    except RequeueRateLimited:
        queue.add_rate_limited(key)
    except Exception as exc:
        retries = queue.num_requeues(key)
        if max_retries is not None and retries >= max_retries:
            log.warning(
                "%s: dropping %r out of the queue after %d retries: %s", name, key, retries, exc
            )
            queue.forget(key)
        else:
            level = logging.INFO if retries < 5 else logging.WARNING
            log.log(level, "%s: syncing %r failed (retry %d): %s", name, key, retries, exc)
            queue.add_rate_limited(key)
    else:
        queue.forget(key)
    finally:
        queue.done(key)


class QueueController(Generic[K]):
    """A controller's work queue, the informers it waits for, and its workers.

    Subclasses set ``name`` (also the queue's), optionally ``max_retries``,
    call ``super().__init__()``, ``watch`` their informers, and define
    ``sync(key)``. The manager calls ``run(workers)`` and ``shut_down()``.
    """

    name: ClassVar[str] = ""
    # None: back off for ever (most upstream controllers); else upstream's maxRetries.
    max_retries: ClassVar[int | None] = None

    def __init__(
        self, *, queue_name: str = "", rate_limiter: workqueue.RateLimiter[K] | None = None
    ) -> None:
        self.queues: list[workqueue.RateLimitingQueue[Any]] = []
        self.queue: workqueue.RateLimitingQueue[K] = self.new_queue(
            queue_name or self.name, rate_limiter
        )
        self.caches: list[informer.Informer] = []

    def new_queue(
        self, name: str, rate_limiter: workqueue.RateLimiter[Any] | None = None
    ) -> workqueue.RateLimitingQueue[Any]:
        """A queue that ``shut_down`` ends; by default client-go's default controller limiter."""
        queue: workqueue.RateLimitingQueue[Any] = workqueue.RateLimitingQueue(
            rate_limiter or workqueue.default_controller_rate_limiter(), name=name
        )
        self.queues.append(queue)
        return queue

    def watch(
        self,
        source: informer.Informer,
        *,
        on_change: Handler | None = None,
        on_add: Handler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: Handler | None = None,
    ) -> informer.Informer:
        """Register handlers on ``source``; ``run`` waits for its cache before working.

        ``on_change(obj)`` stands for the same callback on add, update (the new
        object) and delete. Delete handlers get the object, never a tombstone.
        """
        if on_change is not None:
            on_add = on_add or on_change
            on_update = on_update or (lambda _, new: on_change(new))
            on_delete = on_delete or on_change
        if on_add or on_update or on_delete:
            source.add_event_handler(
                informer.EventHandler(
                    on_add=on_add,
                    on_update=on_update,
                    on_delete=_unwrapping(on_delete) if on_delete else None,
                )
            )
        if source not in self.caches:
            self.caches.append(source)
        return source

    def enqueue(self, obj: Object | informer.DeletedFinalStateUnknown) -> None:
        """Queue ``obj``'s ``namespace/name`` key."""
        self.queue.add(informer.meta_namespace_key(informer.unwrap(obj)))  # type: ignore[arg-type]

    def enqueue_key(self, key: K) -> None:
        self.queue.add(key)

    async def run(self, workers: int = 1) -> None:
        """Wait for every watched cache, then work until ``shut_down``."""
        await self.wait_for_caches()
        await self.work(workers)

    async def wait_for_caches(self) -> None:
        await asyncio.gather(*(cache.wait_for_sync() for cache in self.caches))

    async def work(self, workers: int) -> None:
        """The worker loops; a controller with a second queue gathers its loop here too."""
        await run_workers(
            self.queue, self.sync, workers, name=self.name, max_retries=self.max_retries
        )

    def shut_down(self) -> None:
        for queue in self.queues:
            queue.shut_down()

    async def sync(self, key: K) -> None:
        raise NotImplementedError


def resource_version_changed(old: Object, new: Object) -> bool:
    """False for a resync's re-delivery of an unchanged object (update handlers skip those)."""
    return (old.get("metadata") or {}).get("resourceVersion") != (new.get("metadata") or {}).get(
        "resourceVersion"
    )


def _unwrapping(handler: Handler) -> Callable[[Object | informer.DeletedFinalStateUnknown], None]:
    return lambda obj: handler(informer.unwrap(obj))
