"""Expectations: what a controller is still waiting to see in its informer cache.

Mirrors upstream's ControllerExpectations / UIDTrackingControllerExpectations
(pkg/controller/controller_utils.go). After a controller creates or deletes
objects it must not act on the same key again until its informer has seen
those writes, or it would create (delete) twice: the cache lags the API.

* ``expect_creations(key, n)`` before creating ``n`` objects;
  ``creation_observed(key)`` from the informer's add handler, and
  ``lower_creations(key)`` for each create that failed (it will never be
  observed);
* ``expect_deletions(key, object_keys)`` before deleting those objects;
  ``deletion_observed(key, object_key)`` from the delete handler (or a
  failed delete), so a deletion is counted once however many times it is
  reported;
* ``satisfied(key)``: nothing outstanding, or the record is older than
  ``ttl`` (5 minutes as upstream: an event might have been lost), or there
  is no record at all.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

# Upstream's ExpectationsTimeout.
EXPECTATIONS_TTL = 300.0


@dataclasses.dataclass(slots=True)
class _Record:
    add: int = 0
    deletes: set[str] = dataclasses.field(default_factory=set)
    since: float = 0.0


class Expectations:
    """Outstanding creations and deletions per controller key; one event loop only."""

    def __init__(
        self, *, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def expect_creations(self, key: str, count: int) -> None:
        record = self._records.setdefault(key, _Record())
        record.add = count
        record.since = self.clock()

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        record = self._records.setdefault(key, _Record())
        record.deletes = set(object_keys)
        record.since = self.clock()

    def creation_observed(self, key: str) -> None:
        self.lower_creations(key)

    def lower_creations(self, key: str, count: int = 1) -> None:
        record = self._records.get(key)
        if record is not None and record.add > 0:
            record.add = max(0, record.add - count)

    def deletion_observed(self, key: str, object_key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.deletes.discard(object_key)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for ``key``."""
        record = self._records.get(key)
        return (0, 0) if record is None else (record.add, len(record.deletes))

    def satisfied(self, key: str) -> bool:
        record = self._records.get(key)
        if record is None:
            return True
        if record.add <= 0 and not record.deletes:
            return True
        return self.clock() - record.since > self.ttl

    def delete(self, key: str) -> None:
        self._records.pop(key, None)
