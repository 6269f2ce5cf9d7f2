"""Leader election through a coordination.k8s.io Lease (client-go's tools/leaderelection).

Owns how one of several copies of a component (controller manager,
scheduler) becomes the only one that acts. The holder writes its identity
and ``renewTime`` into a Lease in kube-system every ``retry_period``; the
others poll at the same period and take the Lease over once it has not
changed for ``lease_duration`` *as seen by their own clock* (client-go's
observedTime: clocks of different machines are never compared). Every
write is a compare-and-swap on the Lease's resourceVersion, so two
candidates racing for an expired Lease cannot both win.

``run(lead)`` waits until this candidate holds the Lease, runs ``lead()``
while renewing, and returns when leadership is lost (a renewal could not
succeed for ``renew_deadline``) or ``lead`` returns. Upstream's components
exit when they lose the Lease, and so do ours: the caller stops. On a clean
stop the holder releases the Lease (empty holder, 1 s duration) so a
successor does not wait out the lease (client-go's ReleaseOnCancel).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from kajitori.client import events, rest

log = logging.getLogger(__name__)

Object = dict[str, Any]
LOCK_NAMESPACE = "kube-system"
# client-go's JitterFactor for the retry loop.
JITTER = 1.2


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """Upstream's --leader-elect-* flags, with their defaults (15 s, 10 s, 2 s)."""

    name: str
    identity: str = ""
    namespace: str = LOCK_NAMESPACE
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("leaseDuration must be greater than renewDeadline")
        if self.renew_deadline <= JITTER * self.retry_period:
            raise ValueError("renewDeadline must be greater than retryPeriod*JitterFactor")


def default_identity() -> str:
    """``<hostname>_<uuid>``, as upstream's components name themselves."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def micro_time(when: datetime.datetime) -> str:
    """A ``metav1.MicroTime`` on the wire."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for ``config.name`` in ``config.namespace`` as ``config.identity``."""

    def __init__(
        self, client: rest.Client, config: Config, *, recorder: events.EventRecorder | None = None
    ) -> None:
        self.client = client
        self.config = config
        self.identity = config.identity or default_identity()
        self.recorder = recorder
        self._observed: Object | None = None
        self._observed_at = 0.0
        self._leading = False

    @property
    def is_leader(self) -> bool:
        return self._leading

    def holder(self) -> str:
        """Who held the Lease when it was last read ("" when nobody)."""
        return str(((self._observed or {}).get("spec") or {}).get("holderIdentity") or "")

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Acquire, then run ``lead`` until it returns or leadership is lost."""
        await self._acquire()
        self._leading = True
        log.info("%s: %s became leader", self.config.name, self.identity)
        self._record_event(f"{self.identity} became leader")
        leading = asyncio.ensure_future(lead())
        renewing = asyncio.ensure_future(self._renew_until_lost())
        try:
            await asyncio.wait({leading, renewing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._leading = False
            for task in (leading, renewing):
                task.cancel()
            for task in (leading, renewing):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if renewing.done() and not renewing.cancelled() and renewing.result() is False:
                log.warning("%s: leaderelection lost for %s", self.config.name, self.identity)
            await self._release()
        if leading.done() and not leading.cancelled() and leading.exception() is not None:
            raise leading.exception()  # type: ignore[misc]

    # ----- the loop ---------------------------------------------------------------

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.config.retry_period * random.uniform(1.0, JITTER))

    async def _renew_until_lost(self) -> bool:
        """Renew every retry period; return False once renewing failed for the deadline."""
        while True:
            deadline = time.monotonic() + self.config.renew_deadline
            while not await self._try_acquire_or_renew():
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(self.config.retry_period)
            await asyncio.sleep(self.config.retry_period)

    async def _try_acquire_or_renew(self) -> bool:
        try:
            return await self._attempt()
        except Exception as exc:  # API and transport errors alike must not end the campaign
            log.info("%s: error acquiring or renewing the lease: %s", self.config.name, exc)
            return False

    async def _attempt(self) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        try:
            lease = await self.client.get(
                rest.LEASES, self.config.name, namespace=self.config.namespace
            )
        except rest.ApiError as exc:
            if not exc.not_found:
                raise
            created = await self.client.create(
                rest.LEASES, self._new_lease(now), namespace=self.config.namespace
            )
            self._observe(created)
            return True
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec):
            return False
        updated = await self.client.update(
            rest.LEASES, self._taken_over(lease, now), namespace=self.config.namespace
        )
        self._observe(updated)
        return True

    def _observe(self, lease: Object) -> None:
        # The clock starts when the record last *changed*, as seen here.
        old_spec = (self._observed or {}).get("spec") or {}
        if old_spec != (lease.get("spec") or {}):
            self._observed_at = time.monotonic()
        self._observed = lease

    def _expired(self, spec: Object) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        return self._observed_at + duration <= time.monotonic()

    def _new_lease(self, now: datetime.datetime) -> Object:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": self._spec(now, acquired=now, transitions=0),
        }

    def _taken_over(self, lease: Object, now: datetime.datetime) -> Object:
        spec = lease.get("spec") or {}
        transitions = int(spec.get("leaseTransitions") or 0)
        if spec.get("holderIdentity") == self.identity:
            acquired = spec.get("acquireTime") or micro_time(now)
            new_spec = self._spec(now, acquired=acquired, transitions=transitions)
        else:
            new_spec = self._spec(now, acquired=now, transitions=transitions + 1)
        return {**lease, "spec": new_spec}

    def _spec(
        self, now: datetime.datetime, *, acquired: datetime.datetime | str, transitions: int
    ) -> Object:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.config.lease_duration)),
            "acquireTime": acquired if isinstance(acquired, str) else micro_time(acquired),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }

    async def _release(self) -> None:
        """Give the Lease up so a successor need not wait for it to expire.

        A renewal cut short by the stop may have reached the server unseen,
        leaving our copy stale: on a conflict, read the Lease again and retry
        while it is still ours.
        """
        lease = self._observed
        if lease is None or self.holder() != self.identity:
            return
        for _ in range(3):
            try:
                await self.client.update(
                    rest.LEASES, self._released(lease), namespace=self.config.namespace
                )
                return
            except rest.ApiError as exc:
                if exc.code != 409:
                    return
            except Exception:  # the server may be gone already; the Lease then expires
                return
            with contextlib.suppress(Exception):
                lease = await self.client.get(
                    rest.LEASES, self.config.name, namespace=self.config.namespace
                )
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return

    @staticmethod
    def _released(lease: Object) -> Object:
        now = datetime.datetime.now(datetime.UTC)
        spec = dict(lease.get("spec") or {})
        spec.update(
            holderIdentity="",
            leaseDurationSeconds=1,
            acquireTime=micro_time(now),
            renewTime=micro_time(now),
        )
        return {**lease, "spec": spec}

    def _record_event(self, message: str) -> None:
        if self.recorder is None or self._observed is None:
            return
        self.recorder.event(self._observed, "Normal", "LeaderElection", message)


async def run_elected(
    client: rest.Client,
    config: Config | None,
    lead: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
) -> bool:
    """Run ``lead`` until ``stop``, while holding ``config``'s Lease (always, without one).

    Returns False when leadership was lost before ``stop`` was set.
    """
    if config is None:
        await lead()
        return True
    elector = LeaderElector(client, config)
    campaign = asyncio.ensure_future(elector.run(lead))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({campaign, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not campaign.done():
        if not elector.is_leader:
            campaign.cancel()
        # Stopping: let ``lead`` see the event and finish, then release the Lease.
        try:
            await asyncio.wait_for(asyncio.shield(campaign), timeout=10.0)
        except TimeoutError:
            campaign.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await campaign
        return True
    campaign.result()
    return stop.is_set()
