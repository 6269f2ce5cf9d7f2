"""The API Priority and Fairness filter (upstream's WithPriorityAndFairness).

Runs after authentication, impersonation and audit, before authorization,
as in upstream's handler chain (``server/app.py`` calls ``serve``). Each
request is classified (``classify.py``: FlowSchema, level, flow), takes a
seat of its level or waits in one of its queues (``queueset.py``), and its
answer carries ``X-Kubernetes-PF-FlowSchema-UID`` and
``X-Kubernetes-PF-PriorityLevel-UID``. A request that cannot be queued, or
waits longer than ``wait_limit`` (upstream: a quarter of the 60 s request
timeout), gets upstream's plain-text 429 with a ``Retry-After`` that grows
while the level keeps rejecting. Long-running requests other than watches
(exec, attach, log, portforward, proxy) are neither classified nor limited;
a watch holds its seat only until its initial events are out (the store's
``watch_initialized`` signal, ``registry/generic/initialization.py``).

The configuration comes from watches of FlowSchemas and levels
(``admission.lister.StoreLister``); it is digested again when either
watch moves, and the classification of each (user, groups, verb, resource
or path, namespace) is memoized until then, so a request costs a tuple, a
dict lookup and a seat count. Before the watches have synced, the mandatory
``exempt`` and ``catch-all`` objects are imagined, as upstream does.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kajitori.admission.lister import StoreLister
from kajitori.machinery import errors
from kajitori.registry.generic.initialization import WATCH_INITIALIZED
from kajitori.registry.generic.request import UserInfo
from kajitori.server import asgi
from kajitori.server.flowcontrol import classify, debug
from kajitori.server.flowcontrol.queueset import FlowStats, LevelState, Waiter
from kajitori.server.request_info import RequestInfo

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

GROUP = "flowcontrol.apiserver.k8s.io"
FLOW_SCHEMA_UID_HEADER = b"x-kubernetes-pf-flowschema-uid"
PRIORITY_LEVEL_UID_HEADER = b"x-kubernetes-pf-prioritylevel-uid"
TOO_MANY_REQUESTS = b"Too many requests, please try again later.\n"
# Upstream: --request-timeout (60 s) / 4.
DEFAULT_WAIT_LIMIT = 15.0
# Memoized classifications kept at most (a client cannot grow it without bound).
MAX_MEMO = 16384

# Upstream's BasicLongRunningRequestCheck as kube-apiserver configures it (verbs watch
# and proxy, these subresources); watches are limited until their initial events are out.
_LONG_RUNNING_SUBRESOURCES = frozenset(("attach", "exec", "proxy", "log", "portforward"))

Lookup = Callable[[str, str, str], "Store | None"]
Handler = Callable[[asgi.Send], Awaitable[None]]
Header = tuple[bytes, bytes]


@dataclass(slots=True, eq=False)
class Route:
    """A memoized classification: where requests of one kind go."""

    schema: classify.SchemaSpec
    level: LevelState
    stats: FlowStats
    distinguisher: str
    hand: list[int] | None
    headers: list[Header]


class PriorityAndFairness:
    """Classifies, limits and queues requests; serves its metrics and debug dumps."""

    def __init__(self, lookup: Lookup, *, wait_limit: float = DEFAULT_WAIT_LIMIT) -> None:
        self.wait_limit = wait_limit
        self._schemas = StoreLister(
            lambda: lookup(GROUP, "v1", "flowschemas"), name="apf-flowschemas"
        )
        self._levels = StoreLister(
            lambda: lookup(GROUP, "v1", "prioritylevelconfigurations"), name="apf-levels"
        )
        self._seen = (-1, -1)
        self._synced = False
        self.levels: dict[str, LevelState] = {}
        self.stats: dict[tuple[str, str], FlowStats] = {}
        self._memo: dict[tuple[Any, ...], Route] = {}
        # Set by the app: counts a 429 in apiserver_request_total (upstream's RecordDroppedRequest).
        self.count_rejection: Callable[[RequestInfo], None] | None = None
        self._apply(classify.digest([], []))

    async def stop(self) -> None:
        await self._schemas.stop()
        await self._levels.stop()

    # ----- configuration ---------------------------------------------------------

    def _refresh(self) -> None:
        """Digest the configuration again if either watch has moved since the last time."""
        seen = (self._schemas.revision, self._levels.revision)
        schemas = self._schemas.cached_list("")
        levels = self._levels.cached_list("")
        if schemas is None or levels is None:
            return  # not synced, or behind this server's own write: keep what we have
        self._synced, self._seen = True, seen
        self._apply(classify.digest(schemas, levels))

    def use(self, flow_schemas: list[Any], levels: list[Any]) -> None:
        """Classify with these objects until either watch shows a change (tests, tools)."""
        self._synced = True
        self._seen = (self._schemas.revision, self._levels.revision)
        self._apply(classify.digest(flow_schemas, levels))

    def _apply(self, config: classify.Config) -> None:
        self.config = config
        for name, spec in config.levels.items():
            state = self.levels.get(name)
            if state is None:
                self.levels[name] = LevelState(spec)
            else:
                state.configure(spec)
        for name in [n for n in self.levels if n not in config.levels]:
            # Requests in it keep their reference and finish there.
            del self.levels[name]
        self._memo.clear()

    def _route(self, key: tuple[Any, ...], user: UserInfo, info: RequestInfo) -> Route:
        schema = classify.classify(self.config, user, info)
        level = self.levels[schema.level]
        distinguisher = classify.flow_distinguisher(schema, user, info)
        hand = None
        if level.queues:
            flow = classify.flow_hash(schema.name, distinguisher)
            hand = classify.deal(flow, len(level.queues), level.spec.hand_size)
        stats = self.stats.get((schema.name, level.spec.name))
        if stats is None:
            stats = self.stats[(schema.name, level.spec.name)] = FlowStats(
                schema.name, level.spec.name
            )
        headers = [
            (PRIORITY_LEVEL_UID_HEADER, level.spec.uid.encode()),
            (FLOW_SCHEMA_UID_HEADER, schema.uid.encode()),
        ]
        route = Route(schema, level, stats, distinguisher, hand, headers)
        if len(self._memo) >= MAX_MEMO:
            self._memo.clear()
        self._memo[key] = route
        return route

    def classify(self, user: UserInfo, info: RequestInfo) -> Route:
        """The request's route (memoized per user, groups, verb, resource or path, namespace)."""
        seen = self._seen
        if (
            not self._synced
            or self._schemas.revision != seen[0]
            or self._levels.revision != seen[1]
        ):
            self._refresh()
        key = (
            user.name,
            user.groups,
            info.verb,
            info.api_group,
            info.resource,
            info.subresource,
            info.namespace,
            "" if info.is_resource_request else info.path,
            info.is_resource_request,
        )
        route = self._memo.get(key)
        return route if route is not None else self._route(key, user, info)

    # ----- the filter ------------------------------------------------------------

    async def serve(
        self, info: RequestInfo, user: UserInfo, handler: Handler, send: asgi.Send
    ) -> None:
        """Run ``handler`` once the request holds a seat; else answer 429."""
        watch = info.verb == "watch"
        if not watch and (info.verb == "proxy" or info.subresource in _LONG_RUNNING_SUBRESOURCES):
            await handler(send)
            return
        route = self.classify(user, info)
        level = route.level
        queue = level.try_start(route.hand)
        if queue is None:
            queue = await self._wait(route, info, user)
            if queue is None:
                await self._reject(route, info, send)
                return
        stats = route.stats
        stats.dispatched += 1
        stats.executing += 1
        level.dispatched += 1
        headed = _with_headers(send, route.headers)
        if watch:
            await _serve_watch(handler, headed, functools.partial(_finish, level, stats, queue))
            return
        # Inline rather than through helpers: every request runs this.
        try:
            await handler(headed)
        except errors.StatusError as exc:  # answered here, so that it carries the headers
            await asgi.send_status_error(headed, exc)
        finally:
            stats.executing -= 1
            level.release(queue)

    async def _wait(self, route: Route, info: RequestInfo, user: UserInfo) -> int | None:
        """Queue the request; its queue index once it holds a seat, None if rejected."""
        level = route.level
        index = level.choose_queue(route.hand) if route.hand is not None else None
        if index is None:
            reason = "queue-full" if level.spec.queuing else "concurrency-limit"
            self._count_reject(route, reason)
            return None
        loop = asyncio.get_running_loop()
        waiter = Waiter(
            loop.create_future(),
            index,
            route.stats,
            route.distinguisher,
            time.time(),
            user.name,
            info,
        )
        level.enqueue(waiter)
        if level.executing < level.spec.limit:
            level.dispatch()  # a seat freed with nobody to take it (a limit that just grew)
        # A timer rather than asyncio.timeout: no task cancellation on the common path.
        timer = loop.call_later(self.wait_limit, level.expire, waiter)
        try:
            granted = await waiter.future
        except BaseException:  # the request itself was cancelled (client gone, shutdown)
            timer.cancel()
            if _granted(waiter):
                level.release(waiter.queue)
            else:
                level.withdraw(waiter)
                level.cancelled += 1
                self._count_reject(route, "cancelled")
            raise
        timer.cancel()
        if granted:
            return waiter.queue
        self._count_reject(route, "time-out" if waiter.timed_out else "queue-full")
        return None

    def _count_reject(self, route: Route, reason: str) -> None:
        rejected = route.stats.rejected
        rejected[reason] = rejected.get(reason, 0) + 1
        if reason != "cancelled":
            route.level.rejected += 1

    async def _reject(self, route: Route, info: RequestInfo, send: asgi.Send) -> None:
        """Upstream's tooManyRequests: http.Error's plain text, with Retry-After."""
        dropped = route.level.dropped
        dropped.record()
        if self.count_rejection is not None:
            self.count_rejection(info)
        headers = [
            *route.headers,
            (b"retry-after", str(dropped.retry_after).encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"x-content-type-options", b"nosniff"),
            (b"content-length", str(len(TOO_MANY_REQUESTS)).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": TOO_MANY_REQUESTS})

    # ----- what it shows ---------------------------------------------------------

    def render_metrics(self) -> bytes:
        """``apiserver_flowcontrol_*`` in Prometheus' text format."""
        return debug.render_metrics(self.stats.values(), self.levels.values())

    def dump(self, path: str, query: dict[str, str]) -> bytes | None:
        """A ``/debug/api_priority_and_fairness/<dump>`` body, or None for an unknown one."""
        levels = sorted(self.levels.values(), key=lambda state: state.spec.name)
        name = path.rsplit("/", 1)[-1]
        if name == "dump_priority_levels":
            return debug.dump_priority_levels(levels)
        if name == "dump_queues":
            return debug.dump_queues(levels)
        if name == "dump_requests":
            return debug.dump_requests(levels, bool(query.get("includeRequestDetails")))
        return None


def _granted(waiter: Waiter) -> bool:
    future = waiter.future
    return future.done() and not future.cancelled() and future.result()


def _finish(level: LevelState, stats: FlowStats, queue: int) -> None:
    stats.executing -= 1
    level.release(queue)


async def _serve_watch(handler: Handler, send: asgi.Send, finish: Callable[[], None]) -> None:
    """A watch gives its seat back once the store says its initial events are out."""
    released = False

    def initialized() -> None:
        nonlocal released
        if not released:
            released = True
            finish()

    token = WATCH_INITIALIZED.set(initialized)
    try:
        await _run(handler, send)
    finally:
        WATCH_INITIALIZED.reset(token)
        initialized()


async def _run(handler: Handler, send: asgi.Send) -> None:
    """``handler``, its errors answered here so that they carry the classification too."""
    try:
        await handler(send)
    except errors.StatusError as exc:
        await asgi.send_status_error(send, exc)


def _with_headers(send: asgi.Send, headers: list[Header]) -> asgi.Send:
    """``send`` adding the classification headers to the response's start."""

    # Not a coroutine function: the caller awaits ``send``'s own awaitable, so every
    # message of every request costs no coroutine of its own here. (A class with
    # ``__call__`` allocates less but costs more per call.)
    def wrapped(message: asgi.Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers]}
        return send(message)

    return wrapped
