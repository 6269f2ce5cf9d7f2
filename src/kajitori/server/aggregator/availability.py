"""The Available condition of remote APIServices (upstream: the remote AvailableConditionController).

Owns the checks, in upstream's order, and their reasons and messages:

- the Service must exist (``ServiceNotFound``);
- a ClusterIP Service must have the APIService's port (``ServicePortError``),
  EndpointSlices (``EndpointsNotFound``) and a ready endpoint serving that
  port's name (``MissingEndpoints``);
- ``GET /apis/<group>/<version>`` on an endpoint (five tries at once, five
  seconds each, TLS not verified, as ``system:kube-aggregator`` in
  ``system:masters`` through the front-proxy headers) must answer 2xx/3xx
  (``FailedDiscoveryCheck``, retried with backoff);
- else True with ``Passed``, "all checks passed".

A change of an APIService, of a Service or of an EndpointSlice re-checks the
APIServices that use it; every APIService is re-checked every 30 seconds, as
upstream's resync. The status is written only when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kajitori.auth import reflector
from kajitori.client.workqueue import RateLimitingQueue
from kajitori.machinery import errors
from kajitori.machinery.times import now_rfc3339
from kajitori.registry.apiregistration import apiservices
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import ListOptions, Store
from kajitori.server.aggregator.index import APIServiceIndex, name_of, service_of
from kajitori.server.aggregator.transport import (
    DEFAULT_PORT,
    Transport,
    request_extensions,
)
from kajitori.server.aggregator.worker import run_worker

if TYPE_CHECKING:
    import httpx

Object = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
CHECK_USER = "system:kube-aggregator"
RESYNC_SECONDS = 30.0
_ATTEMPTS = 5
_ATTEMPT_TIMEOUT = 5.0
_SYSTEM = UserInfo("system:apiserver", ("system:masters",))


class CheckFailed(Exception):
    """A discovery check that did not pass; its text is the condition's message."""


def discovery_path(api_service: Object) -> str:
    spec = api_service.get("spec") or {}
    if name_of(api_service) == "v1.":
        return f"/api/{spec.get('version')}"
    return f"/apis/{spec.get('group')}/{spec.get('version')}"


def _unavailable(reason: str, message: str, status: str = "False") -> Object:
    return {"type": apiservices.AVAILABLE, "status": status, "reason": reason, "message": message}


def has_available_endpoint(slices: Iterable[Object], port_name: str) -> bool:
    """A slice with a ready (or not marked unready) endpoint and the named port."""
    for endpoint_slice in slices:
        endpoints = endpoint_slice.get("endpoints") or []
        if not any((e.get("conditions") or {}).get("ready") in (None, True) for e in endpoints):
            continue
        for port in endpoint_slice.get("ports") or ():
            if port.get("name") is not None and port["name"] == port_name and port.get("port"):
                return True
    return False


class AvailabilityController:
    """Writes ``status.conditions[Available]`` of every remote APIService."""

    def __init__(
        self, index: APIServiceIndex, services: Store, slices: Store, transport: Transport
    ) -> None:
        self.index = index
        self.services = services
        self.slices = slices
        self.transport = transport
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="RemoteAvailability")
        self._tasks: list[asyncio.Task[None]] = []
        self._ctx = RequestContext(user=_SYSTEM, field_validation="Ignore")
        index.subscribe(self._api_service_changed)

    def start(self) -> None:
        for name, store, handler in (
            ("availability services", self.services, self._service_changed),
            ("availability endpointslices", self.slices, self._slice_changed),
        ):
            self._tasks.append(
                asyncio.create_task(
                    reflector.reflect(name, store, _ignore, handler, asyncio.Event())
                )
            )
        self._tasks.append(asyncio.create_task(self._resync()))
        for _ in range(2):
            self._tasks.append(
                asyncio.create_task(run_worker(self.queue, self.sync, "RemoteAvailability"))
            )

    async def stop(self) -> None:
        self.queue.shut_down()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # ----- what to re-check ------------------------------------------------------

    def _api_service_changed(self, name: str) -> None:
        obj = self.index.objects.get(name)
        if obj is None or service_of(obj) is not None:
            self.queue.add(name)

    def _using(self, namespace: str, name: str) -> list[str]:
        found = []
        for obj in self.index.remotes():
            service = service_of(obj) or {}
            if service.get("namespace") == namespace and service.get("name") == name:
                found.append(name_of(obj))
        return found

    def _service_changed(self, _event: str, obj: Object) -> None:
        meta = obj.get("metadata") or {}
        for name in self._using(meta.get("namespace", ""), meta.get("name", "")):
            self.queue.add(name)

    def _slice_changed(self, _event: str, obj: Object) -> None:
        meta = obj.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service:
            for name in self._using(meta.get("namespace", ""), service):
                self.queue.add(name)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            for obj in self.index.remotes():
                self.queue.add(name_of(obj))

    # ----- the check --------------------------------------------------------------

    async def sync(self, name: str) -> None:
        original = self.index.objects.get(name)
        if original is None or service_of(original) is None:
            return  # gone, or local: local ones are Available by their strategy
        condition, failure = await self.check(original)
        condition["lastTransitionTime"] = now_rfc3339()
        await self._write(original, condition)
        if failure is not None:
            # Upstream requeues a failed discovery check rate limited.
            raise failure

    async def check(self, api_service: Object) -> tuple[Object, CheckFailed | None]:
        """The Available condition now (without a transition time), and any check failure."""
        service_ref = service_of(api_service) or {}
        namespace = str(service_ref.get("namespace") or "")
        name = str(service_ref.get("name") or "")
        where = f'service/{name} in "{namespace}"'
        try:
            service = await self.services.get(namespace, name)
        except errors.StatusError as exc:
            if exc.code == 404:
                return _unavailable("ServiceNotFound", f"{where} is not present"), None
            message = f"{where} cannot be checked due to: {exc.message}"
            return _unavailable("ServiceAccessError", message, "Unknown"), None
        if ((service.get("spec") or {}).get("type") or "ClusterIP") == "ClusterIP":
            problem = await self._endpoint_problem(service, service_ref, where)
            if problem is not None:
                return problem, None
        try:
            await self._discovery_check(api_service)
        except CheckFailed as exc:
            return _unavailable("FailedDiscoveryCheck", str(exc)), exc
        passed = {"type": apiservices.AVAILABLE, "status": "True"}
        return {**passed, "reason": "Passed", "message": "all checks passed"}, None

    async def _endpoint_problem(
        self, service: Object, service_ref: Object, where: str
    ) -> Object | None:
        port = int(service_ref.get("port") or DEFAULT_PORT)
        port_name = None
        for entry in (service.get("spec") or {}).get("ports") or ():
            if entry.get("port") == port:
                port_name = str(entry.get("name") or "")
                break
        if port_name is None:
            return _unavailable("ServicePortError", f"{where} is not listening on port {port}")
        namespace = str(service_ref.get("namespace") or "")
        listed = await self.slices.list(namespace, ListOptions())
        slices = [
            s
            for s in listed.items
            if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
            == service_ref.get("name")
        ]
        if not slices:
            return _unavailable("EndpointsNotFound", f"cannot find endpointslices for {where}")
        if not has_available_endpoint(slices, port_name):
            message = f'endpointslices for {where} have no addresses with port name "{port_name}"'
            return _unavailable("MissingEndpoints", message)
        return None

    async def _discovery_check(self, api_service: Object) -> None:
        """Passes when any of five concurrent GETs of the discovery path answers 2xx or 3xx."""
        # All five run to their end: cancelling one mid-handshake would leak its socket.
        results = await asyncio.gather(
            *(self._attempt(api_service) for _ in range(_ATTEMPTS)), return_exceptions=True
        )
        last: CheckFailed | None = None
        for result in results:
            if result is None:
                return
            if not isinstance(result, CheckFailed):
                raise result
            last = result
        assert last is not None
        raise last

    async def _attempt(self, api_service: Object) -> None:
        import httpx  # on first use: importing it costs ~0.1 s of every start

        try:
            target = await self.transport.target(api_service)
        except LookupError as exc:
            raise CheckFailed(str(exc)) from exc
        url = target.base_url + discovery_path(api_service)
        client = self.transport.client(b"", verify=False)
        headers = [
            ("Host", target.host_header),
            ("X-Remote-User", CHECK_USER),
            ("X-Remote-Group", "system:masters"),
        ]
        try:
            response = await client.get(
                url,
                headers=headers,
                extensions=request_extensions(target),
                timeout=_ATTEMPT_TIMEOUT,
            )
        except httpx.TimeoutException as exc:
            text = f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
            raise CheckFailed(f"failing or missing response from {url}: {text}") from exc
        except httpx.HTTPError as exc:
            text = f'Get "{url}": {_transport_text(exc, target.base_url)}'
            raise CheckFailed(f"failing or missing response from {url}: {text}") from exc
        if not 200 <= response.status_code < 300:
            bad = f"bad status from {url}: {response.status_code}"
            raise CheckFailed(f"failing or missing response from {url}: {bad}")

    async def _write(self, original: Object, condition: Object) -> None:
        updated = copy.deepcopy(original)
        apiservices.set_condition(updated, condition)
        if updated.get("status") == original.get("status"):
            return
        try:
            await self.index.store.update(
                "", name_of(original), updated, self._ctx, subresource="status"
            )
        except errors.StatusError as exc:
            if exc.code not in (404, 409):
                raise
            # Changed or gone meanwhile: its watch event queues it again.


def _ignore(_items: Iterable[Object]) -> None:
    """The checks read Services and EndpointSlices from storage; the watch only triggers them."""


def _transport_text(exc: httpx.HTTPError, base_url: str) -> str:
    """Go's words for the usual dial and TLS failures."""
    address = base_url.removeprefix("https://")
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return f"dial tcp {address}: connect: connection refused"
        if isinstance(cause, ssl.SSLError):
            return f"remote error: tls: {cause.reason or cause}"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "refused" in text.lower():
        return f"dial tcp {address}: connect: connection refused"
    return text or type(exc).__name__
